"""The one download pipeline for every source: validate, store by content, record.

Every item the spider yields ends here: a PostFile is checked (crawler.validate), written once
under its sha256 (temporary name, then rename) and appended to manifest.jsonl; a refused file or
a PostRejected is appended to rejects.jsonl. Exact duplicates (the same bytes from different
posts) are stored once and every post gets its manifest line with the same image_id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from scrapy.exceptions import DropItem
from scrapy.utils.defer import deferred_from_coro

from anigan.ids import sha256_hex
from crawler.items import TRANSIENT_REASONS, PageDone, PostFile, PostRejected, manifest_record, reject_record
from crawler.job import CrawlJob
from crawler.rawfolder import RawFolder
from crawler.spider import utc_now
from crawler.validate import check_image

log = logging.getLogger(__name__)

# Signal sent with `key=` when a request's outcome is on disk (the redis mode's in-flight list).
request_settled = object()


def _quiet_drop(message: str) -> DropItem:
    return DropItem(message, log_level="DEBUG")


class RawPipeline:
    """Validates and writes every outcome into the output folder; reports progress."""

    def __init__(self, crawler) -> None:
        self.crawler = crawler
        self.job: CrawlJob = crawler.settings["ANIGAN_JOB"]
        self.progress: Callable[[dict], None] | None = crawler.settings.get("ANIGAN_PROGRESS")
        self.folder = RawFolder(self.job.output)
        self.new_images = 0
        self.new_posts = 0
        self.rejected = 0
        self.closing = False

    @classmethod
    def from_crawler(cls, crawler) -> "RawPipeline":
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, PageDone):
            self._settled(item.key)
            raise _quiet_drop("page done")
        if isinstance(item, PostRejected):
            self._reject(item.post, item.reason, item.detail)
            raise _quiet_drop(f"rejected: {item.reason}")
        if isinstance(item, PostFile):
            return self._keep(item)
        return item

    def _keep(self, item: PostFile) -> PostFile:
        post, ledger = item.post, self.crawler.spider.ledger
        verdict = check_image(item.body, self.job.limits, post.md5)
        if not verdict.ok:
            self._reject(post, verdict.reason, verdict.detail)
            raise _quiet_drop(f"rejected: {verdict.reason}")
        image_id = sha256_hex(item.body)
        if not ledger.admits(image_id):
            # Fetched while the limit was being reached: not kept, not refused, free for a later run.
            self.crawler.stats.inc_value("anigan/skipped/over_limit")
            self._settled(f"post:{post.key}", forget=True)
            raise _quiet_drop("over the limit")
        self.folder.store(item.body, verdict.ext, image_id)
        record = manifest_record(post, image_id, verdict.width, verdict.height, item.fetched_at)
        self.folder.append_manifest(record)
        if ledger.kept(record):
            self.new_images += 1
        else:  # the same bytes as an image kept before: one file, one more manifest line
            self.crawler.stats.inc_value("anigan/duplicate_posts")
        self.new_posts += 1
        self.crawler.stats.inc_value("anigan/kept_posts")
        self._settled(f"post:{post.key}")
        self._report()
        if ledger.full:
            self._close("limit")
        return item

    def _reject(self, post, reason: str, detail: str) -> None:
        record = reject_record(post, reason, detail, utc_now())
        self.folder.append_reject(record)
        self.crawler.spider.ledger.rejected(record)
        self.rejected += 1
        self.crawler.stats.inc_value(f"anigan/rejected/{reason}")
        log.info("crawl: rejected post %s (%s): %s", post.post_id, reason, detail)
        # A transient failure is tried again by a later run, so the shared filter must forget it.
        self._settled(f"post:{post.key}", forget=reason in TRANSIENT_REASONS)
        self._report()

    def _settled(self, key: str, forget: bool = False) -> None:
        self.crawler.signals.send_catch_log(request_settled, key=key, forget=forget)

    def _report(self) -> None:
        if self.progress is not None:
            ledger = self.crawler.spider.ledger
            self.progress({"kept": len(ledger.images), "posts": ledger.posts, "new": self.new_images, "rejected": self.rejected})

    def _close(self, reason: str) -> None:
        if not self.closing:
            self.closing = True
            log.info("crawl: %d images kept, the limit; stopping", len(self.crawler.spider.ledger.images))
            deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))
