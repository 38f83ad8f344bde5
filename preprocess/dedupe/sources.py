"""What dedupe needs from the raw manifest, for the source images of the faces: size and shard place.

The raw manifest is read in a stream; only the images asked for are kept, as columns indexed
like the sorted array of their IDs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anigan.files import read_jsonl
from anigan.shards import Member
from preprocess.columns import Vocabulary, chunked, encode, finder
from preprocess.spill import Spill, release

log = logging.getLogger(__name__)


@dataclass
class SourceTable:
    """Per image of `image_id` (sorted, distinct): width x height (0 unknown) and where its bytes lie (shard -1: nowhere)."""

    image_id: np.ndarray  # 'S', ascending
    pixels: np.ndarray  # int64
    shard: np.ndarray  # int32 code into shards
    offset: np.ndarray
    size: np.ndarray
    shards: list[str]

    def spill(self, spill: Spill) -> None:
        """Move every column to `spill`: images are looked up a few at a time from here on."""
        for name in ("image_id", "pixels", "shard", "offset", "size"):
            if not isinstance(getattr(self, name), np.memmap):
                setattr(self, name, spill.save(getattr(self, name)))

    def member(self, i: int) -> Member | None:
        code = int(self.shard[i])
        return None if code < 0 else Member(self.shards[code], int(self.offset[i]), int(self.size[i]))


def _pixels(record: dict) -> int | None:
    try:
        return int(record["width"]) * int(record["height"])
    except (KeyError, TypeError, ValueError):
        return None


def read_sources(raw_manifest: Path, image_ids: np.ndarray) -> SourceTable:
    """Sizes and places of the images `image_ids` (sorted, distinct 'S', spilled or not); all unknown when there is no manifest.

    The first record of an image that names a shard member places it; its size is the last one
    given up to that record.
    """
    n = len(image_ids)
    table = SourceTable(image_ids, np.zeros(n, np.int64), np.full(n, -1, np.int32), np.zeros(n, np.int64), np.zeros(n, np.int64), [])
    if not raw_manifest.exists():
        log.info("%s not found: representatives are chosen by face box, score and ID only", raw_manifest)
        return table
    shards = Vocabulary()
    find = finder(image_ids)
    # only the fields used travel in a chunk, never whole records (a raw record carries its tags)
    fields = ((r.get("image_id"), Member.of(r), _pixels(r)) for r in read_jsonl(raw_manifest))
    for chunk in chunked(fields):
        ids = [image_id for image_id, _, _ in chunk]
        queries = np.array([encode(i) if isinstance(i, str) else b"" for i in ids], dtype="S")
        found = find(queries)
        release(image_ids)
        found[[not isinstance(i, str) for i in ids]] = -1  # a record without an image ID is no face's source
        for k in np.nonzero(found >= 0)[0].tolist():
            i = int(found[k])
            if table.shard[i] >= 0:
                continue  # placed by an earlier record
            _, member, pixels = chunk[k]
            if member is not None:
                table.shard[i], table.offset[i], table.size[i] = shards.code(member.shard), member.offset, member.bytes
            if pixels is not None:
                table.pixels[i] = pixels
    table.shards = shards.values
    return table
