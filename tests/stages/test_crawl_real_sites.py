"""The crawler against the demo booru dressed as the real sites (crawler.demo.server.LIKE): their
robots.txt, authentication, depth cap, escaped tags and page sizes, over real loopback HTTP.

Each test would fail without its fix: it asserts what the server saw (no listing request when
robots.txt refuses it, one refused request when the credentials are missing) and what the user
is told (one line, the exit code), not only that something went wrong.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from anigan.errors import UserError
from anigan.params.schema import ParamsError
from crawler.crawl import run_crawl
from crawler.demo.generator import COPYRIGHT_TAG, generate_site
from crawler.demo.server import DEMO_API_KEY, DEMO_USER_ID, LIKE, DemoBooru, Faults
from tests.crawl_oracle import crawl_params, expected, file_requests, read

POSTS = 40
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site():
    return generate_site(0, POSTS)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`anigan ARGS` in a fresh process, as a user (or `dvc repro`) runs it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ANIGAN_BOORU_")} | (env or {})
    return subprocess.run([sys.executable, "-m", "anigan", *args], capture_output=True, text=True, env=environ, cwd=REPO, timeout=300)


def no_booru_account(monkeypatch) -> None:
    monkeypatch.delenv("ANIGAN_BOORU_LOGIN", raising=False)
    monkeypatch.delenv("ANIGAN_BOORU_API_KEY", raising=False)


def kept_ids(out: Path) -> set[int]:
    return {r["post_id"] for r in read(out, "manifest.jsonl")}


# --- robots.txt -------------------------------------------------------------------------------


def test_danbooru_robots_txt_stops_the_crawl_before_any_listing_request(tmp_path, site, monkeypatch):
    no_booru_account(monkeypatch)
    with DemoBooru(site, quirks=LIKE["danbooru.donmai.us"]) as booru:
        with pytest.raises(UserError) as refused:
            run_crawl(crawl_params(tmp_path / "raw", booru.url, source="danbooru"))
        assert booru.requests["/posts.json"] == 0 and booru.requests["/robots.txt"] >= 1
    line = str(refused.value)
    assert "\n" not in line
    assert 'rule "Disallow: /*.json"' in line and "/posts.json" in line
    assert "ANIGAN_BOORU_API_KEY" in line and "-S crawl.obey_robots=false" in line and "another source" in line
    assert read(tmp_path / "raw", "manifest.jsonl") == []


@pytest.mark.slow
def test_robots_refusal_exits_2_with_one_line_and_obey_robots_false_crawls(tmp_path, site):
    with DemoBooru(site, quirks=LIKE["danbooru.donmai.us"]) as booru:
        refused = cli("crawl", "--source", "danbooru", "--base-url", booru.url, "--out", str(tmp_path / "raw"))
        assert refused.returncode == 2, refused.stderr
        assert [line for line in refused.stderr.splitlines() if line.startswith("error:")] == [refused.stderr.strip()]
        assert "Disallow: /*.json" in refused.stderr
        # The user's choice, with an account, as the message says:
        account = {"ANIGAN_BOORU_LOGIN": "someone", "ANIGAN_BOORU_API_KEY": "k3yk3yk3y"}
        done = cli("-S", "crawl.obey_robots=false", "-S", "crawl.limit=5", "crawl", "--source", "danbooru",
                   "--base-url", booru.url, "--out", str(tmp_path / "raw2"), env=account)
    assert done.returncode == 0, done.stderr
    assert len({r["image_id"] for r in read(tmp_path / "raw2", "manifest.jsonl")}) == 5


# --- authentication ---------------------------------------------------------------------------


def test_gelbooru_without_credentials_is_a_configuration_error_not_retried(tmp_path, site, monkeypatch):
    no_booru_account(monkeypatch)
    with DemoBooru(site, quirks=LIKE["gelbooru.com"]) as booru:
        with pytest.raises(UserError) as refused:
            run_crawl(crawl_params(tmp_path / "raw", booru.url, source="gelbooru", retries=3))
        assert booru.requests["/index.php"] == 1  # refused once, not retried
    line = str(refused.value)
    assert "HTTP 401" in line and "Missing authentication" in line  # the server's own words
    assert "ANIGAN_BOORU_LOGIN" in line and "numeric user id" in line and "ANIGAN_BOORU_API_KEY" in line
    assert "\n" not in line
    assert '"config_error"' in (tmp_path / "raw" / "crawl.json").read_text()


def test_gelbooru_with_its_account_crawls_escaped_tags_unescaped(tmp_path, site, monkeypatch):
    monkeypatch.setenv("ANIGAN_BOORU_LOGIN", DEMO_USER_ID)
    monkeypatch.setenv("ANIGAN_BOORU_API_KEY", DEMO_API_KEY)
    with DemoBooru(site, quirks=LIKE["gelbooru.com"]) as booru:
        summary = run_crawl(crawl_params(tmp_path / "raw", booru.url, source="gelbooru"))
    assert summary.stopped == "finished"
    want, _ = expected(site)
    records = read(tmp_path / "raw", "manifest.jsonl")
    assert kept_ids(tmp_path / "raw") == want
    for record in records:
        assert record["tags"] == list(site.by_id(record["post_id"]).tags)
    assert any(COPYRIGHT_TAG in r["tags"] for r in records) and "'" in COPYRIGHT_TAG


def test_credentials_given_by_half_stop_with_one_line(tmp_path, site):
    with DemoBooru(site, quirks=LIKE["gelbooru.com"]) as booru:
        half = cli("crawl", "--source", "gelbooru", "--base-url", booru.url, "--out", str(tmp_path / "raw"),
                   env={"ANIGAN_BOORU_LOGIN": DEMO_USER_ID})
        assert booru.requests == Counter()  # nothing was asked of the site
    assert half.returncode == 2 and half.stderr.count("\n") == 1
    assert "ANIGAN_BOORU_LOGIN is set but ANIGAN_BOORU_API_KEY is not" in half.stderr


@pytest.mark.slow
def test_no_credential_appears_in_any_log_report_or_manifest(tmp_path, site):
    wrong = {"ANIGAN_BOORU_LOGIN": "918273640", "ANIGAN_BOORU_API_KEY": "wr0ngk3y5ecret"}
    right = {"ANIGAN_BOORU_LOGIN": DEMO_USER_ID, "ANIGAN_BOORU_API_KEY": DEMO_API_KEY}
    # A listing page that fails after every retry is logged as an error with its URL.
    flaky = replace(LIKE["gelbooru.com"])
    with DemoBooru(site, quirks=flaky) as booru:
        failing = cli("-vv", "crawl", "--source", "gelbooru", "--base-url", booru.url, "--out", str(tmp_path / "a"), env=wrong)
        working = cli("-vv", "-S", "crawl.limit=6", "crawl", "--source", "gelbooru", "--base-url", booru.url,
                      "--out", str(tmp_path / "b"), env=right)
    with DemoBooru(site, quirks=flaky, faults=Faults(error_every=1)) as broken:
        erroring = cli("-vv", "-S", "crawl.retries=1", "-S", "crawl.retry_backoff=0", "crawl", "--source", "gelbooru",
                       "--base-url", broken.url, "--out", str(tmp_path / "c"), env=right)
    assert failing.returncode == 2 and working.returncode == 0 and erroring.returncode == 1, erroring.stderr
    # -vv logs every request: the listing URLs were logged, masked.
    assert "api_key=***" in working.stderr and "user_id=***" in working.stderr
    written = [p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl")]
    for text in [failing.stdout, failing.stderr, working.stdout, working.stderr, erroring.stdout, erroring.stderr, *written]:
        for secret in (*wrong.values(), *right.values()):
            assert secret not in text


# --- what the site serves ---------------------------------------------------------------------


def test_page_sizes_above_what_the_site_serves_are_refused_naming_the_key(tmp_path, site):
    with DemoBooru(site, quirks=LIKE["gelbooru.com"]) as booru:
        refused = cli("-S", "crawl.page_size=150", "crawl", "--source", "gelbooru", "--base-url", booru.url,
                      "--out", str(tmp_path / "raw"), env={"ANIGAN_BOORU_LOGIN": DEMO_USER_ID, "ANIGAN_BOORU_API_KEY": DEMO_API_KEY})
        assert booru.requests == Counter()
    assert refused.returncode == 2 and "crawl.page_size = 150" in refused.stderr and "at most 100" in refused.stderr
    with pytest.raises(ParamsError, match="crawl.page_size = 1001"):
        crawl_params(tmp_path / "x", "http://127.0.0.1:1", source="safebooru", page_size=1001)
    assert crawl_params(tmp_path / "x", "http://127.0.0.1:1", source="safebooru", page_size=1000).crawl.page_size == 1000


def test_gelbooru_pages_past_its_depth_cap_by_id_keyset(tmp_path, site):
    # The cap at 25 results: pid paging (10 a page) would end after 20 posts, as if finished.
    with DemoBooru(site, quirks=replace(LIKE["safebooru.org"], depth_cap=25)) as booru:
        summary = run_crawl(crawl_params(tmp_path / "raw", booru.url, source="safebooru"))
        listings = list(booru.listings)
    assert summary.stopped == "finished"
    assert kept_ids(tmp_path / "raw") == expected(site)[0]
    assert all("pid=0" in url for url in listings) and any("id%3A%3C" in url for url in listings)


@pytest.mark.slow
def test_a_listing_cut_short_by_the_site_is_incomplete_and_exits_1(tmp_path, site):
    # A cap below one page: the site reports 40 results and returns none.
    with DemoBooru(site, quirks=replace(LIKE["safebooru.org"], depth_cap=5)) as booru:
        summary = run_crawl(crawl_params(tmp_path / "raw", booru.url, source="safebooru"))
        assert summary.stopped == "incomplete" and "reports 40 results" in summary.cut_short
        result = cli("crawl", "--source", "safebooru", "--base-url", booru.url, "--out", str(tmp_path / "raw2"))
    assert result.returncode == 1 and "incomplete" in result.stdout and "cut short" in result.stdout


@pytest.mark.slow
def test_a_failed_listing_page_exits_1_saying_to_run_again(tmp_path, site):
    with DemoBooru(site, faults=Faults(error_every=1)) as broken:
        result = cli("-S", "crawl.retries=1", "-S", "crawl.retry_backoff=0", "crawl", "--base-url", broken.url, "--out", str(tmp_path / "raw"))
    assert result.returncode == 1, result.stderr
    assert "run the same command again to resume" in result.stdout


def test_restricted_video_and_zip_posts_are_skipped_with_their_reason(tmp_path, site):
    with DemoBooru(site, quirks=replace(LIKE["danbooru.donmai.us"], robots_txt="User-agent: *\nDisallow: /forbidden/\n")) as booru:
        summary = run_crawl(crawl_params(tmp_path / "raw", booru.url, source="danbooru"))
    assert summary.skipped["no_file_url"] > 0 and summary.skipped["not_an_image_post"] > 0
    hidden = {p.post_id for p in site.posts if p.post_id % 9 == 0 or p.post_id % 11 == 0 or p.post_id % 13 == 0}
    assert kept_ids(tmp_path / "raw") == expected(site)[0] - hidden


@pytest.mark.slow
def test_a_file_answered_403_is_tried_again_by_the_next_run(tmp_path, site):
    out = tmp_path / "raw"
    with DemoBooru(site, faults=Faults(challenge_every=4)) as guarded:
        first = run_crawl(crawl_params(out, guarded.url))
        port = guarded.url
    forbidden = {r["post_id"] for r in read(out, "rejects.jsonl") if r["reason"] == "forbidden"}
    assert forbidden and first.stopped == "finished"
    # The same site (same address: same query) without its CDN challenge.
    with DemoBooru(site, port=int(port.rsplit(":", 1)[1])) as calm:
        run_crawl(crawl_params(out, calm.url))
        refetched = file_requests(calm)
    # Each post challenged before now has its own outcome, as if the CDN had never refused it.
    want, rejected = expected(site)
    assert kept_ids(out) == want
    assert {r["post_id"]: r["reason"] for r in read(out, "rejects.jsonl")} == rejected
    assert sum(refetched.values()) == len(forbidden)


def test_a_tag_query_with_order_is_refused_before_any_request(tmp_path, site):
    with DemoBooru(site) as booru:
        result = cli("crawl", "--base-url", booru.url, "--tags", "1girl order:score", "--out", str(tmp_path / "raw"))
        assert booru.requests == Counter()
    assert result.returncode == 2 and "'order:score'" in result.stderr and "crawl.tags" in result.stderr


@pytest.mark.slow
def test_resume_reads_the_newest_pages_then_goes_on_where_it_reached(tmp_path):
    out = tmp_path / "raw"
    with DemoBooru(generate_site(0, 30)) as booru:
        first = run_crawl(crawl_params(out, booru.url, limit=8, concurrency=1))
        assert first.stopped == "limit"
        seen = list(booru.listings)
        booru.publish(generate_site(0, 45))  # 15 posts uploaded since, newer than all the others
        second = run_crawl(crawl_params(out, booru.url))
        again = list(booru.listings[len(seen):])
    assert second.stopped == "finished"
    # Every post of the grown site was decided (kept or refused), none twice: nothing missed.
    decided = [r["post_id"] for r in read(out, "manifest.jsonl") + read(out, "rejects.jsonl")]
    assert sorted(decided) == list(range(1, 46))
    # The refresh reads from the newest page down to the first run's newest post (two pages of
    # 10 for 15 new posts), then the walk goes on from where the first run reached.
    assert again[:2] == [seen[0], again[1]] and "page=b36" in again[1]
    assert not set(again[2:]) & set(seen), "a page the first run read was read again"
