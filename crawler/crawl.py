"""The crawl stage: `run_crawl(params) -> CrawlSummary` fills `paths.raw` from a booru.

The parent (this module) resolves the source, starts the demo booru when the source is demo,
brings the output folder in line with the params (rawfolder.RawFolder.prepare), and runs the
Scrapy crawl in a fresh `python -m crawler.worker` process (Twisted's reactor cannot restart in
one process, and tests crawl many times). Progress arrives from the worker as JSON lines; the
summary is read back from the folder itself and written to crawl.json.

Resuming is the same command again: posts in the manifest or refused for good are not fetched
again, and `limit` counts every image kept, whichever run kept it.

One process at a time writes the folder's own files: a crawl holds the folder's lock
(crawler.locks) for its whole run. With `crawl.scheduler: redis` several processes crawl into one
folder at once: each holds the lock only to prepare the folder and, at its end, to merge the
finished parts into it, and writes its images and lines into a part of its own (crawler.parts).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import crawler
from anigan.errors import UserError
from anigan.files import atomic_write_bytes, write_json
from anigan.params import Params
from crawler.folder import FolderImport, check_folder
from crawler.job import CrawlJob, make_job
from crawler.locks import FolderLock
from crawler.parts import live_parts, open_part
from crawler.rawfolder import Ledger, RawFolder, Reconciled

# How long a process of a shared crawl waits for the folder while another merges its part in.
MERGE_WAIT_SECONDS = 600

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """A running crawl's counts: images kept in total (of `limit`), new this run, refused this run."""

    kept: int
    limit: int
    new: int
    rejected: int
    seconds: float

    @property
    def rate(self) -> float:
        """New images per second in this run."""
        return self.new / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class CrawlSummary:
    """What the folder holds after a run, and what the run did."""

    source: str
    base_url: str
    tags: str
    kept: int  # distinct images in the folder
    posts: int  # manifest lines: exact duplicates share an image
    new: int  # images added by this run
    rejected: dict[str, int]  # rejects.jsonl by reason (every run's)
    rejected_now: int  # posts refused by this run
    skipped: dict[str, int]  # posts this run did not download, by reason
    stopped: str  # finished | limit | incomplete (a listing page failed or was cut short) | interrupted | killed | failed | config_error | nothing_to_do
    seconds: float
    output: str
    limit: int
    failed_pages: tuple[str, ...] = ()
    cut_short: str | None = None  # why the site's listing ended before its reported end
    dropped: dict[str, int] = field(default_factory=dict)  # manifest lines dropped by reconcile
    started_over: bool = False
    requests: int = 0
    retries: int = 0
    retry_wait_seconds: float = 0.0  # time spent honouring Retry-After and backing off

    @property
    def rate(self) -> float:
        return self.new / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def crawl_query(params: Params) -> dict:
    """What identifies a crawl's content: a folder holds one query; another query starts over."""
    cp = params.crawl
    if cp.source == "folder":
        return {"source": "folder", "site": str(Path(cp.folder or "").expanduser().resolve()), "tags": " ".join(cp.tags.split())}
    site = cp.base_url or (f"demo seed={params.demo.seed} posts={params.demo.posts}" if cp.source == "demo" else "")
    return {"source": cp.source, "site": site.rstrip("/"), "tags": " ".join(cp.tags.split())}


def _check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except (redis.RedisError, ValueError) as e:
        raise UserError(f"crawl.redis_url = {url!r}: cannot reach Redis ({e}); start redis-server or fix the URL") from None


def lock_folder(folder: RawFolder, shared: bool) -> FolderLock:
    """The folder's lock: waited for by a process of a shared crawl (others merge briefly),
    refused at once otherwise; a single-process crawl also refuses a folder parts are being written into."""
    folder.root.mkdir(parents=True, exist_ok=True)
    busy = (
        f"{folder.root}: another crawl is writing into this folder; wait for it to end or give this one another "
        "folder (--out / paths.raw). Several processes crawl one folder together with crawl.scheduler redis"
    )
    lock = FolderLock.take(folder.root, MERGE_WAIT_SECONDS if shared else 0, busy)
    if not shared and (live := live_parts(folder.root)):
        lock.release()
        raise UserError(f"{folder.root}: crawl processes with crawl.scheduler redis are writing into it ({live[0].root}); run this one with the same scheduler or wait for them")
    return lock


def _save_ground_truth(base_url: str, folder: RawFolder) -> None:
    """The demo booru's truth about its posts, for the faces stage's precision/recall."""
    url = f"{base_url}/anigan/ground_truth.jsonl"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            atomic_write_bytes(folder.ground_truth, response.read())
    except OSError as e:  # urllib's errors are OSErrors; the crawl itself may still work
        log.warning("crawl: no demo ground truth at %s (%s); the faces stage will not score detection", url, e)


