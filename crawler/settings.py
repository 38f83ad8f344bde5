"""Scrapy settings built from a crawl job: politeness on, Scrapy's own chatter off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crawler.job import CrawlJob


def build_settings(job: CrawlJob, progress: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """The settings dict for CrawlerProcess; `progress` receives one dict per kept or refused post."""
    settings: dict[str, Any] = {
        "BOT_NAME": "anigan",
        "LOG_LEVEL": job.log_level,
        "LOG_FORMAT": "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s",
        "LOG_INSTALL_ROOT_HANDLER": True,  # the worker is its own process: Scrapy logs to its stderr
        # No consoles or control servers listening on this machine's ports during a crawl.
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        # Politeness: an honest User-Agent, robots.txt, one site's domains, adaptive delays.
        "USER_AGENT": job.user_agent,
        "ROBOTSTXT_OBEY": job.obey_robots,
        # One site per crawl, so the global cap is the per-site one; it also stops a redis worker
        # from taking more requests off the shared queue than it downloads at once.
        "CONCURRENT_REQUESTS": job.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": job.concurrency,
        "DOWNLOAD_DELAY": job.download_delay,
        "AUTOTHROTTLE_ENABLED": job.autothrottle,
        # Scrapy starts AutoThrottle at 5 s; start at the configured delay and let latency decide.
        "AUTOTHROTTLE_START_DELAY": job.download_delay,
        "AUTOTHROTTLE_MAX_DELAY": max(60.0, job.download_delay),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(job.concurrency),
        "DOWNLOAD_MAXSIZE": job.max_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "DOWNLOAD_TIMEOUT": job.download_timeout,
        "COOKIES_ENABLED": False,
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawler.middlewares.SiteOnlyMiddleware": 50,
            "crawler.middlewares.PoliteRetryMiddleware": 550,
        },
        "ITEM_PIPELINES": {"crawler.pipeline.RawPipeline": 300},
        # The spider and pipeline remember which posts are decided; Scrapy's URL filter would
        # wrongly drop a second post that shares a file URL with another (exact duplicates).
        "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",
        "ANIGAN_JOB": job,
        "ANIGAN_PROGRESS": progress,
    }
    if job.scheduler == "redis":
        settings.update(
            {
                "SCHEDULER": "crawler.redis_mode.SharedScheduler",
                "SCHEDULER_QUEUE_CLASS": "crawler.redis_mode.ReliableQueue",
                "SCHEDULER_QUEUE_KEY": f"{job.redis_key}:requests",
                "DUPEFILTER_CLASS": "crawler.redis_mode.SharedDupeFilter",
                "SCHEDULER_DUPEFILTER_KEY": f"{job.redis_key}:posts",
                # The queue outlives each process: the crawl is over when every worker is done.
                "SCHEDULER_PERSIST": True,
                "REDIS_URL": job.redis_url,
            }
        )
    return settings
