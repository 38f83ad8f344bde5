"""crawl: which booru (or local folder) to read, what to keep, how politely to fetch it.

This module owns the names of the sources; the crawler's site table is keyed by them and checked
against them when it is imported.
"""

from dataclasses import dataclass

from anigan.params.schema import ParamsError, param

# Booru sites the crawler speaks to (the demo booru is started locally).
SITES = ("demo", "danbooru", "gelbooru", "safebooru", "konachan", "yandere")
# Every source: the sites, and a folder of images already downloaded.
SOURCES = SITES + ("folder",)
RATINGS = ("general", "sensitive", "questionable", "explicit")
# The most posts each site serves in one API request: asking for more silently gets fewer, and
# page-numbered walks would then skip posts.
PAGE_SIZE_MAX = {"demo": 200, "danbooru": 200, "gelbooru": 100, "safebooru": 1000, "konachan": 100, "yandere": 100}
# Query terms that change the listing's order: the crawl pages by post id, newest first.
ORDER_TERMS = ("order:", "sort:")


@dataclass(frozen=True)
class CrawlParams:
    source: str = param("demo", choices=SOURCES, help="booru to crawl; demo starts the built-in demo booru; folder imports crawl.folder")
    base_url: str | None = param(None, help="another instance of the source's API dialect (default: the public site)")
    folder: str | None = param(None, help="source folder: the folder of images (and metadata) to import; never modified")
    tags: str = param("", help="booru tag query, space separated, as typed on the site")
    ratings: tuple[str, ...] = param(("general", "sensitive"), choices=RATINGS, help="ratings to keep")
    min_width: int = param(64, min=1, help="smaller images are rejected")
    min_height: int = param(64, min=1, help="smaller images are rejected")
    max_pixels: int = param(40_000_000, min=1, help="larger images are rejected without decoding (bombs)")
    max_bytes: int = param(30_000_000, min=1, help="largest download in bytes")
    limit: int = param(500, min=1, help="stop when this many images are kept in total (across resumes)")
    page_size: int = param(100, min=1, max=max(PAGE_SIZE_MAX.values()), help="posts asked for per API page (each site has its own maximum)")
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
    shard_size: int = param(2000, min=1, help="source images per tar shard under <paths.raw>/shards (docs/crawl.md)")

    def __post_init__(self) -> None:
        # Rules that tie two keys together; each names the key to change and what is allowed.
        cap = PAGE_SIZE_MAX.get(self.source)
        if cap is not None and self.page_size > cap:
            raise ParamsError(f"crawl.page_size = {self.page_size}: {self.source} serves at most {cap} posts a request; set crawl.page_size to {cap} or less")
        ordered = [t for t in self.tags.split() if t.lstrip("-").lower().startswith(ORDER_TERMS)]
        if ordered:
            raise ParamsError(
                f"crawl.tags = {self.tags!r}: {ordered[0]!r} changes the listing's order, but the crawl pages by post id, "
                "newest first (and resumes from the id it reached); remove it"
            )
        if self.source == "folder" and not self.folder:
            raise ParamsError("crawl.folder is not set: crawl.source = folder imports the images of a folder; set crawl.folder to its path")
