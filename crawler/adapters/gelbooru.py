"""Gelbooru's dapi (`index.php?page=dapi&s=post&q=index&json=1`), also spoken by Safebooru and
other Gelbooru 0.2 sites: `pid` is a 0-based page number.

Gelbooru wraps posts as {"@attributes": ..., "post": [...]}; Safebooru sends a bare list whose
records name the file by `directory` and `image` and its md5 as `hash`; both are read here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from crawler.adapters.common import absolute, as_int, as_str, ext_of, listing_page, records, split_tags
from crawler.items import ListingPage, Post

# Current Gelbooru spells ratings out; Gelbooru 0.2 sites say safe/questionable/explicit or s/q/e.
RATINGS = {
    "general": "general", "sensitive": "sensitive", "questionable": "questionable", "explicit": "explicit",
    "safe": "general", "s": "general", "q": "questionable", "e": "explicit",
}


class Gelbooru:
    name = "gelbooru"

    def first_cursor(self) -> int:
        return 0

    def page_url(self, base_url: str, tags: str, cursor: int | str, page_size: int, credentials: dict[str, str]) -> str:
        query = {"page": "dapi", "s": "post", "q": "index", "json": "1", "tags": tags, "pid": str(cursor), "limit": str(page_size)}
        if credentials.get("login") and credentials.get("api_key"):
            query |= {"user_id": credentials["login"], "api_key": credentials["api_key"]}
        return f"{base_url.rstrip('/')}/index.php?{urlencode(query)}"

    def parse_page(self, base_url: str, source: str, data: Any) -> ListingPage:
        base = base_url.rstrip("/")

        def to_post(post_id: int, r: dict) -> Post:
            file_url = absolute(base_url, as_str(r.get("file_url")))
            if file_url is None and as_str(r.get("image")) and r.get("directory") not in (None, ""):
                file_url = f"{base}/images/{r['directory']}/{r['image']}"
            return Post(
                source=source,
                post_id=post_id,
                post_url=f"{base}/index.php?page=post&s=view&id={post_id}",
                file_url=file_url,
                md5=as_str(r.get("md5")) or as_str(r.get("hash")),
                width=as_int(r.get("width")),
                height=as_int(r.get("height")),
                tags=split_tags(r.get("tags")),
                rating=RATINGS.get(str(r.get("rating")).lower()),
                ext=ext_of(file_url),
            )

        return listing_page(records(data, "post"), to_post)

    def next_cursor(self, cursor: int | str, page: ListingPage) -> int | None:
        return int(cursor) + 1 if page.entries else None


DIALECT = Gelbooru()
