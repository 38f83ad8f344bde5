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
    limit: int = param(500, min=1, help="stop when this many images are kept in total (across resumes)")
    page_size: int = param(100, min=1, max=200, help="posts asked for per API page")
    concurrency: int = param(4, min=1, max=64, help="concurrent requests per domain")
    download_delay: float = param(0.0, min=0.0, help="seconds between requests to one domain (AutoThrottle adapts it)")
    autothrottle: bool = param(True, help="adapt the delay to the server's latency")
    obey_robots: bool = param(True, help="obey robots.txt")
    user_agent: str = param("anigan-crawler (dataset builder; set crawl.user_agent to add your contact)", help="User-Agent header")
    allowed_domains: tuple[str, ...] = param((), help="more domains files may come from (a CDN), beyond the source's own")
    retries: int = param(3, min=0, max=20, help="retries of a failed request (429, 5xx, network errors)")
    retry_backoff: float = param(1.0, min=0.0, help="first wait before a retry in seconds, doubled each time; Retry-After wins")
    max_retry_wait: float = param(300.0, min=0.0, help="longest wait honoured from a Retry-After header, in seconds")
    download_timeout: float = param(60.0, gt=0.0, help="seconds before a request is abandoned (then retried)")
    scheduler: str = param("memory", choices=("memory", "redis"), help="redis shares one queue across processes and machines")
    redis_url: str = param("redis://127.0.0.1:6379/0", help="Redis for scheduler: redis")
    redis_key: str = param("anigan-crawl", help="prefix of the Redis keys one distributed crawl shares")
    redis_wait: float = param(5.0, min=0.0, help="seconds a redis worker waits on an empty queue for others to add work")
