"""The one download pipeline for every source: validate, store by content, record.

Every item the spider yields ends here: a PostFile is checked (crawler.validate), appended once
to the open image shard as `<sha256>.<ext>` and recorded in manifest.jsonl with its place; a refused file or
a PostRejected is appended to rejects.jsonl. Exact duplicates (the same bytes from different
posts) are stored once and every post gets its manifest line with the same image_id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scrapy.exceptions import DropItem
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import threads

from anigan.ids import sha256_hex
from crawler.items import TRANSIENT_REASONS, PageDone, PostFile, PostRejected, manifest_record, reject_record
from crawler.job import CrawlJob
from anigan.keys import image_digest
from crawler.parts import PARTS
from crawler.rawfolder import RawFolder
from crawler.spider import utc_now
from crawler.validate import check_image

log = logging.getLogger(__name__)

# Signal sent with `key=` and `outcome=` when a request's outcome is on disk (the redis mode's
# in-flight list): "done"; "forget" (failed for now: a later crawl may fetch it again); "release"
# (not taken: another worker may).
request_settled = object()


def _quiet_drop(message: str) -> DropItem:
    return DropItem(message, log_level="DEBUG")


def _examine(body: bytes, limits, md5: str | None):
    return check_image(body, limits, md5), sha256_hex(body)


async def _in_thread(function, *args):
    return await maybe_deferred_to_future(threads.deferToThread(function, *args))


class RawPipeline:
    """Validates and writes every outcome into the output folder; reports progress."""

    def __init__(self, crawler) -> None:
        self.crawler = crawler
        self.job: CrawlJob = crawler.settings["ANIGAN_JOB"]
        self.progress: Callable[[dict], None] | None = crawler.settings.get("ANIGAN_PROGRESS")
        # With several processes, each writes its own part of the folder: no file is shared.
        root = Path(self.job.output) / PARTS / self.job.part if self.job.part else Path(self.job.output)
        self.folder = RawFolder(root, self.job.shard_size)
        self.new_images = 0
        self.rejected = 0
        self.closing = False

    @classmethod
    def from_crawler(cls, crawler) -> RawPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        # Images on disk: progress reports these, not the ones still being written.
        self.stored = self.crawler.spider.ledger.images.copy()

    def close_spider(self) -> None:
        self.folder.close()  # ends the open shard: `tar` reads it without complaint

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, PageDone):
            self._settled(item.key)
            raise _quiet_drop("page done")
        if isinstance(item, PostRejected):
            await self._reject(item.post, item.reason, item.detail)
            raise _quiet_drop(f"rejected: {item.reason}")
        if isinstance(item, PostFile):
            return await self._keep(item)
        return item

    async def _keep(self, item: PostFile) -> PostFile:
        post, ledger = item.post, self.crawler.spider.ledger
        # Decoding and fsyncs run in threads, so downloads go on meanwhile; the decisions (limit,
        # ledger) stay on the reactor thread, one at a time.
        verdict, image_id = await _in_thread(_examine, item.body, self.job.limits, post.md5)
        if not verdict.ok:
            await self._reject(post, verdict.reason, verdict.detail)
            raise _quiet_drop(f"rejected: {verdict.reason}")
        if not ledger.admits(image_id):
            # Fetched while the limit was being reached: not kept, not refused, free for a later run.
            self.crawler.stats.inc_value("anigan/skipped/over_limit")
            self._settled(f"post:{post.key}", outcome="release")
            raise _quiet_drop("over the limit")
        record = manifest_record(post, image_id, verdict.width, verdict.height, item.fetched_at)
        if not ledger.kept(record):  # the same bytes as an image kept before: one file, one more manifest line
            self.crawler.stats.inc_value("anigan/duplicate_posts")
        if ledger.full:
            self._close("limit")
        # The image first, then its manifest line: a line never names a missing member.
        await _in_thread(self.folder.keep, item.body, verdict.ext, record)
        if self.stored.add(image_digest(image_id)):
            self.new_images += 1
        self.crawler.stats.inc_value("anigan/kept_posts")
        self._settled(f"post:{post.key}")
        self._report()
        return item

    async def _reject(self, post, reason: str, detail: str) -> None:
        record = reject_record(post, reason, detail, utc_now())
        self.crawler.spider.ledger.rejected(record)
        await _in_thread(self.folder.append_reject, record)
        self.rejected += 1
        self.crawler.stats.inc_value(f"anigan/rejected/{reason}")
        log.info("crawl: rejected post %s (%s): %s", post.post_id, reason, detail)
        # A transient failure is tried again by a later run, so the shared filter must forget it.
        self._settled(f"post:{post.key}", outcome="forget" if reason in TRANSIENT_REASONS else "done")
        self._report()

    def _settled(self, key: str, outcome: str = "done") -> None:
        self.crawler.signals.send_catch_log(request_settled, key=key, outcome=outcome)

    def _report(self) -> None:
        if self.progress is not None:
            self.progress({"kept": len(self.stored), "new": self.new_images, "rejected": self.rejected})

    def _close(self, reason: str) -> None:
        if not self.closing:
            self.closing = True
            log.info("crawl: %d images kept, the limit; stopping", self.crawler.spider.ledger.image_count)
            deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))
