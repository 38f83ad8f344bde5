"""The distributed mode: several crawler processes, on one machine or many, share one crawl.

Built on scrapy-redis's scheduler, queue and duplicate filter, with what a crawl that must not
lose or repeat work needs on top. All keys start with `crawl.redis_key` (P below):

    P:requests           the shared FIFO of requests (pickled, as scrapy-redis stores them)
    P:inflight:<worker>  requests a worker has taken and not finished; a request moves here from
                         P:requests atomically (RPOPLPUSH), so a killed worker loses nothing
    P:alive:<worker>     the worker's heartbeat, with a time-to-live
    P:posts              every post any worker fetched (the duplicate filter for files); it
                         outlives the crawl, so a later crawl of the same query fetches only new posts
    P:pages              listing pages taken in the current crawl; cleared when it completes

A worker with nothing to do polls the queue; it leaves when the queue is empty, no worker holds
anything in flight and it has waited `crawl.redis_wait` seconds (others may still be starting).
In-flight lists of workers whose heartbeat expired (killed outright) are put back on the queue
by the next worker that looks. The last worker to leave a completed crawl clears P:pages.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from collections import deque

from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Request
from scrapy.utils.defer import deferred_from_coro
from scrapy_redis.dupefilter import RFPDupeFilter
from scrapy_redis.queue import FifoQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet import task

from crawler.pipeline import request_settled

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
ALIVE_TTL_SECONDS = 15  # a worker silent this long is taken for dead and its requests go back
POLL_SECONDS = 0.25


def _prefix(settings) -> str:
    return settings["ANIGAN_JOB"].redis_key


class SharedDupeFilter(RFPDupeFilter):
    """Filters by what a request is for: a post (P:posts, kept across crawls) or a listing page
    (P:pages, this crawl only). Two posts sharing one file URL are two posts, not duplicates."""

    def __init__(self, server, key: str, pages_key: str, debug: bool = False) -> None:
        super().__init__(server, key, debug)
        self.pages_key = pages_key

    @classmethod
    def from_spider(cls, spider) -> "SharedDupeFilter":
        from scrapy_redis.connection import get_redis_from_settings

        settings = spider.settings
        prefix = _prefix(settings)
        return cls(get_redis_from_settings(settings), f"{prefix}:posts", f"{prefix}:pages", settings.getbool("DUPEFILTER_DEBUG"))

    def request_seen(self, request: Request) -> bool:
        key = request.meta.get("anigan_key")
        if key is None:
            return super().request_seen(request)
        if request.meta.get("redirect_times"):
            return False  # the same request, moved: not a new one
        if key.startswith("post:"):
            return self.server.sadd(self.key, key[len("post:"):]) == 0
        # Page URLs may carry an API key: store a digest.
        return self.server.sadd(self.pages_key, hashlib.sha1(key.encode()).hexdigest()) == 0

    def forget(self, key: str) -> None:
        """Let a later crawl fetch this post again (its fetch failed for a reason that may pass)."""
        if key.startswith("post:"):
            self.server.srem(self.key, key[len("post:"):])

    def close(self, reason: str = "") -> None:
        pass  # the filter is shared: one worker leaving must not clear it


class ReliableQueue(FifoQueue):
    """scrapy-redis's FIFO, except that a pop moves the request into this worker's in-flight list."""

    def __init__(self, server, spider, key, serializer=None, inflight_key: str = "") -> None:
        super().__init__(server, spider, key, serializer)
        self.inflight_key = inflight_key

    def claim(self) -> tuple[Request, bytes] | None:
        """Take the oldest request atomically into the in-flight list; returns it and its stored bytes."""
        data = self.server.rpoplpush(self.key, self.inflight_key)
        if data is None:
            return None
        return self._decode_request(data), data

    def push_encoded(self, data: bytes) -> None:
        self.server.lpush(self.key, data)


class SharedScheduler(Scheduler):
    """scrapy-redis's scheduler with in-flight lists, heartbeats and a shared end of the crawl."""

    def __init__(self, server, **kwargs) -> None:
        super().__init__(server, **kwargs)
        self.crawler = None
        self.worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.local: deque[Request] = deque()  # claimed by the poller, handed to the engine
        self.held: dict[str, bytes] = {}  # anigan_key -> stored bytes, for what this worker holds
        self.waiting_since: float | None = None
        self.wait = 5.0
        self.poller: task.LoopingCall | None = None
        self.last_beat = 0.0
        self.finishing = False

    @classmethod
    def from_crawler(cls, crawler) -> "SharedScheduler":
        scheduler = super().from_crawler(crawler)
        scheduler.crawler = crawler
        scheduler.prefix = _prefix(crawler.settings)
        scheduler.wait = crawler.settings["ANIGAN_JOB"].redis_wait
        crawler.signals.connect(scheduler.on_idle, signal=signals.spider_idle)
        crawler.signals.connect(scheduler.on_settled, signal=request_settled)
        return scheduler

    # keys
    def _inflight_key(self, worker: str) -> str:
        return f"{self.prefix}:inflight:{worker}"

    def _alive_key(self, worker: str) -> str:
        return f"{self.prefix}:alive:{worker}"

    def open(self, spider) -> None:
        self.spider = spider
        self.queue = ReliableQueue(
            self.server, spider, self.queue_key % {"spider": spider.name}, self.serializer, self._inflight_key(self.worker)
        )
        if not self.df:
            self.df = SharedDupeFilter.from_spider(spider)
        self._beat(force=True)
        self._recover_dead()
        waiting = len(self.queue)
        log.info("crawl: redis worker %s joined %s (%d requests queued)", self.worker, self.prefix, waiting)
        self.poller = task.LoopingCall(self._tick)
        self.poller.start(POLL_SECONDS, now=False)

    def close(self, reason: str) -> None:
        if self.poller is not None and self.poller.running:
            self.poller.stop()
        # Whatever this worker still holds goes back for the others (a limit reached, Ctrl-C).
        released = self._release_all()
        if released:
            log.info("crawl: gave %d unfinished requests back to the shared queue", released)
        self.server.delete(self._alive_key(self.worker))
        if self._complete() and not self._other_workers():
            self.server.delete(f"{self.prefix}:pages", self.queue.key)
            log.info("crawl: the distributed crawl %s is complete; cleared its page list", self.prefix)

    # the scheduler interface
    def enqueue_request(self, request: Request) -> bool:
        if request.meta.pop("anigan_claimed", False):
            self.local.append(request)
            return True
        key = request.meta.get("anigan_key")
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        if key in self.held:  # a retry or redirect of a request this worker holds: the queue has it now
            self.server.lrem(self.queue.inflight_key, 1, self.held.pop(key))
        return True

    def next_request(self) -> Request | None:
        if self.local:
            return self.local.popleft()
        if self._full():
            return None
        claimed = self.queue.claim()
        if claimed is None:
            return None
        request, data = claimed
        self._hold(request, data)
        if self.stats:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        return bool(self.local) or (not self._full() and len(self.queue) > 0)

    # bookkeeping
    def _hold(self, request: Request, data: bytes) -> None:
        key = request.meta.get("anigan_key")
        if key:
            self.held[key] = data
        self.waiting_since = None

    def _full(self) -> bool:
        ledger = getattr(self.spider, "ledger", None)
        return bool(ledger and ledger.full)

    def on_settled(self, key: str, outcome: str = "done", **_) -> None:
        """A request's outcome is on disk: drop it from the in-flight list (or give it back)."""
        data = self.held.pop(key, None)
        if data is not None:
            self.server.lrem(self.queue.inflight_key, 1, data)
            if outcome == "release":  # this worker reached its limit; another may take the post
                self.queue.push_encoded(data)
        if outcome == "forget" and isinstance(self.df, SharedDupeFilter):
            self.df.forget(key)

    def _release_all(self) -> int:
        moved = 0
        while self.server.rpoplpush(self.queue.inflight_key, self.queue.key) is not None:
            moved += 1
        self.held.clear()
        self.local.clear()
        return moved

    def _beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_beat >= HEARTBEAT_SECONDS:
            self.server.set(self._alive_key(self.worker), b"1", ex=ALIVE_TTL_SECONDS)
            self.last_beat = now

    def _workers_with_inflight(self) -> list[str]:
        prefix = self._inflight_key("")
        return [k.decode()[len(prefix):] if isinstance(k, bytes) else k[len(prefix):] for k in self.server.scan_iter(match=prefix + "*")]

    def _other_workers(self) -> bool:
        mine = self._alive_key(self.worker)
        return any((k.decode() if isinstance(k, bytes) else k) != mine for k in self.server.scan_iter(match=self._alive_key("*")))

    def _recover_dead(self) -> int:
        """Put the in-flight requests of workers whose heartbeat expired back on the queue."""
        recovered = 0
        for worker in self._workers_with_inflight():
            if worker == self.worker or self.server.exists(self._alive_key(worker)):
                continue
            # One request at a time and atomically: two workers recovering at once move each once.
            while self.server.rpoplpush(self._inflight_key(worker), self.queue.key) is not None:
                recovered += 1
        if recovered:
            log.warning("crawl: put back %d requests left in flight by stopped workers", recovered)
        return recovered

    def _complete(self) -> bool:
        """Nothing queued and nothing in flight anywhere."""
        if len(self.queue) > 0:
            return False
        return all(self.server.llen(self._inflight_key(w)) == 0 for w in self._workers_with_inflight())

    # idle handling
    def on_idle(self, spider) -> None:
        """The engine has nothing to do: keep the spider open while the crawl may bring more work."""
        if self.finishing:
            return
        if self.waiting_since is None:
            self.waiting_since = time.monotonic()
            # Idle means this worker is processing nothing: anything still listed as its own is
            # finished (or was dropped without an outcome), not in flight.
            if self.held:
                log.debug("crawl: %d held requests ended without an outcome", len(self.held))
            self.held.clear()
            self.server.delete(self.queue.inflight_key)
        raise DontCloseSpider

    def _tick(self) -> None:
        self._beat()
        if self.waiting_since is None or self.finishing:
            return
        if not self._full():
            claimed = self.queue.claim()
            if claimed is not None:
                request, data = claimed
                self._hold(request, data)
                request.meta["anigan_claimed"] = True
                self.crawler.engine.crawl(request)
                return
            self._recover_dead()
        waited = time.monotonic() - self.waiting_since
        if self._full() or (waited >= self.wait and self._complete()):
            self.finishing = True
            reason = "limit" if self._full() else "finished"
            deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))
