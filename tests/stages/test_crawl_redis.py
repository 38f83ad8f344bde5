"""The distributed mode: crawler processes sharing one queue in a real redis-server on loopback."""

from __future__ import annotations

import pickle
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter

import pytest

from anigan.params import load_params
from crawler.crawl import CrawlRun, run_crawl
from crawler.demo.generator import generate_site
from crawler.demo.server import DemoBooru, Faults

from tests.crawl_oracle import ALL_RATINGS, expected, file_requests, read

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


def worker_params(out, base_url, redis_url, key, **crawl):
    return load_params(
        None,
        {
            "paths.raw": str(out),
            "demo.posts": POSTS,
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
            **{f"crawl.{k}": v for k, v in crawl.items()},
        },
    )


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
