"""Post metadata found beside images in a folder, read into the crawl's own words.

Two layouts are read: gallery-dl's `--write-metadata` sidecars (`<file>.json`, or `<file>.<ext>.json`
in gallery-dl's naming) holding the site's API record, and Danbooru-style dumps: JSON lines of
post records (`id`, `md5`, `tag_string`, `rating`, `image_width`...) matched to images by md5 or
by a file named after the post id or md5. Pure functions: no files here.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from crawler.adapters.common import as_int, as_str

# Danbooru's letters; elsewhere (Gelbooru, Moebooru) "s" means safe, read as general.
DANBOORU_RATINGS = {"g": "general", "s": "sensitive", "q": "questionable", "e": "explicit"}
OTHER_RATINGS = {"s": "general", "safe": "general", "q": "questionable", "e": "explicit"}
WORDS = {"general": "general", "sensitive": "sensitive", "questionable": "questionable", "explicit": "explicit"}


@dataclass(frozen=True)
class PostInfo:
    """What metadata says of one image; fields it leaves out are None."""

    post_id: int | None = None
    md5: str | None = None
    tags: tuple[str, ...] = ()
    rating: str | None = None
    post_url: str | None = None
    file_url: str | None = None


def _tags(record: dict) -> tuple[str, ...]:
    value = record.get("tag_string", record.get("tags"))
    if isinstance(value, list):  # older dumps: [{"name": ...}] or plain names
        names = [v.get("name") if isinstance(v, dict) else v for v in value]
    elif isinstance(value, str):
        names = value.split()
    else:
        names = []
    # Gelbooru sends tags HTML-escaped, and sidecars keep what the site sent.
    return tuple(html.unescape(str(n)) for n in names if n)


def _rating(record: dict) -> str | None:
    value = str(record.get("rating") or "").strip().lower()
    if value in WORDS:
        return WORDS[value]
    danbooru = "tag_string" in record or record.get("category") == "danbooru"
    return (DANBOORU_RATINGS if danbooru else OTHER_RATINGS).get(value)


def post_info(record: Any) -> PostInfo | None:
    """A metadata record (a decoded JSON object) as PostInfo; None when it does not describe a post."""
    if not isinstance(record, dict) or not ({"id", "md5", "tag_string", "tags", "rating"} & set(record)):
        return None
    return PostInfo(
        post_id=as_int(record.get("id")),
        md5=(as_str(record.get("md5")) or as_str(record.get("hash")) or "").lower() or None,
        tags=_tags(record),
        rating=_rating(record),
        post_url=as_str(record.get("post_url")),
        file_url=as_str(record.get("file_url")),
    )


def json_lines(text: str) -> list[PostInfo]:
    """The post records of a JSON lines dump (lines that are not post records are passed over)."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            info = post_info(json.loads(line))
        except ValueError:
            continue
        if info is not None:
            found.append(info)
    return found
