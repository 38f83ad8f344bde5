"""The demo booru's HTTP server: Danbooru, Gelbooru (dapi) and Moebooru JSON APIs on loopback.

    with DemoBooru(generate_site(0, 60)) as booru:
        booru.url  # "http://127.0.0.1:PORT"

Fault modes for tests (`Faults`) are deterministic: every Nth request is refused.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from anigan.local_server import LOOPBACK, LocalServer, is_loopback
from crawler.demo.generator import DemoPost, DemoSite

FORBIDDEN_PREFIX = "/forbidden/"
ROBOTS_TXT = "User-agent: *\nDisallow: /forbidden/\n"
# Danbooru's robots.txt keeps every agent off the site and its JSON: its API is for programs with
# an account, which are expected to decide for themselves.
DANBOORU_ROBOTS_TXT = "User-agent: *\nDisallow: /\nDisallow: /*.json\n"
# What the real sites answer a listing without the credentials they require.
UNAUTHORIZED = {
    "danbooru": {"success": False, "error": "SessionLoader::AuthenticationFailure", "message": "Invalid API key"},
    "gelbooru": "Missing authentication. Go to api access credentials on your account settings page to get your api_key and user_id.",
}

# How each dialect spells ratings.
DANBOORU_RATINGS = {"general": "g", "sensitive": "s", "questionable": "q", "explicit": "e"}
MOEBOORU_RATINGS = {"general": "s", "sensitive": "s", "questionable": "q", "explicit": "e"}
# Every spelling a `rating:` query term may use, in any dialect -> the ratings it selects.
RATING_QUERY = {
    "g": {"general"}, "general": {"general"},
    "s": {"sensitive"}, "sensitive": {"sensitive"},
    "safe": {"general", "sensitive"},
    "q": {"questionable"}, "questionable": {"questionable"},
    "e": {"explicit"}, "explicit": {"explicit"},
}


@dataclass(frozen=True)
class Faults:
    """Deterministic trouble: every `rate_limit_every`-th request gets 429 with Retry-After,
    every `error_every`-th gets 500, every response waits `delay` seconds. 0 turns one off."""

    rate_limit_every: int = 0
    retry_after: int = 1
    error_every: int = 0
    delay: float = 0.0
    challenge_every: int = 0  # every Nth file request gets 403 and a challenge page, as a CDN does


CHALLENGE_PAGE = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>"


@dataclass(frozen=True)
class Quirks:
    """How a real site differs from the friendly default, for tests that must read like the site.

    `robots_txt` replaces the demo's; `credentials` (dialect -> {query parameter: value}) are
    required on that dialect's listing, which answers 401 without them; `depth_cap`: Gelbooru's
    results window (an answer reaching past it has no "post" key); `page_caps`: the most posts
    per request per dialect (larger `limit`s get this many); `hide_file_every`: every Nth post is
    listed without `file_url` (restricted posts); `video_every`/`zip_every`: every Nth post is
    listed as an mp4 or a zip (ugoira) whose file is not served as an image.
    """

    robots_txt: str = ROBOTS_TXT
    credentials: dict[str, dict[str, str]] | None = None
    depth_cap: int = 20_000
    page_caps: tuple[tuple[str, int], ...] = (("danbooru", 200), ("gelbooru", 1000), ("moebooru", 100))
    hide_file_every: int = 0
    video_every: int = 0
    zip_every: int = 0

    def page_cap(self, dialect: str) -> int:
        return dict(self.page_caps)[dialect]


# The account the demo's gelbooru.com accepts (as real accounts are: a numeric id and a key).
DEMO_USER_ID = "918273645"
DEMO_API_KEY = "c0ffee5ecret0key"

# The public sites as the crawler meets them (the demo's posts behind each site's rules).
LIKE = {
    "danbooru.donmai.us": Quirks(robots_txt=DANBOORU_ROBOTS_TXT, hide_file_every=9, video_every=11, zip_every=13),
    "gelbooru.com": Quirks(
        credentials={"gelbooru": {"user_id": DEMO_USER_ID, "api_key": DEMO_API_KEY}},
        page_caps=(("danbooru", 200), ("gelbooru", 100), ("moebooru", 100)),
    ),
    "safebooru.org": Quirks(),
    "yande.re": Quirks(),
}


def escape_tag(tag: str) -> str:
    """A tag as Gelbooru sends it: HTML-escaped, apostrophes as &#039;."""
    return tag.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#039;")


# Moebooru's "s" is "safe": everything not questionable or explicit.
MOEBOORU_RATING_QUERY = RATING_QUERY | {"s": {"general", "sensitive"}}


