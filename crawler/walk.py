"""Where a folder's listing walk stands, so a resumed crawl goes on from there.

Every dialect lists posts newest first. A walk covers the ids from `high` (the newest id it has
seen) down to where it reached; `cursor` is the next page to read and `pending` the posts it
asked for whose outcome is not recorded yet (their page will not be read again). A resumed run
first re-reads the newest pages until it meets `high` (posts added since), then reads on from
`cursor`. The record is replaced atomically after each page, so a killed crawl loses nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from anigan.files import read_json, write_json
from crawler.items import Post

Cursor = int | str


@dataclass(frozen=True)
class Walk:
    filters: dict = field(default_factory=dict)  # the filters the walk decided skips with
    high: int | None = None  # the newest post id covered; None: no page read yet
    cursor: Cursor | None = None  # the next page of the walk
    finished: bool = False  # the walk reached the listing's end
    pending: tuple[Post, ...] = ()

    def as_dict(self) -> dict:
        return {
            "filters": self.filters,
            "high": self.high,
            "cursor": self.cursor,
            "finished": self.finished,
            "pending": [asdict(p) for p in self.pending],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Walk":
        pending = tuple(Post(**(p | {"tags": tuple(p.get("tags") or ())})) for p in data.get("pending") or ())
        return cls(data.get("filters") or {}, data.get("high"), data.get("cursor"), bool(data.get("finished")), pending)


def after_page(walk: Walk, next_cursor: Cursor | None, newest_id: int | None, pending: tuple[Post, ...], ended: bool) -> Walk:
    """The walk once a page of it is read: on to `next_cursor` (the end when `ended`)."""
    high = max(i for i in (walk.high, newest_id) if i is not None) if (walk.high, newest_id) != (None, None) else None
    return replace(walk, high=high, cursor=next_cursor, finished=ended, pending=pending)


def refresh_reached(page_lowest_id: int | None, high: int | None) -> bool:
    """Whether a refresh page reaches what the walk covered already (an empty page ends it too)."""
    return high is None or page_lowest_id is None or page_lowest_id <= high


def load(path: Path, filters: dict) -> Walk:
    """The recorded walk, or a new one when there is none or it was walked with other filters."""
    try:
        walk = Walk.from_dict(read_json(path))
    except (FileNotFoundError, ValueError, TypeError, KeyError):
        return Walk(filters)
    return walk if walk.filters == filters else Walk(filters)


def save(path: Path, walk: Walk) -> None:
    write_json(path, walk.as_dict())
