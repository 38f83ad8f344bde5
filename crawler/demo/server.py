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
        number = booru._count(url.path)
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
            body = route(query)
            if body is None:
                return self._send(400, b"bad request\n", "text/plain")
            return self._send(200, json.dumps(body).encode(), "application/json")
        if url.path == "/robots.txt":
            return self._send(200, ROBOTS_TXT.encode(), "text/plain")
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

    def __init__(self, site: DemoSite, host: str = LOOPBACK, faults: Faults | None = None, *, port: int = 0) -> None:
        if not is_loopback(host):
            raise ValueError(f"the demo booru binds to loopback only, not {host!r}")
        self.site = site
        self.faults = faults or Faults()
        self.requests: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._total = 0
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

    def _count(self, path: str) -> int:
        with self._lock:
            self._total += 1
            self.requests[path] += 1
            return self._total

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
        limit = _int(q.get("limit"), 20, 1, 200)
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
            self._common(p)
            | {
                "file_ext": p.ext,
                "file_size": len(p.data),
                "image_width": p.width,
                "image_height": p.height,
                "tag_string": " ".join(p.tags),
                "rating": DANBOORU_RATINGS[p.rating],
                "created_at": f"2026-01-01T00:{p.post_id // 60 % 60:02d}:{p.post_id % 60:02d}.000+00:00",
            }
            for p in chosen
        ]

    def gelbooru_posts(self, q: dict[str, str]) -> dict | None:
        """GET /index.php?page=dapi&s=post&q=index&json=1&tags=&pid=&limit=: pid is 0-based."""
        if (q.get("page"), q.get("s"), q.get("q")) != ("dapi", "post", "index"):
            return None
        limit = _int(q.get("limit"), 100, 1, 1000)
        pid = _int(q.get("pid"), 0, 0, 10**6)
        posts = self._select(q.get("tags", ""))
        chosen = posts[pid * limit : (pid + 1) * limit]
        body: dict = {"@attributes": {"limit": limit, "offset": pid * limit, "count": len(posts)}}
        if chosen:  # Gelbooru leaves out "post" when a page is empty
            body["post"] = [
                self._common(p) | {"width": p.width, "height": p.height, "tags": " ".join(p.tags), "rating": p.rating}
                for p in chosen
            ]
        return body

    def moebooru_posts(self, q: dict[str, str]) -> list[dict] | None:
        """GET /post.json?tags=&page=&limit=: page is 1-based."""
        limit = _int(q.get("limit"), 16, 1, 100)
        page = _int(q.get("page"), 1, 1, 10**6)
        posts = self._select(q.get("tags", ""), MOEBOORU_RATING_QUERY)
        chosen = posts[(page - 1) * limit : page * limit]
        return [
            self._common(p)
            | {
                "file_ext": p.ext,
                "file_size": len(p.data),
                "width": p.width,
                "height": p.height,
                "tags": " ".join(p.tags),
                "rating": MOEBOORU_RATINGS[p.rating],
            }
            for p in chosen
        ]