def matches(post: DemoPost, query: str, rating_query: dict[str, set[str]] = RATING_QUERY) -> bool:
    """Booru tag query semantics: all terms must hold; `-tag` excludes; `rating:x` filters."""
    for term in query.split():
        negate = term.startswith("-")
        term = term[1:] if negate else term
        if term.startswith("rating:"):
            hit = post.rating in rating_query.get(term.split(":", 1)[1], set())
        else:
            hit = term in post.tags
        if hit == negate:
            return False
    return True


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(value))) if value not in (None, "") else default
    except ValueError:
        return default


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; without TCP_NODELAY, Nagle's algorithm holds the
    # body until the client's delayed ACK (about 40 ms per keep-alive request on loopback), a
    # stall real web servers do not have.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        booru: DemoBooru = self.server.context  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        number = booru._count(url.path, self.path)
        faults = booru.faults
        if faults.delay:
            time.sleep(faults.delay)
        if faults.rate_limit_every and number % faults.rate_limit_every == 0:
            return self._send(429, b"rate limited\n", "text/plain", {"Retry-After": str(faults.retry_after)})
        if faults.error_every and number % faults.error_every == 0:
            return self._send(500, b"internal error\n", "text/plain")
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        route = {
            "/posts.json": booru.danbooru_posts,
            "/index.php": booru.gelbooru_posts,
            "/post.json": booru.moebooru_posts,
        }.get(url.path)
        if route is not None:
            dialect = {"/posts.json": "danbooru", "/index.php": "gelbooru", "/post.json": "moebooru"}[url.path]
            if not booru.authorized(dialect, query):
                refusal = UNAUTHORIZED.get(dialect, "401 Unauthorized")
                if isinstance(refusal, dict):
                    return self._send(401, json.dumps(refusal).encode(), "application/json")
                return self._send(401, refusal.encode(), "text/plain")
            body = route(query)
            if body is None:
                return self._send(400, b"bad request\n", "text/plain")
            return self._send(200, json.dumps(body).encode(), "application/json")
        if url.path == "/robots.txt":
            return self._send(200, booru.quirks.robots_txt.encode(), "text/plain")
        if faults.challenge_every and url.path.startswith("/images/"):
            with booru._lock:
                booru._file_requests += 1
                challenged = booru._file_requests % faults.challenge_every == 0
            if challenged:
                return self._send(403, CHALLENGE_PAGE, "text/html")
        if url.path == "/anigan/ground_truth.jsonl":
            lines = "".join(json.dumps(r) + "\n" for r in booru.site.ground_truth())
            return self._send(200, lines.encode(), "application/x-ndjson")
        post = booru.file_at(url.path)
        if post is not None:
            return self._send(200, post.data, post.content_type)
        return self._send(404, b"not found\n", "text/plain")

    def do_HEAD(self) -> None:  # noqa: N802 - crawlers probe files with HEAD; same answer, no body
        self.do_GET()

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class DemoBooru:
    """A running demo booru for `site`, bound to loopback; use as a context manager or start()/stop()."""

    def __init__(self, site: DemoSite, host: str = LOOPBACK, faults: Faults | None = None, *, port: int = 0, quirks: Quirks | None = None) -> None:
        if not is_loopback(host):
            raise ValueError(f"the demo booru binds to loopback only, not {host!r}")
        self.site = site
        self.faults = faults or Faults()
        self.quirks = quirks or Quirks()
        self.requests: collections.Counter[str] = collections.Counter()
        # Every listing request in full (path and query), in arrival order.
        self.listings: list[str] = []
        self._lock = threading.Lock()
        self._total = 0
        self._file_requests = 0
        self._files = {self.file_path(p): p for p in site.posts}
        self._newest_first = sorted(site.posts, key=lambda p: p.post_id, reverse=True)
        self._http = LocalServer(_Handler, self, host, port, name="demo-booru")

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> "DemoBooru":
        self._http.start()
        return self

    def serve_forever(self) -> None:
        self._http.serve_forever()

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> "DemoBooru":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def publish(self, site: DemoSite) -> None:
        """Serve `site` from now on, as a live booru's new uploads appear (a bigger site of the same
        seed keeps the earlier posts and adds newer ones)."""
        with self._lock:
            self.site = site
            self._files = {self.file_path(p): p for p in site.posts}
            self._newest_first = sorted(site.posts, key=lambda p: p.post_id, reverse=True)

    def _count(self, path: str, target: str = "") -> int:
        with self._lock:
            self._total += 1
            self.requests[path] += 1
            if path in ("/posts.json", "/index.php", "/post.json"):
                self.listings.append(target or path)
            return self._total

    def authorized(self, dialect: str, query: dict[str, str]) -> bool:
        """Whether a listing request carries the credentials this site requires (if any)."""
        wanted = (self.quirks.credentials or {}).get(dialect)
        return not wanted or all(query.get(k) == v for k, v in wanted.items())

    def _listed(self, post: DemoPost, record: dict, ext_key: str | None) -> dict:
        """A listing record with the site's oddities: hidden files, video and zip posts."""
        q = self.quirks
        if q.hide_file_every and post.post_id % q.hide_file_every == 0:
            return {k: v for k, v in record.items() if k != "file_url"}
        for every, ext in ((q.video_every, "mp4"), (q.zip_every, "zip")):
            if every and post.post_id % every == 0:
                record = record | {"file_url": f"{self.url}/data/{post.md5}.{ext}"}
                return record | ({ext_key: ext} if ext_key else {})
        return record

    @staticmethod
    def file_path(post: DemoPost) -> str:
        folder = FORBIDDEN_PREFIX if post.forbidden else "/images/"
        return f"{folder}{post.md5}.{post.ext}"

    def file_at(self, path: str) -> DemoPost | None:
        return self._files.get(path)

    def _select(self, tags: str, rating_query: dict[str, set[str]] = RATING_QUERY) -> list[DemoPost]:
        return [p for p in self._newest_first if matches(p, tags, rating_query)]

    def _common(self, post: DemoPost) -> dict:
        return {"id": post.post_id, "md5": post.md5, "file_url": self.url + self.file_path(post)}

    def danbooru_posts(self, q: dict[str, str]) -> list[dict] | None:
        """GET /posts.json?tags=&page=&limit=: page is 1-based, or b<id> / a<id> as on Danbooru."""
        limit = _int(q.get("limit"), 20, 1, self.quirks.page_cap("danbooru"))
        posts = self._select(q.get("tags", ""))
        page = q.get("page", "1") or "1"
        if page[0] in "ab" and page[1:].isdigit():
            cursor = int(page[1:])
            if page[0] == "b":
                chosen = [p for p in posts if p.post_id < cursor][:limit]
            else:
                chosen = [p for p in posts if p.post_id > cursor][-limit:]
        else:
            start = (_int(page, 1, 1, 10**6) - 1) * limit
            chosen = posts[start : start + limit]
        return [
            self._listed(p, self._common(p)
            | {
                "file_ext": p.ext,
                "file_size": len(p.data),
                "image_width": p.width,
                "image_height": p.height,
                "tag_string": " ".join(p.tags),
                "rating": DANBOORU_RATINGS[p.rating],
                "created_at": f"2026-01-01T00:{p.post_id // 60 % 60:02d}:{p.post_id % 60:02d}.000+00:00",
            }, "file_ext")
            for p in chosen
        ]

    def gelbooru_posts(self, q: dict[str, str]) -> dict | None:
        """GET /index.php?page=dapi&s=post&q=index&json=1&tags=&pid=&limit=: pid is 0-based."""
        if (q.get("page"), q.get("s"), q.get("q")) != ("dapi", "post", "index"):
            return None
        limit = _int(q.get("limit"), 100, 1, self.quirks.page_cap("gelbooru"))
        pid = _int(q.get("pid"), 0, 0, 10**6)
        # `id:<N` (and `id:>N`) bound the ids, as on Gelbooru; the rest is a tag query.
        terms, below, above = [], None, None
        for term in q.get("tags", "").split():
            if term.startswith("id:<") and term[4:].isdigit():
                below = int(term[4:])
            elif term.startswith("id:>") and term[4:].isdigit():
                above = int(term[4:])
            else:
                terms.append(term)
        posts = [p for p in self._select(" ".join(terms)) if (below is None or p.post_id < below) and (above is None or p.post_id > above)]
        offset = pid * limit
        # Past the depth cap Gelbooru answers with the count but without posts.
        chosen = posts[offset : offset + limit] if offset + limit <= self.quirks.depth_cap else []
        body: dict = {"@attributes": {"limit": limit, "offset": offset, "count": len(posts)}}
        if chosen:  # Gelbooru leaves out "post" when a page is empty
            body["post"] = [
                self._listed(p, self._common(p) | {"width": p.width, "height": p.height, "tags": " ".join(escape_tag(t) for t in p.tags), "rating": p.rating}, None)
                for p in chosen
            ]
        return body

    def moebooru_posts(self, q: dict[str, str]) -> list[dict] | None:
        """GET /post.json?tags=&page=&limit=: page is 1-based."""
        limit = _int(q.get("limit"), 16, 1, self.quirks.page_cap("moebooru"))
        page = _int(q.get("page"), 1, 1, 10**6)
        posts = self._select(q.get("tags", ""), MOEBOORU_RATING_QUERY)
        chosen = posts[(page - 1) * limit : page * limit]
        return [
            self._listed(p, self._common(p)
            | {
                "file_ext": p.ext,
                "file_size": len(p.data),
                "width": p.width,
                "height": p.height,
                "tags": " ".join(p.tags),
                "rating": MOEBOORU_RATINGS[p.rating],
            }, "file_ext")
            for p in chosen
        ]
