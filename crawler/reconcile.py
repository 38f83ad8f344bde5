"""Which lines of a raw folder stay under the current params: decided in one streaming pass per
file, each line a fixed-width row in a temporary file (anigan.keys.RowFile), worked on a bucket of
digests at a time; only a few bytes a line (where each kept line's bytes are) stay in memory.

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
from pathlib import Path

import numpy as np

from anigan.shards import Member
from crawler.filters import Filters
from crawler.items import FILTER_REASONS, TRANSIENT_REASONS
from anigan.keys import IMAGE, POST, Column, RowFile, buckets_for, image_digest, post_digest

# Drop reasons in the order the summary lists them; "" (index 0) is kept by the filters.
FILTER_WHY = ("", "rating", "too_small", "too_many_pixels", "too_many_bytes")
DROP_ORDER = ("duplicate_line", *FILTER_WHY[1:], "over_limit", "file_missing")


def post_key(record: dict) -> str:
    """The post a manifest or rejects line is about, as Post.key spells it."""
    return f"{record.get('source')}:{record.get('post_id')}"


LINE = np.dtype([("post", POST), ("image", IMAGE), ("line", np.int64), ("why", np.uint8), ("whole", bool), ("shard", np.int32), ("offset", np.int64), ("size", np.int64)])
REJECT = np.dtype([("post", POST), ("line", np.int64), ("retry", bool)])


def _lines_dtype(n: int) -> np.dtype:
    """The narrowest signed integer that numbers n lines (and -1)."""
    return np.dtype(np.int32 if n < 2**31 else np.int64)


@dataclass
class ManifestVerdict:
    """Per manifest line (in stream order): kept or not, and the line whose place it names.

    Holds the lines' rows in a temporary file: `close()` it (prepare does) when done."""

    place: np.ndarray  # the line whose place a kept line names (itself, or its image's first copy); -1: not kept
    lines: RowFile  # every line's row (LINE)
    shard_names: list[str]
    posts: int
    images: int
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def keep(self) -> np.ndarray:
        return self.place >= 0

    def _member(self, row) -> Member:
        return Member(self.shard_names[int(row["shard"])], int(row["offset"]), int(row["size"]))

    def member(self, line: int) -> Member:
        return self._member(self.lines.row(line))

    def places(self) -> Iterator[Member | None]:
        """Each line's place (None when it is not kept), in line order."""
        for chunk in self.lines.chunks():
            for row, place in zip(chunk, self.place[chunk["line"][0] : chunk["line"][0] + len(chunk)].tolist(), strict=True):
                yield None if place < 0 else self._member(row) if place == row["line"] else self.member(place)

    def members(self) -> Iterator[Member]:
        """The place of every kept image, once, in the order of its first kept line."""
        for chunk in self.lines.chunks():
            lines = chunk["line"]
            for row in chunk[self.place[lines[0] : lines[0] + len(chunk)] == lines]:
                yield self._member(row)

    def kept_posts(self, buckets: int) -> Iterator[np.ndarray]:
        """The kept posts' digests, sorted, bucket by bucket (anigan.keys.RowFile.buckets)."""
        for bucket in self.lines.buckets("post", buckets):
            yield np.unique(bucket["post"][self.place[bucket["line"]] >= 0])

    def close(self) -> None:
        self.lines.close()


