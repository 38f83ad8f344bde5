"""Source adapters: each turns one booru API dialect's JSON into Posts and next-page URLs.

An adapter knows nothing of Scrapy, files or params: `page_url` builds a listing URL,
`parse_page` turns the decoded JSON into a ListingPage, `next_cursor` says where the next page is
(None at the end). Everything else (filters, downloads, validation, storage) is shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from anigan.params.crawl import SITES
from crawler.adapters import danbooru, gelbooru, moebooru
from crawler.items import ListingPage

Cursor = int | str


class Dialect(Protocol):
    name: str

    def first_cursor(self) -> Cursor: ...

    def page_url(self, base_url: str, tags: str, cursor: Cursor, page_size: int, credentials: dict[str, str]) -> str: ...

    def parse_page(self, base_url: str, source: str, data: Any) -> ListingPage: ...

    def next_cursor(self, cursor: Cursor, page: ListingPage) -> Cursor | None: ...

    # What to tell a user whose credentials the site refused.
    account_hint: str


DIALECTS: dict[str, Dialect] = {
    "danbooru": danbooru.DIALECT,
    "gelbooru": gelbooru.DIALECT,
    "moebooru": moebooru.DIALECT,
}


@dataclass(frozen=True)
class Source:
    """A crawlable site: its API dialect, public address and the domains its files come from."""

    name: str
    dialect: str
    base_url: str | None
    domains: tuple[str, ...]


# Keyed by the source names the params declare (anigan.params.crawl.SITES), checked below.
SOURCES: dict[str, Source] = {
    # The demo booru speaks every dialect; the crawler talks Danbooru to it.
    "demo": Source("demo", "danbooru", None, ()),
    "danbooru": Source("danbooru", "danbooru", "https://danbooru.donmai.us", ("donmai.us",)),
    "gelbooru": Source("gelbooru", "gelbooru", "https://gelbooru.com", ("gelbooru.com",)),
    "safebooru": Source("safebooru", "gelbooru", "https://safebooru.org", ("safebooru.org",)),
    "konachan": Source("konachan", "moebooru", "https://konachan.com", ("konachan.com",)),
    "yandere": Source("yandere", "moebooru", "https://yande.re", ("yande.re",)),
}

if set(SOURCES) != set(SITES):
    raise RuntimeError(f"crawler.adapters.SOURCES names {sorted(SOURCES)}, the params declare {sorted(SITES)}: keep them the same")