class CrawlRun:
    """One crawl in a worker process; use as a context manager, read `events()`, then `finish()`.

    `run_crawl` is the usual entry; tests use this class to interrupt or kill a worker mid-crawl.
    """

    def __init__(self, params: Params, log_level: str = "WARNING") -> None:
        self.params = params
        self.log_level = log_level
        self.folder = RawFolder(params.paths.raw, params.crawl.shard_size)
        self.job: CrawlJob | None = None
        self.process: subprocess.Popen | None = None
        self.reconciled = Reconciled(0, 0)
        self.merged = Reconciled(0, 0)  # the merge at the end of a shared crawl
        self.shared = params.crawl.scheduler == "redis"
        self._part_lock: FolderLock | None = None
        self.done: dict = {}
        self.stopped: str | None = None
        self.latest = Progress(0, params.crawl.limit, 0, 0, 0.0)
        self._started = time.monotonic()
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> CrawlRun:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.interrupt()
                self.process.wait()
        finally:
            self._stack.close()

    def _start(self) -> None:
        params, cp = self.params, self.params.crawl
        base_url = None
        if cp.source == "demo" and not cp.base_url:
            from crawler.demo.generator import generate_site
            from crawler.demo.server import DemoBooru

            booru = self._stack.enter_context(DemoBooru(generate_site(params.demo.seed, params.demo.posts, params.demo.defects)))
            base_url = booru.url
            log.info("crawl: demo booru with %d posts (seed %d) at %s", params.demo.posts, params.demo.seed, base_url)
        output = str(Path(params.paths.raw).resolve())
        self.job = make_job(cp, output, base_url, self.log_level)
        if self.shared:
            _check_redis(cp.redis_url)
        lock = lock_folder(self.folder, self.shared)
        self._stack.callback(lock.release)
        self.reconciled = self.folder.prepare(crawl_query(params), self.job.filters, cp.limit)
        if cp.source == "demo":
            _save_ground_truth(self.job.base_url, self.folder)
        if self.reconciled.images >= cp.limit:
            log.info("crawl: %s already holds crawl.limit=%d images; nothing to do", self.folder.root, cp.limit)
            self.stopped = "nothing_to_do"
            return
        self._write_summary(self.summary("running"))
        held = lock  # a single process keeps the folder for its whole run
        if self.shared:
            part, self._part_lock = open_part(self.folder.root)
            self._stack.callback(self._part_lock.release)
            write_json(part.state, {"query": crawl_query(params), "filters": self.job.filters.as_dict()})
            self.job = replace(self.job, part=part.id)
            held = self._part_lock
            lock.release()  # the others may merge meanwhile: a part whose lock is held stays out of their merges
        self._started = time.monotonic()
        env = dict(os.environ)
        # The worker runs this very code, wherever the process was started from.
        root = str(Path(crawler.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crawler.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            # Its own session: a terminal's Ctrl-C reaches the parent only, which forwards one SIGINT.
            start_new_session=True,
            # The worker shares the lock's descriptor: the lock lasts while either process lives.
            pass_fds=(held.fd,),
        )
        self.process.stdin.write(self.job.to_json() + "\n")
        self.process.stdin.flush()  # stdin stays open: the worker stops when it closes

    def events(self) -> Iterator[Progress]:
        """Progress as the worker reports it, until it exits."""
        if self.process is None:
            return
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if "done" in event:
                self.done = event
                continue
            self.latest = Progress(event["kept"], self.params.crawl.limit, event["new"], event["rejected"], time.monotonic() - self._started)
            yield self.latest

    def interrupt(self) -> None:
        """Ask the worker to stop as on Ctrl-C: requests in flight finish, the rest waits for the next run."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.stopped = "interrupted"

    def kill(self) -> None:
        """Kill the worker outright (SIGKILL), as a crash or an out-of-memory kill would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.stopped = "killed"

    def finish(self) -> CrawlSummary:
        """Wait for the worker, then write crawl.json from what the folder holds."""
        code = 0
        if self.process is not None:
            for _ in self.events():  # drain what is left
                pass
            code = self.process.wait()
            self.process.stdin.close()
            self.process.stdout.close()
        if self.shared and self._part_lock is not None:
            self._merge()
        if self.stopped is None:
            reason = self.done.get("done")
            if code == 0 and reason == "config_error" and self.done.get("config_error"):
                self.stopped = "config_error"
            elif code == 0 and reason in ("finished", "limit"):
                cut = self.done.get("failed_pages") or self.done.get("cut_short")
                self.stopped = "incomplete" if cut and reason == "finished" else reason
            elif code == 0 and reason == "shutdown":
                self.stopped = "interrupted"
            else:
                self.stopped = "failed"
        summary = self.summary(self.stopped)
        self._write_summary(summary)
        if self.stopped == "config_error":
            raise UserError(self.done["config_error"])
        if self.stopped == "failed":
            raise UserError(f"the crawler process failed (exit code {code}); see the log above. What was kept is in {self.folder.root}")
        return summary

    def _merge(self) -> None:
        """Merge this process's part (and any other finished one) into the folder."""
        self._part_lock.release()
        with lock_folder(self.folder, shared=True):
            self.merged = self.folder.prepare(crawl_query(self.params), self.job.filters, self.params.crawl.limit)

    def summary(self, stopped: str) -> CrawlSummary:
        counts = self.folder.counts()
        cp = self.params.crawl
        job = self.job
        return CrawlSummary(
            source=cp.source,
            base_url=job.base_url if job else (cp.base_url or ""),
            tags=" ".join(cp.tags.split()),
            kept=counts.images,
            posts=counts.posts,
            new=self.latest.new,
            rejected=counts.rejected,
            rejected_now=self.latest.rejected,
            skipped=dict(sorted(self.done.get("skipped", {}).items())),
            stopped=stopped,
            seconds=round(time.monotonic() - self._started, 3),
            output=str(self.folder.root),
            limit=cp.limit,
            failed_pages=tuple(self.done.get("failed_pages", ())),
            cut_short=self.done.get("cut_short"),
            dropped=dict(Counter(self.reconciled.dropped) + Counter(self.merged.dropped)),
            started_over=self.reconciled.started_over,
            requests=self.done.get("requests", 0),
            retries=self.done.get("retries", 0),
            retry_wait_seconds=self.done.get("retry_wait_seconds", 0.0),
        )

    def _write_summary(self, summary: CrawlSummary) -> None:
        write_summary(self.folder, summary)


def write_summary(folder: RawFolder, summary: CrawlSummary) -> None:
    """crawl.json: the counts, as DVC metrics."""
    write_json(
        folder.summary,
        {
            "kept": summary.kept,
            "posts": summary.posts,
            "duplicate_posts": summary.posts - summary.kept,
            "rejected": summary.rejected,
            "rejected_total": sum(summary.rejected.values()),
            "skipped": summary.skipped,
            "stopped": summary.stopped,
        },
    )


def import_folder(params: Params, on_progress: Callable[[Progress], None] | None = None) -> CrawlSummary:
    """The folder source (crawler.folder): no site, no worker process; the same folder contract."""
    cp = params.crawl
    root = check_folder(cp.folder)
    out = RawFolder(params.paths.raw, cp.shard_size)
    started = time.monotonic()
    with lock_folder(out, shared=False):
        importer = FolderImport(replace(params, crawl=replace(cp, folder=str(root))), out)
        reconciled = out.prepare(crawl_query(params), importer.filters, cp.limit)
        importer.ledger = Ledger(out, cp.limit)  # read after prepare: what the folder holds now
        if on_progress:
            importer.on_progress = lambda e: on_progress(Progress(e["kept"], cp.limit, e["new"], e["rejected"], time.monotonic() - started))
        try:
            stopped = "nothing_to_do" if importer.ledger.full else importer.run()
        finally:
            out.close()
        summary = _folder_summary(params, out, root, importer, stopped, reconciled, started)
        write_summary(out, summary)
    return summary


def _folder_summary(params: Params, out: RawFolder, root: Path, importer: FolderImport, stopped: str, reconciled: Reconciled, started: float) -> CrawlSummary:
    cp = params.crawl
    counts = out.counts()
    return CrawlSummary(
        source="folder",
        base_url=str(root),
        tags=" ".join(cp.tags.split()),
        kept=counts.images,
        posts=counts.posts,
        new=importer.new,
        rejected=counts.rejected,
        rejected_now=importer.rejected,
        skipped=dict(sorted(importer.skipped.items())),
        stopped=stopped,
        seconds=round(time.monotonic() - started, 3),
        output=str(out.root),
        limit=cp.limit,
        dropped=dict(reconciled.dropped),
        started_over=reconciled.started_over,
    )


def run_crawl(params: Params, on_progress: Callable[[Progress], None] | None = None, log_level: str = "WARNING") -> CrawlSummary:
    """Crawl `params.crawl.source` into `params.paths.raw` (see the module docstring).

    Ctrl-C stops the crawl gracefully and returns the summary with `stopped == "interrupted"`;
    a second Ctrl-C makes the worker stop at once. Either way, the next run resumes.
    """
    if params.crawl.source == "folder":
        return import_folder(params, on_progress)
    with CrawlRun(params, log_level) as run:
        try:
            for progress in run.events():
                if on_progress:
                    on_progress(progress)
        except KeyboardInterrupt:
            run.interrupt()
            while True:
                try:
                    return run.finish()
                except KeyboardInterrupt:
                    run.process.send_signal(signal.SIGINT)  # the worker's second SIGINT: stop now
        return run.finish()
