"""Which lines of a raw folder stay under the current params: decided in one streaming pass per
file, kept as numpy columns (a few dozen bytes a line), never as a list of records.

Manifest: one line per post (the first), lines the filters now refuse are dropped, and only the
first `limit` distinct images (in file order) stay. Every kept line of an image names one place,
that of its first kept line whose bytes are whole in their shard: parts merged from several
processes may each hold a copy, and only one is kept. Rejects: the last line per post wins, at
the place of its first; posts now kept, transient failures (retried) and filter decisions when
the filters changed (re-examined) are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from anigan.shards import Member
from crawler.filters import Filters
from crawler.items import FILTER_REASONS, TRANSIENT_REASONS
from crawler.keys import IMAGE, POST, Column, image_digest, post_digest

# Drop reasons in the order the summary lists them; "" (index 0) is kept by the filters.
FILTER_WHY = ("", "rating", "too_small", "too_many_pixels", "too_many_bytes")
DROP_ORDER = ("duplicate_line", *FILTER_WHY[1:], "over_limit", "file_missing")


def post_key(record: dict) -> str:
    """The post a manifest or rejects line is about, as Post.key spells it."""
    return f"{record.get('source')}:{record.get('post_id')}"


@dataclass
class ManifestVerdict:
    """Per manifest line (in stream order): kept or not, and the line whose place it names."""

    keep: np.ndarray  # bool
    place: np.ndarray  # int64: the line whose place a kept line names (itself, or its image's first copy)
    shard: np.ndarray  # int32 index into shard_names; -1 when the line names no place
    offset: np.ndarray  # int64
    size: np.ndarray  # int64
    shard_names: list[str]
    kept_posts: np.ndarray  # sorted digests of the kept posts
    images: int
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def posts(self) -> int:
        return len(self.kept_posts)

    def member(self, line: int) -> Member:
        return Member(self.shard_names[self.shard[line]], int(self.offset[line]), int(self.size[line]))

    def members(self) -> Iterator[Member]:
        """The place of every kept image, once, in the order of its first kept line."""
        for line in np.unique(self.place[self.keep]):
            yield self.member(int(line))


def _first_of_each(keys: np.ndarray) -> np.ndarray:
    """A mask of the lines holding the first occurrence of their key."""
    first = np.zeros(len(keys), bool)
    first[np.unique(keys, return_index=True)[1]] = True
    return first


def _first_line_of_each(image: np.ndarray, lines: np.ndarray, groups: int) -> np.ndarray:
    """For each image, the first of `lines` (ascending) naming it; len(image) for none."""
    first = np.full(groups, len(image), np.int64)
    first[image[lines[::-1]]] = lines[::-1]  # the last write wins: the smallest line
    return first


def judge_manifest(records: Iterable[dict], filters: Filters, limit: int, lengths: dict[str, int]) -> ManifestVerdict:
    """Decide every manifest line; `lengths` (shard name -> bytes on disk) tells whole places."""
    posts, images = Column(POST), Column(IMAGE)
    why, shard, offset, size = Column(np.uint8), Column(np.int32), Column(np.int64), Column(np.int64)
    whole = Column(bool)
    names: dict[str, int] = {}
    for record in records:
        posts.append(post_digest(post_key(record)))
        images.append(image_digest(str(record.get("image_id", ""))))
        why.append(FILTER_WHY.index(filters.why_not_kept(record, record.get("bytes")) or ""))
        member = Member.of(record)
        if member is None:
            member, index, ok = Member("", 0, 0), -1, False
        else:
            index, ok = names.setdefault(member.shard, len(names)), member.offset + member.bytes <= lengths.get(member.shard, -1)
        shard.append(index)
        offset.append(member.offset)
        size.append(member.bytes)
        whole.append(ok)
    posts_a, why_a, whole_a = posts.array(), why.array(), whole.array()
    # Each line's image as a small integer (its rank among the distinct images): what follows works
    # on these, not on the 33-byte digests.
    image = np.unique(images.array(), return_inverse=True)[1].ravel()
    groups = int(image.max()) + 1 if len(image) else 0
    dropped = dict.fromkeys(DROP_ORDER, 0)

    first = _first_of_each(posts_a)
    dropped["duplicate_line"] = int((~first).sum())
    for code, reason in enumerate(FILTER_WHY[1:], 1):
        dropped[reason] = int((first & (why_a == code)).sum())
    candidate = first & (why_a == 0)

    # The first `limit` images, by the line that first names them; later lines of those images stay too.
    lines = np.flatnonzero(candidate)
    first_line = _first_line_of_each(image, lines, groups)
    allowed = np.zeros(groups, bool)
    allowed[np.argsort(first_line, kind="stable")[: min(limit, int((first_line < len(image)).sum()))]] = True
    keep = candidate & allowed[image]
    dropped["over_limit"] = int((candidate & ~keep).sum())

    # Each kept image's place: the first kept line of it whose bytes are whole.
    source = _first_line_of_each(image, np.flatnonzero(keep & whole_a), groups)
    place = np.where(keep, source[image], -1)
    missing = keep & (place >= len(image))
    keep &= ~missing
    place[~keep] = -1
    dropped["file_missing"] = int(missing.sum())

    return ManifestVerdict(
        keep=keep,
        place=place,
        shard=shard.array(),
        offset=offset.array(),
        size=size.array(),
        shard_names=list(names),
        kept_posts=np.unique(posts_a[keep]),
        images=int((source < len(image)).sum()),
        dropped={k: n for k, n in dropped.items() if n},
    )


def judge_rejects(records: Iterable[dict], kept_posts: np.ndarray, filters_changed: bool) -> np.ndarray:
    """For each rejects line, the line to write in its place (-1: nothing): a post's last line
    at the place of its first, unless the post is kept now or its refusal is to be looked at again."""
    posts, retry = Column(POST), Column(bool)
    again = set(TRANSIENT_REASONS) | (set(FILTER_REASONS) if filters_changed else set())
    for record in records:
        posts.append(post_digest(post_key(record)))
        retry.append(record.get("reason") in again)
    posts_a, retry_a = posts.array(), retry.array()
    n = len(posts_a)
    unique, first = np.unique(posts_a, return_index=True)
    last = n - 1 - np.unique(posts_a[::-1], return_index=True)[1]
    stays = ~np.isin(unique, kept_posts) & ~retry_a[last]
    emit = np.full(n, -1, np.int64)
    emit[first[stays]] = last[stays]
    return emit
