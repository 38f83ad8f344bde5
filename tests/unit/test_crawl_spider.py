"""The spider's choices about one listed post, before any request: skip, refuse from the API, or fetch."""

import pytest
from scrapy.http import Request
from scrapy.utils.test import get_crawler

from anigan.params.crawl import CrawlParams
from crawler.items import Post, PostRejected
from crawler.job import make_job
from crawler.spider import BooruSpider


@pytest.fixture
def spider(tmp_path):
    params = CrawlParams(source="danbooru", min_width=100, min_height=100, max_pixels=1_000_000, max_bytes=50_000)
    crawler = get_crawler(BooruSpider)  # a real Crawler, not started: its stats count the skips
    crawler.stats.open_spider()
    return BooruSpider.from_crawler(crawler, job=make_job(params, str(tmp_path)))


def post(**fields) -> Post:
    base = dict(source="danbooru", post_id=1, post_url="https://danbooru.donmai.us/posts/1",
                file_url="https://cdn.donmai.us/original/ab/cd/x.png", width=800, height=600, rating="general",
                ext="png", file_size=10_000)
    return Post(**{**base, **fields})


def outcome(spider, p):
    results = list(spider.consider(p))
    if not results:
        (key,) = [k for k in spider.crawler.stats.get_stats() if k.startswith("anigan/skipped/")]
        spider.crawler.stats.clear_stats()
        return "skipped", key
    (result,) = results
    if isinstance(result, PostRejected):
        return result.reason, result.detail
    assert isinstance(result, Request)
    return "fetch", result.url


def test_a_good_post_is_fetched_once(spider):
    assert outcome(spider, post()) == ("fetch", "https://cdn.donmai.us/original/ab/cd/x.png")
    assert outcome(spider, post()) == ("skipped", "anigan/skipped/listed_twice")


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"width": 99}, "too_small"),
        ({"height": 50}, "too_small"),
        ({"width": 2000, "height": 2000}, "too_many_pixels"),
        ({"file_size": 50_001}, "too_many_bytes"),
        ({"file_url": "https://elsewhere.example/x.png"}, "offsite"),
    ],
)
def test_what_the_api_states_is_refused_before_downloading(spider, fields, reason):
    got, detail = outcome(spider, post(**fields))
    assert got == reason
    assert reason == "offsite" or "(not downloaded)" in detail or "per the API" in detail


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"rating": "explicit"}, "rating"),
        ({"rating": None}, "rating"),
        ({"file_url": None}, "no_file_url"),
        ({"ext": "mp4"}, "not_an_image_post"),
    ],
)
def test_posts_that_are_not_wanted_are_skipped(spider, fields, reason):
    assert outcome(spider, post(**fields)) == ("skipped", f"anigan/skipped/{reason}")


def test_unknown_sizes_are_left_to_the_download(spider):
    assert outcome(spider, post(width=None, height=None, file_size=None))[0] == "fetch"
