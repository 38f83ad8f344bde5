"""The distributed mode: crawler processes sharing one queue in a real redis-server on loopback."""

from __future__ import annotations

import json
import pickle
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from anigan.ids import sha256_hex
from anigan.params import load_params
from anigan.shards import Member, read_member
from crawler.crawl import CrawlRun, run_crawl
from crawler.demo.generator import generate_site
from crawler.demo.server import DemoBooru, Faults
from tests.crawl_oracle import ALL_RATINGS, expected, file_requests, read, stored_files

redis = pytest.importorskip("redis")
pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed (apt-get install redis-server)")

POSTS = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url():
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:  # wait until it accepts connections
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("redis-server did not start")
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture(scope="module")
def site():
    return generate_site(0, POSTS)


def redis_crawl_settings(out, base_url, redis_url, key) -> dict:
    """The params of one redis-scheduled crawl process into `out`, as overrides."""
    return {
        "paths.raw": str(out),
        "crawl.base_url": base_url,
        "crawl.scheduler": "redis",
        "crawl.redis_url": redis_url,
        "crawl.redis_key": key,
        "crawl.redis_wait": 0.5,
        "crawl.page_size": 10,
        "crawl.concurrency": 2,
        "crawl.limit": 1000,
        "crawl.ratings": ALL_RATINGS,
        "crawl.retry_backoff": 0.0,
    }


def worker_params(out, base_url, redis_url, key, **crawl):
    settings = redis_crawl_settings(out, base_url, redis_url, key) | {"demo.posts": POSTS}
    return load_params(None, settings | {f"crawl.{k}": v for k, v in crawl.items()})


def merged(*outs) -> tuple[Counter, Counter]:
    posts = Counter(r["post_id"] for out in outs for r in read(out, "manifest.jsonl"))
    rejects = Counter(r["post_id"] for out in outs for r in read(out, "rejects.jsonl"))
    return posts, rejects


