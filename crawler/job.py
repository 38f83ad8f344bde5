"""What one crawler process is told to do: the crawl params resolved to a site, as plain JSON.

The parent (`crawler.crawl`) resolves the source to a dialect, address and domains (starting the
demo booru when needed) and hands the job to a fresh `python -m crawler.worker` process. The job
holds the params section itself, so a new crawl param needs no second declaration here.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace

from anigan.errors import UserError
from anigan.params.crawl import CrawlParams
from crawler.adapters import DIALECTS, SOURCES
from crawler.adapters.common import host_of
from crawler.filters import Filters
from crawler.validate import Limits

# Optional account for sites that need or reward logged-in API use (never stored in params.yaml,
# never logged): Danbooru's login, Gelbooru's numeric user id, Moebooru's login.
LOGIN_ENV = "ANIGAN_BOORU_LOGIN"
# Danbooru's and Gelbooru's API key, Moebooru's password hash.
API_KEY_ENV = "ANIGAN_BOORU_API_KEY"


@dataclass(frozen=True)
class CrawlJob:
    """The crawl params (`crawl`) plus what the parent resolved: the site and the output folder.

    Params fields read through: `job.limit` is `job.crawl.limit`.
    """

    crawl: CrawlParams
    dialect: str
    base_url: str
    allowed_domains: tuple[str, ...]  # the site's own domains and crawl.allowed_domains
    output: str
    log_level: str = "WARNING"
    part: str = ""  # with several processes (crawl.scheduler redis): this one's part of the output (crawler.parts)
    login: str = ""
    api_key: str = ""

    def __getattr__(self, name: str):
        # Only called for names the job itself lacks: the params' fields.
        if name == "crawl":
            raise AttributeError(name)
        return getattr(self.crawl, name)

    @property
    def limits(self) -> Limits:
        c = self.crawl
        return Limits(c.min_width, c.min_height, c.max_pixels, c.max_bytes)

    @property
    def filters(self) -> Filters:
        c = self.crawl
        return Filters(c.ratings, c.min_width, c.min_height, c.max_pixels, c.max_bytes)

    @property
    def credentials(self) -> dict[str, str]:
        return {"login": self.login, "api_key": self.api_key}

    @property
    def secrets(self) -> tuple[str, ...]:
        """The strings no log line, report or manifest may show."""
        return tuple(s for s in (self.login, self.api_key) if s)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "CrawlJob":
        data = json.loads(text)
        tuples = lambda d: {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}  # noqa: E731
        names = {f.name for f in fields(CrawlParams)}
        crawl = CrawlParams(**{k: v for k, v in tuples(data.pop("crawl")).items() if k in names})
        own = {f.name for f in fields(cls)}
        return cls(crawl=crawl, **{k: v for k, v in tuples(data).items() if k in own})


def site_domains(source: str, base_url: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    """Domains requests may go to: the base URL's host, `extra`, and the source's own domain when
    the host is within it (safebooru.donmai.us serves its files from cdn.donmai.us)."""
    host = host_of(base_url)
    known = tuple(d for d in SOURCES[source].domains if host == d or host.endswith("." + d))
    domains = [host, *known, *(d.strip().lower() for d in extra if d.strip())]
    return tuple(dict.fromkeys(d for d in domains if d))


def account(dialect: str, environ: dict[str, str]) -> tuple[str, str]:
    """(login, api key) from the environment: both or neither, and a numeric user id for Gelbooru."""
    login, key = environ.get(LOGIN_ENV, "").strip(), environ.get(API_KEY_ENV, "").strip()
    if bool(login) != bool(key):
        given, missing = (LOGIN_ENV, API_KEY_ENV) if login else (API_KEY_ENV, LOGIN_ENV)
        raise UserError(f"{given} is set but {missing} is not: the site takes both or neither; {DIALECTS[dialect].account_hint}")
    if login and dialect == "gelbooru" and not login.isdigit():
        raise UserError(f"{LOGIN_ENV} must be your numeric Gelbooru user id, not a name; {DIALECTS[dialect].account_hint}")
    return login, key


def make_job(params: CrawlParams, output: str, base_url: str | None = None, log_level: str = "WARNING", environ: dict[str, str] | None = None) -> CrawlJob:
    """Resolve crawl params to a job; `base_url` is the running demo booru's address for source demo."""
    source = SOURCES[params.source]
    url = (base_url or params.base_url or source.base_url or "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise UserError(f"crawl.base_url = {url!r}: must be an http:// or https:// address of a {source.dialect} API")
    login, api_key = account(source.dialect, dict(os.environ) if environ is None else environ)
    return CrawlJob(
        crawl=replace(params, tags=" ".join(params.tags.split())),
        dialect=source.dialect,
        base_url=url,
        allowed_domains=site_domains(params.source, url, params.allowed_domains),
        output=output,
        log_level=log_level,
        login=login,
        api_key=api_key,
    )
