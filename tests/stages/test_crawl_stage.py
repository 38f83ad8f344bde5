"""The crawl stage against the demo booru on loopback: real Scrapy, real HTTP, real files.

The expected outcome of every post is derived from the generator's own description of it (its
kind, rating, tags, size), never from a previous crawl.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from anigan.cli import cli
from anigan.ids import sha256_hex
from anigan.params import load_params
from anigan.shards import Member, read_member
from crawler.crawl import CrawlRun, run_crawl
from crawler.demo.generator import generate_site
from crawler.demo.server import DemoBooru, Faults
from crawler.items import REJECT_REASONS
from tests.crawl_oracle import ALL_RATINGS, REASON_BY_KIND, expected, file_requests, read, stored_files

POSTS = 40  # every planted edge case appears from 40 posts on
MANIFEST_FIELDS = {"image_id", "source", "post_id", "post_url", "file_url", "md5", "width", "height", "tags", "rating", "fetched_at", "shard", "offset", "bytes"}


@pytest.fixture(scope="module")
def site():
    return generate_site(0, POSTS)


@pytest.fixture(scope="module")
def booru(site):
    with DemoBooru(site) as running:
        yield running


def make_params(out: Path, base_url: str | None = None, **crawl):
    overrides = {
        "paths.raw": str(out),
        "demo.posts": POSTS,
        "crawl.page_size": 10,  # several listing pages
        "crawl.limit": 1000,
        "crawl.retry_backoff": 0.0,
        **{f"crawl.{key}": value for key, value in crawl.items()},
    }
    if base_url:
        overrides["crawl.base_url"] = base_url
    return load_params(None, overrides)


def kept_ids(out: Path) -> list[int]:
    return [r["post_id"] for r in read(out, "manifest.jsonl")]


def reject_reasons(out: Path) -> dict[int, str]:
    return {r["post_id"]: r["reason"] for r in read(out, "rejects.jsonl")}


def outcome(out: Path) -> tuple:
    """What a crawl left, independent of timing: manifest (post, image), rejects, file names."""
    return (
        sorted((r["post_id"], r["image_id"]) for r in read(out, "manifest.jsonl")),
        sorted(reject_reasons(out).items()),
        sorted(stored_files(out)),
    )


@pytest.fixture(scope="module")
def crawled(tmp_path_factory, booru):
    """One uninterrupted crawl of the shared demo booru (Danbooru dialect), every rating."""
    out = tmp_path_factory.mktemp("crawl") / "raw"
    before = file_requests(booru)
    summary = run_crawl(make_params(out, booru.url, ratings=ALL_RATINGS))
    return out, summary, file_requests(booru) - before


def test_every_good_post_is_kept_once_under_its_content_address(crawled, site):
    out, summary, _ = crawled
    want, _ = expected(site)
    ids = kept_ids(out)
    assert sorted(ids) == sorted(want) and len(ids) == len(set(ids))
    files = stored_files(out)
    for record in read(out, "manifest.jsonl"):
        assert set(record) == MANIFEST_FIELDS
        post = site.by_id(record["post_id"])
        assert record["image_id"] == sha256_hex(post.data) and record["md5"] == post.md5
        assert record["tags"] == list(post.tags) and record["rating"] == post.rating and record["source"] == "demo"
        name = next(n for n in files if n.startswith(record["image_id"]))
        data = files[name]
        with Image.open(io.BytesIO(data)) as im:
            assert (record["width"], record["height"]) == im.size
            assert name.split(".")[1] == {"JPEG": "jpg", "PNG": "png", "GIF": "gif"}[im.format]
        assert sha256_hex(data) == record["image_id"]
        assert read_member(out / "shards", Member.of(record)) == data, "the record names its image's place in its shard"
        datetime.fromisoformat(record["fetched_at"])
    assert summary.stopped == "finished" and summary.kept == len(files)
    assert [p.suffix for p in (out / "shards").iterdir()] == [".tar"] * len(list((out / "shards").iterdir())), "temporary files left behind"


def test_exact_duplicates_are_stored_once_and_listed_for_each_post(crawled, site):
    out, summary, _ = crawled
    by_post = {r["post_id"]: r["image_id"] for r in read(out, "manifest.jsonl")}
    dup = next(p for p in site.posts if p.kind == "exact_duplicate")
    assert by_post[dup.post_id] == by_post[dup.duplicate_of]
    assert summary.posts == summary.kept + 1
    assert len(stored_files(out)) == len(set(by_post.values()))


def test_every_planted_bad_file_is_rejected_with_its_reason(crawled, site):
    out, summary, _ = crawled
    _, want = expected(site)
    assert reject_reasons(out) == want
    assert set(want.values()) == set(REASON_BY_KIND.values()) | {"robots"}
    for record in read(out, "rejects.jsonl"):
        assert record["detail"] and record["file_url"] and record["post_url"]
        assert record["reason"] in REJECT_REASONS
    assert summary.rejected == dict(Counter(want.values()))


def test_robots_txt_is_honoured(crawled, booru, site):
    _, _, fetched = crawled
    assert booru.requests["/robots.txt"] >= 1
    assert not [path for path in fetched if path.startswith("/forbidden/")]
    assert any(p.forbidden for p in site.posts)


def test_each_file_is_fetched_once(crawled, site):
    out, _, fetched = crawled
    want, _ = expected(site)
    paths = Counter(f"/images/{site.by_id(i).md5}.{site.by_id(i).ext}" for i in want)
    for path, n in paths.items():
        assert fetched[path] == n  # exact duplicates share a URL: one request per post


def test_summary_file_holds_the_counts(crawled, site):
    out, summary, _ = crawled
    metrics = json.loads((out / "crawl.json").read_text())
    want, rejected = expected(site)
    assert metrics["kept"] == summary.kept == len({site.by_id(i).image_id for i in want})
    assert metrics["posts"] == len(want)
    assert metrics["rejected"] == dict(Counter(rejected.values()))
    assert metrics["rejected_total"] == len(rejected)
    assert "rating" not in metrics["skipped"]
    assert metrics["stopped"] == "finished"
    state = json.loads((out / "crawl_state.json").read_text())
    assert state["query"]["source"] == "demo" and state["filters"]["ratings"] == sorted(ALL_RATINGS)


def test_demo_source_starts_its_own_booru_and_saves_ground_truth(tmp_path, site):
    out = tmp_path / "raw"
    summary = run_crawl(make_params(out, limit=4))
    assert summary.base_url.startswith("http://127.0.0.1:")
    assert summary.kept == 4 and summary.stopped == "limit"
    truth = read(out, "ground_truth.jsonl")
    assert truth == site.ground_truth()


@pytest.mark.parametrize("source", ["gelbooru", "konachan"])  # the Gelbooru and Moebooru dialects
def test_each_dialect_crawls_the_same_posts(tmp_path, booru, crawled, source):
    # The module's crawl spoke Danbooru to the same booru.
    out = tmp_path / "raw"
    summary = run_crawl(make_params(out, booru.url, source=source, ratings=ALL_RATINGS))
    assert outcome(out) == outcome(crawled[0])
    assert summary.stopped == "finished" and summary.source == source
    post_url = read(out, "manifest.jsonl")[0]["post_url"]
    assert post_url.startswith(booru.url) and str(read(out, "manifest.jsonl")[0]["post_id"]) in post_url


def test_tag_rating_and_size_filters(tmp_path, booru, site):
    out = tmp_path / "raw"
    run_crawl(make_params(out, booru.url, tags="solo", ratings=["general"], min_width=400))
    want, rejected = expected(site, ratings=("general",), tags=("solo",), min_width=400)
    assert want and sorted(kept_ids(out)) == sorted(want)
    for record in read(out, "manifest.jsonl"):
        assert record["rating"] == "general" and "solo" in record["tags"] and record["width"] >= 400
    assert reject_reasons(out) == rejected
    assert "too_small" in rejected.values()


@pytest.mark.slow
def test_limit_counts_images_in_total_across_runs(tmp_path, booru, site):
    out = tmp_path / "raw"
    first = run_crawl(make_params(out, booru.url, limit=7, concurrency=2))
    assert first.stopped == "limit" and first.kept == 7
    lines = (out / "manifest.jsonl").read_text().splitlines()
    before = file_requests(booru)
    second = run_crawl(make_params(out, booru.url, limit=12, concurrency=2))
    assert second.kept == 12 and second.new == 5
    assert (out / "manifest.jsonl").read_text().splitlines()[: len(lines)] == lines
    refetched = file_requests(booru) - before
    for record in (json.loads(line) for line in lines):
        post = site.by_id(record["post_id"])
        assert refetched[f"/images/{post.md5}.{post.ext}"] == 0
    again = run_crawl(make_params(out, booru.url, limit=12))
    assert again.stopped == "nothing_to_do" and again.kept == 12


def test_rate_limits_and_server_errors_are_retried_to_completion(tmp_path, site, crawled):
    with DemoBooru(site, faults=Faults(rate_limit_every=5, retry_after=0, error_every=7)) as flaky:
        out = tmp_path / "raw"
        summary = run_crawl(make_params(out, flaky.url, retries=6, ratings=ALL_RATINGS))
    assert summary.retries > 0 and summary.stopped == "finished"
    assert outcome(out) == outcome(crawled[0])


@pytest.mark.slow
def test_retry_after_is_waited_for(tmp_path):
    small = generate_site(0, 8)
    with DemoBooru(small, faults=Faults(rate_limit_every=6, retry_after=1)) as limited:
        summary = run_crawl(make_params(tmp_path / "raw", limited.url, ratings=ALL_RATINGS, concurrency=1))
    want, _ = expected(small, ratings=ALL_RATINGS)
    assert sorted(kept_ids(tmp_path / "raw")) == sorted(want)
    # Each 429 asked for one second; the crawler waited for it (recorded, not timed by the test).
    assert summary.retries >= 2 and summary.retry_wait_seconds >= summary.retries * 0.9


def test_files_above_max_bytes_are_cut_off_while_downloading(tmp_path, booru, site):
    # The Gelbooru dialect states no file sizes, so the download itself must stop at the limit
    # (refusing from a stated size is a unit test: test_crawl_spider).
    limit = 15_000
    want, rejected = expected(site, max_bytes=limit, api_sizes=False)
    out = tmp_path / "raw"
    run_crawl(make_params(out, booru.url, source="gelbooru", max_bytes=limit, ratings=ALL_RATINGS))
    assert sorted(kept_ids(out)) == sorted(want)
    assert reject_reasons(out) == rejected and "too_many_bytes" in rejected.values()
    assert all(len(data) <= limit for data in stored_files(out).values())


def test_files_outside_the_site_are_refused_as_offsite(tmp_path, booru):
    # The API is asked at localhost; it names its files at 127.0.0.1, another host.
    localhost = booru.url.replace("127.0.0.1", "localhost")
    before = file_requests(booru)
    out = tmp_path / "raw"
    summary = run_crawl(make_params(out, localhost))
    reasons = Counter(reject_reasons(out).values())
    assert summary.kept == 0 and reasons["offsite"] > 0
    assert "crawl.allowed_domains" in read(out, "rejects.jsonl")[0]["detail"]
    assert file_requests(booru) == before


def test_a_listing_that_fails_is_reported_not_hidden(tmp_path, booru):
    summary = run_crawl(make_params(tmp_path / "raw", booru.url + "/no-api-here", retries=1))
    assert summary.stopped == "incomplete" and summary.kept == 0
    assert len(summary.failed_pages) == 1 and "/no-api-here/posts.json" in summary.failed_pages[0]


def _interrupted_then_resumed(tmp_path, site, stop) -> tuple[Path, set[int], Counter, Counter]:
    """Crawl a slow booru, stop the worker with `stop` once 5 images are kept, then resume."""
    with DemoBooru(site, faults=Faults(delay=0.03)) as slow:
        params = make_params(tmp_path / "raw", slow.url, concurrency=2, ratings=ALL_RATINGS)
        with CrawlRun(params) as run:
            for progress in run.events():
                if progress.kept >= 5:
                    stop(run)
                    break
            stopped = run.finish()
        assert stopped.stopped in ("killed", "interrupted")
        kept_before = set(kept_ids(tmp_path / "raw"))
        requests_before = file_requests(slow)
        resumed = run_crawl(params)
        assert resumed.stopped == "finished"
        return tmp_path / "raw", kept_before, requests_before, file_requests(slow) - requests_before


def _assert_resumed_like_uninterrupted(out, kept_before, refetched, crawled, site):
    want, _ = expected(site)
    assert 5 <= len(kept_before) < len(want), "the crawl was not stopped part way"
    assert outcome(out) == outcome(crawled[0])
    ids = kept_ids(out)
    assert len(ids) == len(set(ids)) and len(read(out, "rejects.jsonl")) == len(reject_reasons(out))
    for post_id in kept_before:
        post = site.by_id(post_id)
        shared = [p for p in site.posts if p.md5 == post.md5 and p.post_id not in kept_before]
        assert refetched[f"/images/{post.md5}.{post.ext}"] == len(shared)  # only posts not yet kept


@pytest.mark.slow
def test_a_killed_crawl_resumes_to_the_same_result(tmp_path, site, crawled):
    out, kept_before, _, refetched = _interrupted_then_resumed(tmp_path, site, lambda run: run.kill())
    _assert_resumed_like_uninterrupted(out, kept_before, refetched, crawled, site)


@pytest.mark.slow
def test_ctrl_c_stops_gracefully_and_resumes_to_the_same_result(tmp_path, site, crawled):
    out, kept_before, _, refetched = _interrupted_then_resumed(tmp_path, site, lambda run: run.interrupt())
    _assert_resumed_like_uninterrupted(out, kept_before, refetched, crawled, site)


def test_narrower_params_drop_earlier_records_without_fetching_again(tmp_path, booru, site, crawled):
    out = tmp_path / "raw"
    shutil.copytree(crawled[0], out)
    # The copy was crawled from the same booru, so the query matches and the run resumes.
    before = file_requests(booru)
    summary = run_crawl(make_params(out, booru.url, ratings=["general"]))
    want, _ = expected(site, ratings=("general",))
    assert sorted(kept_ids(out)) == sorted(want)
    assert summary.dropped["rating"] == len(expected(site)[0]) - len(want)
    assert set(stored_files(out)) == {n for n in stored_files(crawled[0]) if n.split(".")[0] in {site.by_id(i).image_id for i in want}}
    assert file_requests(booru) == before


@pytest.mark.slow
def test_another_query_starts_over(tmp_path, booru, site, crawled):
    out = tmp_path / "raw"
    shutil.copytree(crawled[0], out)
    summary = run_crawl(make_params(out, booru.url, tags="multiple_girls", ratings=ALL_RATINGS))
    want, _ = expected(site, tags=("multiple_girls",))
    assert summary.started_over and sorted(kept_ids(out)) == sorted(want)
    assert len(stored_files(out)) == summary.kept


def test_cli_crawls_and_prints_the_summary(tmp_path, booru):
    out = tmp_path / "raw"
    args = ["crawl", "--base-url", booru.url, "--limit", "3", "--out", str(out)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "3 images kept" in result.output and "crawl.json" in result.output
    assert len(set(r["image_id"] for r in read(out, "manifest.jsonl"))) == 3


def test_cli_bad_params_are_one_clear_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "anigan", "-S", "crawl.ratings=[safe]", "crawl", "--out", str(tmp_path / "raw")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "crawl.ratings" in proc.stderr and "general" in proc.stderr
    assert not (tmp_path / "raw").exists()


def test_md5_of_every_kept_file_matches_the_api(crawled):
    out, _, _ = crawled
    files = stored_files(out)
    for record in read(out, "manifest.jsonl"):
        data = next(d for n, d in files.items() if n.startswith(record["image_id"]))
        assert hashlib.md5(data).hexdigest() == record["md5"]
