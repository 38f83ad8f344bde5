"""Gelbooru's dapi (`index.php?page=dapi&s=post&q=index&json=1`), also spoken by Safebooru and
other Gelbooru 0.2 sites.

Gelbooru answers no deeper than about 20,000 results: past that, `pid` pages come back without a
`post` key. So the listing is walked by id keyset instead, as gallery-dl does: every page is
`pid=0` of the query plus `id:<N`, N the lowest id seen so far. The cursor is that N (0: the
newest page).

Gelbooru wraps posts as {"@attributes": {"limit", "offset", "count"}, "post": [...]}; Safebooru
sends a bare list whose records name the file by `directory` and `image` and its md5 as `hash`;
both are read here. Tags arrive HTML-escaped (`&gt;_&lt;`, `&#039;`) and are unescaped.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from crawler.adapters.common import absolute, as_int, as_str, ext_of, listing_page, records, split_tags
from crawler.items import ListingPage, Post

# Current Gelbooru spells ratings out; Gelbooru 0.2 sites say safe/questionable/explicit or s/q/e.
RATINGS = {
    "general": "general", "sensitive": "sensitive", "questionable": "questionable", "explicit": "explicit",
    "safe": "general", "s": "general", "q": "questionable", "e": "explicit",
}


def cut_short(data: Any, entries: int) -> str | None:
    """Why an answer without posts is not the end of the listing: the count it reports says there is more."""
    if entries or not isinstance(data, dict):
        return None
    attributes = data.get("@attributes") or {}
    count, offset = as_int(attributes.get("count")), as_int(attributes.get("offset")) or 0
    if count is not None and count > offset:
        return f"the site reports {count} results for the query but returned none from offset {offset} (its depth cap)"
    return None


class Gelbooru:
    name = "gelbooru"
    account_hint = (
        "set ANIGAN_BOORU_LOGIN to your numeric user id and ANIGAN_BOORU_API_KEY to your API key "
        "(both on the site's account options page)"
    )

    def first_cursor(self) -> int:
        return 0

    def page_url(self, base_url: str, tags: str, cursor: int | str, page_size: int, credentials: dict[str, str]) -> str:
        below = int(cursor)
        query_tags = f"{tags} id:<{below}".strip() if below else tags
        query = {"page": "dapi", "s": "post", "q": "index", "json": "1", "tags": query_tags, "pid": "0", "limit": str(page_size)}
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
                tags=tuple(html.unescape(t) for t in split_tags(r.get("tags"))),
                rating=RATINGS.get(str(r.get("rating")).lower()),
                ext=ext_of(file_url),
            )

        entries = records(data, "post")
        page = listing_page(entries, to_post)
        why = cut_short(data, len(entries))
        return ListingPage(page.posts, page.entries, page.lowest_id, page.problems, why) if why else page

    def next_cursor(self, cursor: int | str, page: ListingPage) -> int | None:
        return page.lowest_id if page.entries and page.lowest_id is not None else None


DIALECT = Gelbooru()
