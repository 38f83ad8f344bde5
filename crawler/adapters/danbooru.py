"""Danbooru's /posts.json: ids newest first, paged with the `b<id>` cursor (ids below), as the
site recommends over page numbers (which stop at page 1000)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from crawler.adapters.common import absolute, as_int, as_str, ext_of, listing_page, records, split_tags
from crawler.items import ListingPage, Post

RATINGS = {"g": "general", "s": "sensitive", "q": "questionable", "e": "explicit"}


class Danbooru:
    name = "danbooru"
    account_hint = "set ANIGAN_BOORU_LOGIN to your login and ANIGAN_BOORU_API_KEY to an API key from your profile page"

    def first_cursor(self) -> str:
        return "1"

    def page_url(self, base_url: str, tags: str, cursor: int | str, page_size: int, credentials: dict[str, str]) -> str:
        query = {"tags": tags, "page": str(cursor), "limit": str(page_size)}
        if credentials.get("login") and credentials.get("api_key"):
            query |= {"login": credentials["login"], "api_key": credentials["api_key"]}
        return f"{base_url.rstrip('/')}/posts.json?{urlencode(query)}"

    def parse_page(self, base_url: str, source: str, data: Any) -> ListingPage:
        def to_post(post_id: int, r: dict) -> Post:
            # Restricted posts come without file_url (and often without md5): kept as posts,
            # the spider skips them.
            file_url = as_str(r.get("file_url"))
            return Post(
                source=source,
                post_id=post_id,
                post_url=f"{base_url.rstrip('/')}/posts/{post_id}",
                file_url=absolute(base_url, file_url),
                md5=as_str(r.get("md5")),
                width=as_int(r.get("image_width")),
                height=as_int(r.get("image_height")),
                tags=split_tags(r.get("tag_string")),
                rating=RATINGS.get(str(r.get("rating"))),
                ext=ext_of(file_url, r.get("file_ext")),
                file_size=as_int(r.get("file_size")),
            )

        return listing_page(records(data), to_post)

    def next_cursor(self, cursor: int | str, page: ListingPage) -> str | None:
        # Danbooru may return short pages (hidden posts), so only an empty page ends the listing.
        return f"b{page.lowest_id}" if page.entries and page.lowest_id is not None else None


DIALECT = Danbooru()
