"""Small readers shared by the adapters: APIs send numbers as strings, tags as one string, etc."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

from crawler.items import ListingPage, Post

RATINGS = ("general", "sensitive", "questionable", "explicit")


def as_int(value: Any) -> int | None:
    """An integer from an API field (int, numeric string), or None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def split_tags(value: Any) -> tuple[str, ...]:
    """Booru tags arrive as one space-separated string (sometimes padded with spaces)."""
    if isinstance(value, str):
        return tuple(t for t in value.split() if t)
    if isinstance(value, list):
        return tuple(str(t) for t in value if t)
    return ()


def ext_of(url: str | None, given: Any = None) -> str | None:
    """The file extension the API states, else the one in the URL's path, lowercase, no dot."""
    if isinstance(given, str) and given:
        return given.lower().lstrip(".")
    if not url:
        return None
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else None


def records(data: Any, key: str | None = None) -> list[dict]:
    """The list of post records in a decoded response: a bare list, or a list under `key`."""
    if key and isinstance(data, dict):
        data = data.get(key) or []
    if isinstance(data, dict):  # a single post (some APIs unwrap one-element lists)
        data = [data]
    if not isinstance(data, list):
        return []
    return [r for r in data if isinstance(r, dict)]


def lowest_id(entries: list[dict]) -> int | None:
    ids = [i for i in (as_int(r.get("id")) for r in entries) if i is not None]
    return min(ids) if ids else None


def absolute(base_url: str, url: str | None) -> str | None:
    """A file URL as the API gave it, made absolute ("//cdn/x.jpg" and "/data/x.jpg" happen)."""
    if not url:
        return None
    return urljoin(base_url.rstrip("/") + "/", url)


def host_of(url: str) -> str:
    """The host name of a URL, without port or credentials, lowercase."""
    return (urlsplit(url).hostname or "").lower()


def listing_page(entries: list[dict], to_post: Callable[[int, dict], Post]) -> ListingPage:
    """A listing page of `entries`, each turned into a Post by `to_post(post_id, record)`; one without an id is a problem."""
    posts, problems = [], []
    for record in entries:
        post_id = as_int(record.get("id"))
        if post_id is None:
            problems.append((None, "a post without an id"))
            continue
        posts.append(to_post(post_id, record))
    return ListingPage(tuple(posts), len(entries), lowest_id(entries), tuple(problems))
