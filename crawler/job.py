"""What one crawler process is told to do: the crawl params resolved to a site, as plain JSON.

The parent (`crawler.crawl`) resolves the source to a dialect, address and domains (starting the
demo booru when needed) and hands the job to a fresh `python -m crawler.worker` process.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from anigan.errors import UserError
from anigan.params.crawl import CrawlParams
from crawler.adapters import SOURCES
from crawler.adapters.common import host_of
from crawler.rawfolder import Filters
from crawler.validate import Limits

# Optional account for sites that give more to logged-in API users (never stored in params.yaml).
LOGIN_ENV = "ANIGAN_BOORU_LOGIN"
API_KEY_ENV = "ANIGAN_BOORU_API_KEY"


@dataclass(frozen=True)
class CrawlJob:
    source: str
    dialect: str
    base_url: str
    allowed_domains: tuple[str, ...]
    output: str
    tags: str
    ratings: tuple[str, ...]
    min_width: int
    min_height: int
    max_pixels: int
    max_bytes: int
    limit: int
    page_size: int
    concurrency: int
    download_delay: float
    autothrottle: bool
    obey_robots: bool
    user_agent: str
    retries: int
    retry_backoff: float
    max_retry_wait: float
    download_timeout: float
    scheduler: str
    redis_url: str
    redis_key: str
    redis_wait: float
    log_level: str = "WARNING"
    login: str = ""
    api_key: str = ""

    @property
    def limits(self) -> Limits:
        return Limits(self.min_width, self.min_height, self.max_pixels, self.max_bytes)

    @property
    def filters(self) -> Filters:
        return Filters(self.ratings, self.min_width, self.min_height, self.max_pixels, self.max_bytes)

    @property
    def credentials(self) -> dict[str, str]:
        return {"login": self.login, "api_key": self.api_key}

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "CrawlJob":
        data = json.loads(text)
        names = {f.name for f in fields(cls)}
        data = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in names}
        return cls(**data)


def site_domains(source: str, base_url: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    """Domains requests may go to: the base URL's host, `extra`, and the source's own domain when
    the host is within it (safebooru.donmai.us serves its files from cdn.donmai.us)."""
    host = host_of(base_url)
    known = tuple(d for d in SOURCES[source].domains if host == d or host.endswith("." + d))
    domains = [host, *known, *(d.strip().lower() for d in extra if d.strip())]
    return tuple(dict.fromkeys(d for d in domains if d))


def make_job(params: CrawlParams, output: str, base_url: str | None = None, log_level: str = "WARNING") -> CrawlJob:
    """Resolve crawl params to a job; `base_url` is the running demo booru's address for source demo."""
    source = SOURCES[params.source]
    url = (base_url or params.base_url or source.base_url or "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"crawl.base_url = {url!r}: must be an http:// or https:// address of a {source.dialect} API")
    return CrawlJob(
        source=params.source,
        dialect=source.dialect,
        base_url=url,
        allowed_domains=site_domains(params.source, url, params.allowed_domains),
        output=output,
        tags=" ".join(params.tags.split()),
        ratings=params.ratings,
        min_width=params.min_width,
        min_height=params.min_height,
        max_pixels=params.max_pixels,
        max_bytes=params.max_bytes,
        limit=params.limit,
        page_size=params.page_size,
        concurrency=params.concurrency,
        download_delay=params.download_delay,
        autothrottle=params.autothrottle,
        obey_robots=params.obey_robots,
        user_agent=params.user_agent,
        retries=params.retries,
        retry_backoff=params.retry_backoff,
        max_retry_wait=params.max_retry_wait,
        download_timeout=params.download_timeout,
        scheduler=params.scheduler,
        redis_url=params.redis_url,
        redis_key=params.redis_key,
        redis_wait=params.redis_wait,
        log_level=log_level,
        login=os.environ.get(LOGIN_ENV, ""),
        api_key=os.environ.get(API_KEY_ENV, ""),
    )