def judge_manifest(records: Iterable[dict], filters: Filters, limit: int, lengths: dict[str, int], folder: str | Path | None = None) -> ManifestVerdict:
    """Decide every manifest line; `lengths` (shard name -> bytes on disk) tells whole places.
    Temporary files go in `folder` (the system's temporary folder when None)."""
    lines = RowFile(LINE, folder)
    names: dict[str, int] = {}
    for line, record in enumerate(records):
        why = FILTER_WHY.index(filters.why_not_kept(record, record.get("bytes")) or "")
        member = Member.of(record)
        if member is None:
            member, index, ok = Member("", 0, 0), -1, False
        else:
            index, ok = names.setdefault(member.shard, len(names)), member.offset + member.bytes <= lengths.get(member.shard, -1)
        lines.append((post_digest(post_key(record)), image_digest(str(record.get("image_id", ""))), line, why, ok, index, member.offset, member.bytes))
    lines.flush()
    n = lines.rows
    dropped = dict.fromkeys(DROP_ORDER, 0)

    # One line per post (its first); the filters decide on it.
    candidate = np.zeros(n, bool)
    for bucket in lines.buckets("post"):
        first = bucket[np.unique(bucket["post"], return_index=True)[1]]
        dropped["duplicate_line"] += len(bucket) - len(first)
        why = np.bincount(first["why"], minlength=len(FILTER_WHY))
        for code, reason in enumerate(FILTER_WHY[1:], 1):
            dropped[reason] += int(why[code])
        candidate[first["line"][first["why"] == 0]] = True

    # The first `limit` images, by the line that first names them; later lines of those images stay too.
    firsts = Column(_lines_dtype(n))
    for bucket in lines.buckets("image"):
        bucket = bucket[candidate[bucket["line"]]]
        for line in bucket["line"][np.unique(bucket["image"], return_index=True)[1]]:
            firsts.append(line)
    first_lines = firsts.array()
    last_allowed = n if len(first_lines) <= limit else int(np.partition(first_lines, limit - 1)[limit - 1]) if limit > 0 else -1
    del first_lines

    # Each kept image's place: the first kept line of it whose bytes are whole.
    place = np.full(n, -1, _lines_dtype(n))
    images = 0
    for bucket in lines.buckets("image"):
        bucket = bucket[candidate[bucket["line"]]]
        _, first, group = np.unique(bucket["image"], return_index=True, return_inverse=True)
        group = group.ravel()
        allowed = bucket["line"][first] <= last_allowed
        dropped["over_limit"] += int((~allowed[group]).sum())
        bucket, group = bucket[allowed[group]], group[allowed[group]]
        source = np.full(len(first), -1, np.int64)
        whole = np.flatnonzero(bucket["whole"])
        source[group[whole[::-1]]] = bucket["line"][whole[::-1]]  # the last write wins: the smallest line
        found = source[group] >= 0
        dropped["file_missing"] += int((~found).sum())
        place[bucket["line"][found]] = source[group][found]
        images += int((source >= 0).sum())
    del candidate

    verdict = ManifestVerdict(place=place, lines=lines, shard_names=list(names), posts=0, images=images, dropped={k: c for k, c in dropped.items() if c})
    verdict.posts = sum(len(posts) for posts in verdict.kept_posts(buckets_for(n)))
    return verdict


def judge_rejects(records: Iterable[dict], verdict: ManifestVerdict, filters_changed: bool, folder: str | Path | None = None) -> np.ndarray:
    """For each rejects line, the line to write in its place (-1: nothing): a post's last line
    at the place of its first, unless the post is kept now or its refusal is to be looked at again."""
    spill = RowFile(REJECT, folder)
    again = set(TRANSIENT_REASONS) | (set(FILTER_REASONS) if filters_changed else set())
    try:
        for line, record in enumerate(records):
            spill.append((post_digest(post_key(record)), line, record.get("reason") in again))
        spill.flush()
        n = spill.rows
        emit = np.full(n, -1, _lines_dtype(n))
        buckets = buckets_for(max(n, verdict.lines.rows))
        for bucket, kept in zip(spill.buckets("post", buckets), verdict.kept_posts(buckets), strict=True):
            unique, first = np.unique(bucket["post"], return_index=True)
            last = len(bucket) - 1 - np.unique(bucket["post"][::-1], return_index=True)[1]
            stays = ~np.isin(unique, kept) & ~bucket["retry"][last]
            emit[bucket["line"][first[stays]]] = bucket["line"][last[stays]]
        return emit
    finally:
        spill.close()
