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
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.defer import deferred_from_coro
from twisted.internet.defer import CancelledError
from twisted.python.failure import Failure

from crawler import walk as walks
from crawler.adapters import DIALECTS
from crawler.adapters.common import host_of
from crawler.items import PageDone, Post, PostFile, PostRejected
from crawler.job import CrawlJob
from anigan.keys import POST, KeySet, post_digest
from crawler.rawfolder import Ledger, RawFolder
from crawler.redact import redact
from crawler.robots import refusing_rule

log = logging.getLogger(__name__)

# Files we can validate and keep; video, flash and zip (ugoira) posts are skipped.
IMAGE_EXTS = frozenset({"jpg", "jpeg", "png", "gif", "webp", "bmp"})
# Files before the next listing page: a crawl keeps a page's worth of requests in flight, not the site's.
FILE_PRIORITY = 10
PAGE_PRIORITY = 0
# A listing answered with these is refused for good: a rerun gets the same until the user acts.
REFUSED_STATUSES = frozenset({401, 403, 422})


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
        if status == 403:
            return "forbidden", "HTTP 403 Forbidden (a CDN challenge or hotlink guard); a later run tries again"
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


def server_message(body: bytes) -> str:
    """The server's own words in an error answer: a JSON `message`/`error`/`reason`, else its first text line."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "reason", "error"):
            if isinstance(data.get(key), str) and data[key].strip():
                return data[key].strip()[:300]
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line[:300] or "no message"


class BooruSpider(scrapy.Spider):
    """Crawl one booru listing (a tag query) into items; see the module docstring.

    The walk over the listing is recorded (crawler.walk): a resumed run re-reads the newest pages
    for posts added since, then goes on where the last run reached. A listing refused for good
    (robots.txt, 401/403/422) stops the crawl with `config_error`, one line saying what to do.
    """

    name = "booru"

    def __init__(self, job: CrawlJob, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job
        self.dialect = DIALECTS[job.dialect]
        self.allowed_domains = list(job.allowed_domains)
        self.folder = RawFolder(job.output)
        self.ledger = Ledger(self.folder, job.limit)
        self.requested = KeySet(POST, self.folder.root)  # posts asked for in this run (pages shift on a live site), as digests on disk
        self.failed_pages: list[str] = []  # redacted URLs
        self.config_error: str | None = None
        self.cut_short: str | None = None
        # Several processes share one listing in the redis mode; each folder's walk is its own only here.
        self.recording = job.scheduler == "memory"
        self.walk = walks.load(self.folder.walk, job.filters.as_dict()) if self.recording else walks.Walk()
        self.asked: dict[str, Post] = {p.key: p for p in self.walk.pending}
        self.newest_id: int | None = None  # the newest post id this run has seen

    async def start(self):
        if self.ledger.full:
            log.info("crawl: %d images kept already, the limit is %d: nothing to do", self.ledger.image_count, self.job.limit)
            return
        for post in self.walk.pending:  # asked for by an earlier run, their pages already read
            for request in self.consider(post):
                yield request
        refreshing = self.walk.high is not None
        if refreshing:
            log.info("crawl: resuming: newest pages first (posts above id %s), then on from %s", self.walk.high, self.walk.cursor)
        yield self.page_request(self.dialect.first_cursor(), refreshing)

    def page_request(self, cursor: Any, refreshing: bool = False) -> Request:
        job = self.job
        url = self.dialect.page_url(job.base_url, job.tags, cursor, job.page_size, job.credentials)
        return Request(
            url,
            callback=self.parse_page,
            errback=self.page_failed,
            cb_kwargs={"cursor": cursor, "refreshing": refreshing},
            meta={"anigan_key": f"page:{redact(url, job.secrets)}"},
            priority=PAGE_PRIORITY,
        )

    def _skip(self, reason: str) -> None:
        self.crawler.stats.inc_value(f"anigan/skipped/{reason}")

    def parse_page(self, response: Response, cursor: Any, refreshing: bool = False):
        key = response.request.meta["anigan_key"]
        try:
            data = json.loads(response.body) if response.body.strip() else []
        except ValueError:  # also UnicodeDecodeError
            self._page_broken(response.url, f"the listing is not JSON (starts with {response.body[:40]!r})")
            yield PageDone(key)
            return
        page = self.dialect.parse_page(self.job.base_url, self.job.source, data)
        for post_id, why in page.problems:
            log.warning("crawl: unreadable post %s on %s: %s", post_id, redact(response.url, self.job.secrets), why)
            self._skip("unreadable")
        ids = [p.post_id for p in page.posts]
        if ids:
            self.newest_id = max(ids + ([self.newest_id] if self.newest_id is not None else []))
        high = self.walk.high
        for post in page.posts:
            if refreshing and high is not None and post.post_id <= high:
                continue  # covered by the earlier walk: decided, or pending from it
            yield from self.consider(post)
        following = self.dialect.next_cursor(cursor, page)
        if page.cut_short:
            self.cut_short = f"{redact(response.url, self.job.secrets)}: {page.cut_short}"
            log.error("crawl: the listing was cut short: %s; the crawl is incomplete", self.cut_short)
            following = None
        if refreshing and walks.refresh_reached(page.lowest_id, high):
            # Caught up with the earlier walk: the newest id it covers moves up; go on where it reached.
            self.walk = walks.after_page(self.walk, self.walk.cursor, self.newest_id, self._pending(), self.walk.finished)
            self._record()
            if not self.walk.finished and self.walk.cursor is not None and not self.ledger.full:
                yield self.page_request(self.walk.cursor)
        elif refreshing:
            if following is not None and not self.ledger.full:
                yield self.page_request(following, refreshing=True)
        else:
            ended = following is None and not page.cut_short
            self.walk = walks.after_page(self.walk, following, self.newest_id, self._pending(), ended)
            self._record()
            if following is not None and not self.ledger.full:
                yield self.page_request(following)
        yield PageDone(key)

    def _pending(self) -> tuple[Post, ...]:
        """Posts asked for whose outcome is not recorded for good yet; the settled ones are forgotten
        (a run of a million posts would otherwise hold every one it asked for)."""
        self.asked = {key: p for key, p in self.asked.items() if not self.ledger.settled(key)}
        return tuple(self.asked.values())

    def _record(self) -> None:
        if self.recording:
            walks.save(self.folder.walk, self.walk)

    def closed(self, reason: str) -> None:
        # Posts settled since the last page leave the pending list.
        if self.recording and self.walk.high is not None:
            self.walk = walks.Walk(self.walk.filters, self.walk.high, self.walk.cursor, self.walk.finished, self._pending())
            self._record()

    def consider(self, post: Post):
        """Skip, refuse or request one listed post."""
        job = self.job
        if self.ledger.known(post.key) and post.key not in self.ledger.retry_later:
            self._skip("already_have")
            return
        if post_digest(post.key) in self.requested:
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
        self.requested.add(post_digest(post.key))
        self.asked[post.key] = post
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
        request = failure.request
        error = failure.value
        if isinstance(error, IgnoreRequest) and "robots.txt" in str(error):
            # Refused before it was sent; read the rules once more to name the one that refuses it.
            yield Request(
                urljoin(self.job.base_url + "/", "/robots.txt"),
                callback=self.robots_refused,
                errback=self.robots_unreadable,
                cb_kwargs={"listing": request.url},
                meta={"dont_obey_robotstxt": True, "dont_retry": True, "anigan_key": "robots"},
                dont_filter=True,
            )
        elif isinstance(error, HttpError) and error.response.status in REFUSED_STATUSES:
            status = error.response.status
            self.refuse(
                f"{host_of(self.job.base_url)} refused the listing with HTTP {status}: "
                f"\"{redact(server_message(error.response.body), self.job.secrets)}\"; "
                + ("check the tag query (crawl.tags) and " if status == 422 else "")
                + f"{self.dialect.account_hint}"
                + (" (the key in use was refused)" if self.job.api_key else "")
            )
        else:
            reason, detail = failure_reason(failure)
            self._page_broken(request.url, f"{reason}: {detail}")
        yield PageDone(request.meta["anigan_key"])

    def robots_refused(self, response: Response, listing: str):
        rule = refusing_rule(response.text, self.job.user_agent, listing)
        said = f"rule \"{rule[1]}\" for user agent {rule[0]!r}" if rule else "its rules"
        path = urlsplit(listing).path
        advice = (
            "Danbooru's API is meant for programs with an account: set ANIGAN_BOORU_LOGIN and ANIGAN_BOORU_API_KEY "
            "and -S crawl.obey_robots=false, or pick another source (crawl.source)"
            if self.job.dialect == "danbooru"
            else "if the site's terms allow programs to use its API, set -S crawl.obey_robots=false; else pick another source (crawl.source)"
        )
        self.refuse(f"{host_of(self.job.base_url)}'s robots.txt disallows the listing {path} ({said}); {advice}")

    def robots_unreadable(self, failure: Failure):
        self.refuse(f"{host_of(self.job.base_url)}'s robots.txt disallows the listing; set -S crawl.obey_robots=false if the site allows API use, or pick another source")

    def refuse(self, line: str) -> None:
        """Stop the crawl on a configuration problem: nothing a rerun alone would change."""
        if self.config_error is None:
            self.config_error = line
            log.info("crawl: stopping: %s", line)  # the parent prints it as the one error line
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="config_error"))

    def _page_broken(self, url: str, why: str) -> None:
        # The listing cannot go on past a page it could not read; the next run resumes at this page.
        url = redact(url, self.job.secrets)
        log.error("crawl: listing page %s failed (%s); the crawl stops here, run it again to continue", url, why)
        self.failed_pages.append(url)
        self.crawler.stats.inc_value("anigan/failed_pages")
