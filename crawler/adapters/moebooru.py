"""Moebooru's /post.json (Konachan, Yande.re): `page` is 1-based.

Moebooru has three ratings; its "s" (safe) covers what Danbooru splits into general and
sensitive, and is read as general.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from crawler.adapters.common import absolute, as_int, as_str, ext_of, listing_page, records, split_tags
from crawler.items import ListingPage, Post

RATINGS = {"s": "general", "q": "questionable", "e": "explicit"}


class Moebooru:
    name = "moebooru"
    account_hint = "set ANIGAN_BOORU_LOGIN to your login and ANIGAN_BOORU_API_KEY to your password hash"

    def first_cursor(self) -> int:
        return 1

    def page_url(self, base_url: str, tags: str, cursor: int | str, page_size: int, credentials: dict[str, str]) -> str:
        query = {"tags": tags, "page": str(cursor), "limit": str(page_size)}
        if credentials.get("login") and credentials.get("api_key"):
            query |= {"login": credentials["login"], "password_hash": credentials["api_key"]}
        return f"{base_url.rstrip('/')}/post.json?{urlencode(query)}"

    def parse_page(self, base_url: str, source: str, data: Any) -> ListingPage:
        base = base_url.rstrip("/")

        def to_post(post_id: int, r: dict) -> Post:
            file_url = absolute(base_url, as_str(r.get("file_url")))
            return Post(
                source=source,
                post_id=post_id,
                post_url=f"{base}/post/show/{post_id}",
                file_url=file_url,
                md5=as_str(r.get("md5")),
                width=as_int(r.get("width")),
                height=as_int(r.get("height")),
                tags=split_tags(r.get("tags")),
                rating=RATINGS.get(str(r.get("rating")).lower()),
                ext=ext_of(file_url, r.get("file_ext")),
                file_size=as_int(r.get("file_size")),
            )

        return listing_page(records(data), to_post)

    def next_cursor(self, cursor: int | str, page: ListingPage) -> int | None:
        return int(cursor) + 1 if page.entries else None


DIALECT = Moebooru()
