"""crawl: which booru to read, what to keep, how politely to fetch it."""

from dataclasses import dataclass

from anigan.params.schema import param

SOURCES = ("demo", "danbooru", "gelbooru", "safebooru", "konachan", "yandere")
RATINGS = ("general", "sensitive", "questionable", "explicit")


@dataclass(frozen=True)
class CrawlParams:
    source: str = param("demo", choices=SOURCES, help="booru to crawl; demo starts the built-in demo booru")
    base_url: str | None = param(None, help="another instance of the source's API dialect (default: the public site)")
    tags: str = param("", help="booru tag query, space separated, as typed on the site")
    ratings: tuple[str, ...] = param(("general", "sensitive"), choices=RATINGS, help="ratings to keep")
    min_width: int = param(64, min=1, help="smaller images are rejected")
    min_height: int = param(64, min=1, help="smaller images are rejected")
    max_pixels: int = param(40_000_000, min=1, help="larger images are rejected without decoding (bombs)")
    max_bytes: int = param(30_000_000, min=1, help="largest download in bytes")
    limit: int = param(120, min=1, help="stop when this many images are kept in total (across resumes)")
    concurrency: int = param(4, min=1, max=64, help="concurrent requests per domain")
    download_delay: float = param(0.0, min=0.0, help="seconds between requests to one domain (AutoThrottle adapts it)")
    autothrottle: bool = param(True, help="adapt the delay to the server's latency")
    obey_robots: bool = param(True, help="obey robots.txt")
    user_agent: str = param("anigan-crawler (dataset builder; set crawl.user_agent to add your contact)", help="User-Agent header")
    scheduler: str = param("memory", choices=("memory", "redis"), help="redis shares one queue across processes and machines")
    redis_url: str = param("redis://127.0.0.1:6379/0", help="Redis for scheduler: redis")
