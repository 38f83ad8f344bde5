"""Politeness the stock Scrapy middlewares lack: retries that honour Retry-After, and an
offsite check that reports what it refuses.

Scrapy's RetryMiddleware retries at once and ignores Retry-After; this one waits: the header's
seconds (or HTTP date) when the server sends one, else an exponential backoff. A 429 or 503 with
Retry-After pauses the whole site, since the server asked the client, not one request, to wait.
Scrapy's OffsiteMiddleware drops requests silently at scheduling time; this one refuses them in
the download path, so the spider's errback records an `offsite` reject.
"""

from __future__ import annotations

import logging
import time
from email.utils import parsedate_to_datetime

from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.misc import load_object

from crawler.adapters.common import host_of
from crawler.job import CrawlJob
from crawler.spider import domain_allowed

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 522, 524})
# Statuses whose Retry-After speaks for the whole site.
SITE_WIDE_STATUSES = frozenset({429, 503})


def parse_retry_after(value: str | bytes | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent or unreadable."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def retry_wait(attempt: int, backoff: float, retry_after: float | None, cap: float) -> float:
    """How long to wait before retry number `attempt` (1, 2, ...): the server's word, else backoff * 2^(attempt-1)."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    return min(backoff * 2 ** (attempt - 1), cap)


async def _sleep(seconds: float) -> None:
    # Imported here: importing the reactor at module level would install Twisted's default one.
    from twisted.internet import reactor, task

    await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))


class PoliteRetryMiddleware:
    """Retry 429/5xx/408 responses and network errors `crawl.retries` times, waiting politely."""

    def __init__(self, crawler) -> None:
        self.crawler = crawler
        job: CrawlJob = crawler.settings["ANIGAN_JOB"]
        self.retries = job.retries
        self.backoff = job.retry_backoff
        self.cap = job.max_retry_wait
        self.exceptions = tuple(load_object(path) for path in crawler.settings.getlist("RETRY_EXCEPTIONS"))
        self.paused_until: dict[str, float] = {}  # host -> wall time the site asked us to wait until

    @classmethod
    def from_crawler(cls, crawler) -> "PoliteRetryMiddleware":
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        # Wall-clock times, not monotonic: in the redis mode a retry may run in another process.
        not_before = max(request.meta.get("anigan_not_before", 0.0), self.paused_until.get(host_of(request.url), 0.0))
        wait = not_before - time.time()
        if wait > 0:
            self.crawler.stats.inc_value("anigan/retry_wait_seconds", wait)
            await _sleep(wait)

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status not in RETRY_STATUSES or request.meta.get("dont_retry"):
            return response
        now = time.time()
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        if retry_after is not None and response.status in SITE_WIDE_STATUSES:
            host = host_of(request.url)
            self.paused_until[host] = max(self.paused_until.get(host, 0.0), now + min(retry_after, self.cap))
        return self._retry(request, f"HTTP {response.status}", retry_after) or response

    def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if isinstance(exception, self.exceptions) and not request.meta.get("dont_retry"):
            return self._retry(request, f"{type(exception).__name__}: {exception}", None)
        return None

    def _retry(self, request: Request, why: str, retry_after: float | None) -> Request | None:
        attempt = request.meta.get("retry_times", 0) + 1
        stats = self.crawler.stats
        if attempt > self.retries:
            stats.inc_value("retry/max_reached")
            log.warning("crawl: giving up on %s after %d retries (%s)", request.url, self.retries, why)
            return None
        wait = retry_wait(attempt, self.backoff, retry_after, self.cap)
        log.info("crawl: retry %d/%d of %s in %.1f s (%s)", attempt, self.retries, request.url, wait, why)
        stats.inc_value("retry/count")
        retry = request.copy()
        retry.meta["retry_times"] = attempt
        retry.meta["anigan_not_before"] = time.time() + wait
        retry.dont_filter = True  # a retry is the same request again, not a duplicate
        return retry


class SiteOnlyMiddleware:
    """Refuse requests to hosts outside the crawl's domains (redirects included), in the download path."""

    def __init__(self, crawler) -> None:
        self.domains: tuple[str, ...] = crawler.settings["ANIGAN_JOB"].allowed_domains

    @classmethod
    def from_crawler(cls, crawler) -> "SiteOnlyMiddleware":
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        host = host_of(request.url)
        if self.domains and not domain_allowed(host, self.domains):
            raise IgnoreRequest(f"offsite request to {host!r} (allowed: {', '.join(self.domains)})")
