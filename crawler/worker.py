"""One crawler process: `python -m crawler.worker` reads a CrawlJob (one JSON line) on stdin and
crawls with Scrapy. Progress goes to stdout as JSON lines; logs go to stderr.

Each crawl runs in a fresh process because Twisted's reactor cannot be restarted within one
process, and a process is also what a kill test, Ctrl-C and the redis mode's workers need. When
stdin closes (the parent died) the crawl stops gracefully, as on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from scrapy.crawler import CrawlerProcess

from crawler.job import CrawlJob
from crawler.redact import redact_records
from crawler.settings import build_settings
from crawler.spider import BooruSpider

# Exit code when the spider could not start or failed outright.
FAILED = 3


def _stop_when_parent_goes() -> None:
    sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
    os.kill(os.getpid(), signal.SIGINT)


def main() -> int:
    job = CrawlJob.from_json(sys.stdin.readline())
    redact_records(job.secrets)
    # stdout carries progress only; anything else printed goes to stderr.
    events = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def emit(event: dict) -> None:
        events.write(json.dumps(event) + "\n")

    threading.Thread(target=_stop_when_parent_goes, name="parent-watch", daemon=True).start()
    process = CrawlerProcess(build_settings(job, emit))
    crawler = process.create_crawler(BooruSpider)
    process.crawl(crawler, job=job)
    process.start()
    stats = crawler.stats.get_stats()
    reason = stats.get("finish_reason", "failed")
    spider = crawler.spider
    emit(
        {
            "done": reason,
            "skipped": {k.split("/", 2)[2]: v for k, v in stats.items() if k.startswith("anigan/skipped/")},
            "failed_pages": list(getattr(spider, "failed_pages", [])),
            "config_error": getattr(spider, "config_error", None),
            "cut_short": getattr(spider, "cut_short", None),
            "retries": stats.get("retry/count", 0),
            "retry_wait_seconds": round(stats.get("anigan/retry_wait_seconds", 0.0), 3),
            "requests": stats.get("downloader/request_count", 0),
        }
    )
    events.close()
    return 0 if reason in ("finished", "limit", "shutdown", "config_error") else FAILED


if __name__ == "__main__":
    sys.exit(main())
