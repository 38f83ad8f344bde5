"""A crawl killed outright (SIGKILL) three times and resumed reads no listing page twice beyond each
run's refresh of the newest page, fetches no recorded file again, and ends with the manifest of
one uninterrupted crawl."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from crawler.adapters import DIALECTS
from crawler.crawl import CrawlRun, run_crawl
from crawler.demo.generator import generate_site
from crawler.demo.server import DemoBooru, Faults
from tests.crawl_oracle import crawl_params, file_requests, read

POSTS = 60
PAGE = 5


def make_params(out: Path, base_url: str):
    return crawl_params(out, base_url, page_size=PAGE, concurrency=2)


def manifest_without_times(out: Path, base_url: str) -> list[dict]:
    """The manifest without fetch times and shard places (both depend on when each file arrived),
    URLs relative to the booru (the two crawls ran on two ports)."""
    when_and_where = {"fetched_at", "shard", "offset"}
    records = [{k: (v.removeprefix(base_url) if k.endswith("_url") else v) for k, v in r.items() if k not in when_and_where} for r in read(out, "manifest.jsonl")]
    return sorted(records, key=lambda r: r["post_id"])


def listing_target(cursor) -> str:
    """The path and query the crawler asks for at `cursor` (the Danbooru dialect the demo source speaks)."""
    return DIALECTS["danbooru"].page_url("", "", cursor, PAGE, {})


def recorded_paths(out: Path, site) -> Counter:
    """File paths of the posts recorded so far (manifest or rejects), once per post."""
    ids = [r["post_id"] for r in read(out, "manifest.jsonl") + read(out, "rejects.jsonl")]
    return Counter(f"/images/{site.by_id(i).md5}.{site.by_id(i).ext}" for i in ids)


def one_run(params, kill_at: int | None):
    """A crawl run, killed with SIGKILL once `kill_at` images are kept (None: to the end)."""
    with CrawlRun(params) as run:
        for progress in run.events():
            if kill_at is not None and progress.kept >= kill_at:
                run.kill()
                break
        return run.finish()


@pytest.mark.slow
def test_three_kills_and_resumes_end_like_one_uninterrupted_crawl(tmp_path):
    site = generate_site(0, POSTS)
    with DemoBooru(site) as booru:
        run_crawl(make_params(tmp_path / "whole", booru.url))
        whole = manifest_without_times(tmp_path / "whole", booru.url)
    posts_per_path = Counter(f"/images/{p.md5}.{p.ext}" for p in site.posts)

    out = tmp_path / "raw"
    first_page = listing_target(DIALECTS["danbooru"].first_cursor())
    with DemoBooru(site, faults=Faults(delay=0.02)) as slow:
        params = make_params(out, slow.url)
        for kill_at in (6, 16, 28, None):
            # What the earlier runs left: the pages read, the files recorded, where the walk stands.
            read_before, files_before = set(slow.listings), file_requests(slow)
            listings_before, recorded = len(slow.listings), recorded_paths(out, site)
            walk = json.loads((out / "listing.json").read_text()) if (out / "listing.json").exists() else None
            summary = one_run(params, kill_at)
            assert summary.stopped == ("killed" if kill_at else "finished")
            listings = Counter(slow.listings[listings_before:])
            assert max(listings.values()) == 1, f"a listing page read twice in one run: {listings}"
            again = set(listings) & read_before
            if walk is not None:
                # Only the refresh (the newest page) and the page the walk stopped at, whose answer
                # the killed run may not have read, are asked for again.
                assert again <= {first_page, listing_target(walk["cursor"])}, again
                assert first_page in listings
            fetched = file_requests(slow) - files_before
            for path, n in recorded.items():
                assert fetched[path] <= posts_per_path[path] - n, f"{path} was recorded before the kill and fetched again"
        assert manifest_without_times(out, slow.url) == whole
    assert sorted(r["post_id"] for r in read(out, "rejects.jsonl")) == sorted(r["post_id"] for r in read(tmp_path / "whole", "rejects.jsonl"))