@pytest.mark.slow
def test_two_processes_fetch_every_post_once(tmp_path, site, redis_url):
    # Each response waits a little, so one worker alone could not drain the queue before the
    # other has started: the work is really shared.
    with DemoBooru(site, faults=Faults(delay=0.05)) as booru:
        outs = [tmp_path / "a", tmp_path / "b"]
        summaries = {}

        def work(out):
            summaries[out.name] = run_crawl(worker_params(out, booru.url, redis_url, "two"))

        threads = [threading.Thread(target=work, args=(out,)) for out in outs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        requests = dict(booru.requests)
        fetched = file_requests(booru)

    want, rejected = expected(site)
    posts, rejects = merged(*outs)
    assert sorted(posts) == sorted(want) and set(posts.values()) == {1}, "a post was kept twice or lost"
    assert dict(rejects) == {i: 1 for i in rejected}
    assert {r["post_id"]: r["reason"] for out in outs for r in read(out, "rejects.jsonl")} == rejected
    assert all(summaries[out.name].kept > 0 for out in outs), "one worker did all the work"
    assert all(s.stopped == "finished" for s in summaries.values())
    # Each file once per post that names it, each listing page once (four full pages, one empty).
    per_url = Counter(f"/images/{site.by_id(i).md5}.{site.by_id(i).ext}" for i in list(want) + [i for i, r in rejected.items() if r in ("truncated", "empty", "not_image", "md5_mismatch")])
    assert fetched == per_url
    assert requests["/posts.json"] == POSTS // 10 + 1
    # A finished crawl leaves only the record of fetched posts behind.
    client = redis.Redis.from_url(redis_url)
    assert sorted(k.decode() for k in client.keys("two:*")) == ["two:posts"]
    # Every post a file was requested for: kept, refused for its bytes, or stopped by robots.txt.
    requested = len(want) + sum(r in ("truncated", "empty", "not_image", "md5_mismatch", "robots") for r in rejected.values())
    assert client.scard("two:posts") == requested


@pytest.mark.slow
def test_a_killed_worker_s_requests_are_taken_over(tmp_path, site, redis_url):
    client = redis.Redis.from_url(redis_url)
    with DemoBooru(site, faults=Faults(delay=0.03)) as booru:
        first = tmp_path / "first"
        with CrawlRun(worker_params(first, booru.url, redis_url, "killed")) as run:
            for progress in run.events():
                if progress.kept >= 3:
                    run.kill()
                    break
            assert run.finish().stopped == "killed"
        held = [
            pickle.loads(data)["cb_kwargs"]["post"].post_id
            for key in client.keys("killed:inflight:*")
            for data in client.lrange(key, 0, -1)
            if "post" in pickle.loads(data).get("cb_kwargs", {})
        ]
        assert client.keys("killed:inflight:*"), "the killed worker held nothing in flight"
        # The killed worker's heartbeat would expire after a while; end it now instead of waiting.
        client.delete(*client.keys("killed:alive:*"))
        second = tmp_path / "second"
        summary = run_crawl(worker_params(second, booru.url, redis_url, "killed"))
    assert summary.stopped == "finished"
    want, rejected = expected(site)
    posts, rejects = merged(first, second)
    assert sorted(posts) == sorted(want), "posts were lost with the killed worker"
    # Only a post the killed worker had written but not yet marked done may appear twice.
    assert {i for i, n in posts.items() if n > 1} <= set(held)
    assert set(rejects) == set(rejected)
    assert not client.keys("killed:inflight:*") and not client.keys("killed:requests")


def test_an_unreachable_redis_is_one_clear_error(tmp_path):
    from anigan.errors import UserError

    params = worker_params(tmp_path / "raw", "http://127.0.0.1:9", f"redis://127.0.0.1:{free_port()}/0", "none")
    with pytest.raises(UserError, match="crawl.redis_url"):
        run_crawl(params)


def cli_crawl(out, base_url, redis_url, key) -> subprocess.Popen:
    """`anigan crawl` in a process of its own, as a user starts one on each machine."""
    settings = redis_crawl_settings(out, base_url, redis_url, key) | {"crawl.shard_size": 4}  # several shards a process
    settings["crawl.ratings"] = "[" + ",".join(ALL_RATINGS) + "]"  # as typed after -S
    args = [a for k, v in settings.items() for a in ("-S", f"{k}={v}")]
    anigan = str(Path(sys.executable).with_name("anigan"))
    return subprocess.Popen([anigan, *args, "crawl"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def check_merged(out: Path, want: set[int]) -> list[dict]:
    """Every wanted post once; every record's bytes at its place; every member once and named."""
    records = read(out, "manifest.jsonl")
    assert Counter(r["post_id"] for r in records) == dict.fromkeys(want, 1), "a post was lost or kept twice"
    for record in records:
        assert sha256_hex(read_member(out / "shards", Member.of(record))) == record["image_id"]
    stored = stored_files(out)  # asserts no member is in two shards
    assert {name.split(".")[0] for name in stored} == {r["image_id"] for r in records}, "a member no record names"
    assert not (out / "parts").exists() or not any((out / "parts").iterdir()), "a part was left unmerged"
    return records


def without_place(records: list[dict], base_url: str) -> list[tuple]:
    """Records without where and when they were stored, URLs relative to the booru."""
    drop = ("fetched_at", "shard", "offset")
    return sorted(json.dumps({k: (v.removeprefix(base_url) if k.endswith("_url") else v) for k, v in r.items() if k not in drop}, sort_keys=True) for r in records)


@pytest.mark.slow
def test_two_processes_crawl_into_one_folder_each_writing_its_own_part(tmp_path, site, redis_url):
    out = tmp_path / "raw"
    with DemoBooru(site, faults=Faults(delay=0.05)) as booru:
        processes = [cli_crawl(out, booru.url, redis_url, "one-folder") for _ in range(2)]
        outputs = [p.communicate(timeout=300)[0] for p in processes]
        assert [p.returncode for p in processes] == [0, 0], outputs
        single = run_crawl(worker_params(tmp_path / "single", booru.url, redis_url, "single", scheduler="memory", shard_size=4))
        assert single.stopped == "finished"

    want, rejected = expected(site)
    records = check_merged(out, want)
    alone = read(tmp_path / "single", "manifest.jsonl")
    assert {r["image_id"] for r in records} == {r["image_id"] for r in alone}
    assert without_place(records, booru.url) == without_place(alone, booru.url)
    assert {r["post_id"]: r["reason"] for r in read(out, "rejects.jsonl")} == rejected
    # Both processes wrote images: their shards carry the two part ids.
    parts = {r["shard"].rsplit("-", 1)[0] for r in records}
    assert len(parts) == 2 and all(p.startswith("raw-") and p != "raw" for p in parts), parts
    summary = json.loads((out / "crawl.json").read_text())
    assert (summary["kept"], summary["posts"]) == (len({r["image_id"] for r in records}), len(want))


@pytest.mark.slow
def test_a_killed_process_s_part_is_merged_by_the_next_run(tmp_path, site, redis_url):
    client = redis.Redis.from_url(redis_url)
    out = tmp_path / "raw"
    with DemoBooru(site, faults=Faults(delay=0.03)) as booru:
        params = worker_params(out, booru.url, redis_url, "salvage", shard_size=3)
        with CrawlRun(params) as run:
            for progress in run.events():
                if progress.kept >= 4:
                    run.kill()
                    break
            # Left without finish(): as if the parent died too; the part stays as the worker left it.
        (part,) = (out / "parts").iterdir()
        shards = sorted((part / "shards").glob("*.tar"))
        with open(shards[-1], "ab") as f:  # a member cut short, as a kill inside a write leaves
            f.write(tarfile.TarInfo("f" * 64 + ".png").tobuf(format=tarfile.USTAR_FORMAT)[:300])
        with open(part / "manifest.jsonl", "a") as f:
            f.write('{"image_id": "torn')
        assert (part / "manifest.jsonl").read_text().count("\n") >= 4
        client.delete(*client.keys("salvage:alive:*"))  # the killed worker's heartbeat, ended now
        summary = run_crawl(params)
    assert summary.stopped == "finished"
    want, _ = expected(site)
    check_merged(out, want)
