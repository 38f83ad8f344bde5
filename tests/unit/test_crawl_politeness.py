"""Retry-After is honoured (seconds or a date, capped); otherwise the wait doubles; domains are kept."""

from email.utils import format_datetime
from datetime import datetime, timezone

import pytest
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler.job import make_job, site_domains
from crawler.middlewares import parse_retry_after, retry_wait
from crawler.spider import domain_allowed, failure_reason
from anigan.errors import UserError
from anigan.params.crawl import CrawlParams

NOW = 1_800_000_000.0


@pytest.mark.parametrize("value, expected", [("0", 0.0), ("7", 7.0), (b"120", 120.0), (" 3 ", 3.0)])
def test_retry_after_in_seconds(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_as_an_http_date():
    when = format_datetime(datetime.fromtimestamp(NOW + 30, timezone.utc), usegmt=True)
    assert parse_retry_after(when, NOW) == pytest.approx(30.0)
    past = format_datetime(datetime.fromtimestamp(NOW - 30, timezone.utc), usegmt=True)
    assert parse_retry_after(past, NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5.2"])
def test_unreadable_retry_after_is_none(value):
    assert parse_retry_after(value, NOW) is None


def test_backoff_doubles_and_is_capped():
    assert [retry_wait(n, 0.5, None, 100) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert retry_wait(10, 1.0, None, 60) == 60


def test_retry_after_wins_over_backoff_but_not_over_the_cap():
    assert retry_wait(1, 8.0, 2.0, 300) == 2.0
    assert retry_wait(3, 0.1, 0.0, 300) == 0.0
    assert retry_wait(1, 1.0, 3600.0, 300) == 300


def test_domains_include_subdomains_only():
    assert domain_allowed("cdn.donmai.us", ("donmai.us",))
    assert domain_allowed("donmai.us", ("donmai.us",))
    assert not domain_allowed("evildonmai.us", ("donmai.us",))
    assert not domain_allowed("donmai.us.evil.com", ("donmai.us",))


def test_sources_allow_their_own_domain_and_other_instances_only_their_host():
    assert site_domains("danbooru", "https://danbooru.donmai.us", ()) == ("danbooru.donmai.us", "donmai.us")
    assert site_domains("danbooru", "https://safebooru.donmai.us", ()) == ("safebooru.donmai.us", "donmai.us")
    assert site_domains("danbooru", "https://mirror.example", ("cdn.example",)) == ("mirror.example", "cdn.example")
    assert site_domains("demo", "http://127.0.0.1:8080", ()) == ("127.0.0.1",)


def test_a_base_url_must_be_http():
    with pytest.raises(UserError, match="crawl.base_url"):
        make_job(CrawlParams(source="danbooru", base_url="ftp://example.org"), "out")


def _failure(error: Exception, retries: int = 0) -> Failure:
    failure = Failure(error)
    failure.request = Request("https://x.example/f.jpg", meta={"retry_times": retries})
    return failure


def _http_error(status: int) -> HttpError:
    request = Request("https://x.example/f.jpg")
    return HttpError(Response("https://x.example/f.jpg", status=status, request=request), "error")


@pytest.mark.parametrize(
    "error, reason",
    [
        (_http_error(429), "rate_limited"),
        (_http_error(503), "server_error"),
        (_http_error(404), "http_error"),
        (IgnoreRequest("Forbidden by robots.txt"), "robots"),
        (IgnoreRequest("offsite request to 'a.example'"), "offsite"),
        (Exception("Received 99 bytes which is larger than download max size (10) in request <GET x>."), "too_many_bytes"),
        (ConnectionRefusedError("refused"), "download_failed"),
    ],
)
def test_failed_downloads_get_a_reason(error, reason):
    assert failure_reason(_failure(error, retries=3))[0] == reason


def test_retries_are_named_in_the_detail():
    assert "after 3 retries" in failure_reason(_failure(_http_error(500), retries=3))[1]
