"""A crawl killed (SIGKILL) while an image shard is open, with a torn member at the shard's end,
resumes without losing or duplicating anything: the manifest equals an uninterrupted crawl's, every
record's bytes lie at its shard and offset, and no member is stored twice or left unnamed."""

from __future__ import annotations

import tarfile
from collections import Counter
from pathlib import Path

import pytest

from anigan.ids import sha256_hex
from anigan.shards import Member, ShardFolder, read_member
from crawler.crawl import CrawlRun, run_crawl
from crawler.demo.generator import generate_site
from crawler.demo.server import DemoBooru, Faults
from crawler.rawfolder import PREFIX, SHARDS
from tests.crawl_oracle import crawl_params, read

POSTS = 30
SHARD_SIZE = 3  # many shards, so the kill lands with one open
PLACE = ("fetched_at", "shard", "offset")  # where and when, not what: differ between the two crawls


def make_params(out: Path, base_url: str):
    return crawl_params(out, base_url, concurrency=2, shard_size=SHARD_SIZE)


def manifest(out: Path, base_url: str) -> list[dict]:
    """The manifest without places and fetch times, URLs relative to the booru (each crawl had its own port)."""
    records = [{k: (v.removeprefix(base_url) if k.endswith("_url") else v) for k, v in r.items() if k not in PLACE} for r in read(out, "manifest.jsonl")]
    return sorted(records, key=lambda r: r["post_id"])


def shard_paths(out: Path) -> list[Path]:
    shards = ShardFolder(out / SHARDS, PREFIX)
    return [shards.path(name) for name in shards.names()]


def tear_last_shard(out: Path) -> None:
    """Append what a writer killed inside a member leaves: a whole header and half its data."""
    info = tarfile.TarInfo("f" * 64 + ".png")
    info.size = 4000
    with open(shard_paths(out)[-1], "ab") as f:
        f.write(info.tobuf(format=tarfile.USTAR_FORMAT) + b"\x89PNG" + b"\0" * 1000)


@pytest.mark.slow  # two crawls, one of a slowed booru: about half a minute
def test_a_crawl_killed_mid_shard_resumes_losing_and_duplicating_nothing(tmp_path):
    site = generate_site(0, POSTS)
    with DemoBooru(site) as booru:
        run_crawl(make_params(tmp_path / "whole", booru.url))
        whole = manifest(tmp_path / "whole", booru.url)

    out = tmp_path / "raw"
    with DemoBooru(site, faults=Faults(delay=0.03)) as slow:
        params = make_params(out, slow.url)
        with CrawlRun(params) as run:
            for progress in run.events():
                if progress.kept >= SHARD_SIZE + 1:  # the second shard holds a member or more: open
                    run.kill()
                    break
            assert run.finish().stopped == "killed"
        kept_before = len(read(out, "manifest.jsonl"))
        assert 0 < kept_before < len(whole), "the crawl was not killed part way"
        assert len(shard_paths(out)) >= 2
        tear_last_shard(out)
        assert run_crawl(params).stopped == "finished"
        assert manifest(out, slow.url) == whole

    records = read(out, "manifest.jsonl")
    for record in records:
        assert sha256_hex(read_member(out / SHARDS, Member.of(record))) == record["image_id"]
    members: Counter = Counter()
    for path in shard_paths(out):
        with tarfile.open(path) as tar:  # plain tar readers see whole shards
            names = tar.getnames()
        assert len(names) <= SHARD_SIZE
        members.update(names)
    assert max(members.values()) == 1, [name for name, n in members.items() if n > 1]
    # every member a record names, and nothing else (the torn one and any unnamed one are gone)
    assert {name.split(".")[0] for name in members} == {r["image_id"] for r in records}
