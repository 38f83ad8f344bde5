"""The one spider: walks a booru's listing pages through its dialect adapter and requests files.

It only decides which posts are worth a download (not known from an earlier run, a wanted
rating, an image post, within the size limits the API states) and turns every outcome into an
item: PostFile when the bytes arrived, PostRejected when they did not or must not. The pipeline
validates and writes both; nothing here touches the output folder.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet.defer import CancelledError
from twisted.python.failure import Failure

from crawler.adapters import DIALECTS
from crawler.adapters.common import host_of
from crawler.items import PageDone, Post, PostFile, PostRejected
from crawler.job import CrawlJob
from crawler.rawfolder import Ledger, RawFolder

log = logging.getLogger(__name__)

# Files we can validate and keep; video, flash and zip (ugoira) posts are skipped.
IMAGE_EXTS = frozenset({"jpg", "jpeg", "png", "gif", "webp", "bmp"})
# Files before the next listing page: a crawl keeps a page's worth of requests in flight, not the site's.
FILE_PRIORITY = 10
PAGE_PRIORITY = 0


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def domain_allowed(host: str, domains: tuple[str, ...]) -> bool:
    """A host is on site when it is one of `domains` or a subdomain of one."""
    return any(host == d or host.endswith("." + d) for d in domains)


def failure_reason(failure: Failure) -> tuple[str, str]:
    """A failed file request, after every retry, as a rejects.jsonl (reason, detail)."""
    error = failure.value
    retries = failure.request.meta.get("retry_times", 0) if hasattr(failure, "request") else 0
    tries = f" after {retries} retries" if retries else ""
    if isinstance(error, HttpError):
        status = error.response.status
        if status == 429:
            return "rate_limited", f"HTTP 429 Too Many Requests{tries}"
        if status >= 500:
            return "server_error", f"HTTP {status}{tries}"
        return "http_error", f"HTTP {status}"
    message = str(error)
    if isinstance(error, IgnoreRequest):
        if "robots.txt" in message:
            return "robots", "the site's robots.txt disallows this file"
        if "offsite" in message:
            return "offsite", f"{message}; add the domain to crawl.allowed_domains to allow it"
        return "download_failed", message
    if "max size" in message:
        return "too_many_bytes", message.split(" in request ")[0]
    if isinstance(error, CancelledError):
        return "download_failed", f"cancelled: {message or 'the download was stopped'}"
    return "download_failed", f"{type(error).__name__}{tries}: {message}"


class BooruSpider(scrapy.Spider):
    """Crawl one booru listing (a tag query) into items; see the module docstring."""

    name = "booru"

    def __init__(self, job: CrawlJob, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.dialect = DIALECTS[job.dialect]
        self.allowed_domains = list(job.allowed_domains)
        self.ledger = Ledger(RawFolder(job.output), job.limit)
        self.requested: set[str] = set()  # posts asked for in this run (pages shift on a live site)
        self.failed_pages: list[str] = []

    async def start(self):
        if self.ledger.full:
            log.info("crawl: %d images kept already, the limit is %d: nothing to do", len(self.ledger.images), self.job.limit)
            return
        yield self.page_request(self.dialect.first_cursor())

    def page_request(self, cursor: Any) -> Request:
        job = self.job
        url = self.dialect.page_url(job.base_url, job.tags, cursor, job.page_size, job.credentials)
        return Request(
            url,
            callback=self.parse_page,
            errback=self.page_failed,
            cb_kwargs={"cursor": cursor},
            meta={"anigan_key": f"page:{url}"},
            priority=PAGE_PRIORITY,
        )

    def _skip(self, reason: str) -> None:
        self.crawler.stats.inc_value(f"anigan/skipped/{reason}")

    def parse_page(self, response: Response, cursor: Any):
        key = response.request.meta["anigan_key"]
        try:
            data = json.loads(response.body) if response.body.strip() else []
        except ValueError:  # also UnicodeDecodeError
            self._page_broken(response.url, f"the listing is not JSON (starts with {response.body[:40]!r})")
            yield PageDone(key)
            return
        page = self.dialect.parse_page(self.job.base_url, self.job.source, data)
        for post_id, why in page.problems:
            log.warning("crawl: unreadable post %s on %s: %s", post_id, response.url, why)
            self._skip("unreadable")
        for post in page.posts:
            yield from self.consider(post)
        following = self.dialect.next_cursor(cursor, page)
        if following is not None and not self.ledger.full:
            yield self.page_request(following)
        yield PageDone(key)

    def consider(self, post: Post):
        """Skip, refuse or request one listed post."""
        job = self.job
        if self.ledger.known(post.key):
            self._skip("already_have")
            return
        if post.key in self.requested:
            self._skip("listed_twice")
            return
        if not job.filters.rating_ok(post.rating):
            self._skip("rating")
            return
        if not post.file_url:
            self._skip("no_file_url")
            return
        if post.ext and post.ext not in IMAGE_EXTS:
            self._skip("not_an_image_post")
            return
        refusal = self.refusal_from_api(post)
        if refusal:
            yield PostRejected(post, *refusal)
            return
        if not domain_allowed(host_of(post.file_url), job.allowed_domains):
            yield PostRejected(
                post, "offsite", f"the file is on {host_of(post.file_url)}, outside {', '.join(job.allowed_domains)}; "
                "add it to crawl.allowed_domains to allow it"
            )
            return
        self.requested.add(post.key)
        yield Request(
            post.file_url,
            callback=self.parse_file,
            errback=self.file_failed,
            cb_kwargs={"post": post},
            meta={"anigan_key": f"post:{post.key}", "download_maxsize": job.max_bytes},
            priority=FILE_PRIORITY,
        )

    def refusal_from_api(self, post: Post) -> tuple[str, str] | None:
        """Refuse before downloading what the API already says is too small or too big."""
        job = self.job
        if post.width and post.height:
            if post.width < job.min_width or post.height < job.min_height:
                return "too_small", f"{post.width}x{post.height} per the API, smaller than {job.min_width}x{job.min_height}"
            if post.width * post.height > job.max_pixels:
                return "too_many_pixels", (
                    f"{post.width}x{post.height} = {post.width * post.height} pixels per the API, "
                    f"more than max_pixels={job.max_pixels} (not downloaded)"
                )
        if post.file_size and post.file_size > job.max_bytes:
            return "too_many_bytes", f"{post.file_size} bytes per the API, more than max_bytes={job.max_bytes} (not downloaded)"
        return None

    def parse_file(self, response: Response, post: Post):
        yield PostFile(post, response.body, utc_now())

    def file_failed(self, failure: Failure):
        post = failure.request.cb_kwargs["post"]
        reason, detail = failure_reason(failure)
        yield PostRejected(post, reason, detail)

    def page_failed(self, failure: Failure):
        reason, detail = failure_reason(failure)
        self._page_broken(failure.request.url, f"{reason}: {detail}")
        yield PageDone(failure.request.meta["anigan_key"])

    def _page_broken(self, url: str, why: str) -> None:
        # The listing cannot go on past a page it could not read; the next run starts over from page one.
        log.error("crawl: listing page %s failed (%s); the crawl stops here, run it again to continue", url, why)
        self.failed_pages.append(url)
        self.crawler.stats.inc_value("anigan/failed_pages")
