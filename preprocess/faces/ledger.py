"""Image IDs by the million in a few bytes each: digests in sorted numpy arrays, not Python strings.

The faces stage looks up every raw manifest line in the state file's record of done images
(`Done`: digest -> byte offset of the image's state line) and, on a first run, in the images it
already listed (an anigan.keys.KeySet: the first listing wins). A digest is anigan.keys'
short_digest of the image ID (16 bytes of blake2b and an end byte): two images share one only by
a 2^-128 chance.
"""

from __future__ import annotations

import numpy as np

from anigan.keys import SHORT as DIGEST

CHUNK = 1 << 13  # rows gathered in a Python list before they become an array
ROW = np.dtype(f"S{DIGEST.itemsize + 8}")  # a digest and a big-endian (offset * 2 + flag): sorting rows sorts by digest, then by offset


class Rows:
    """(digest, offset, flag) rows appended one at a time, kept packed as 24 bytes in numpy chunks."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._pending: list[bytes] = []

    def append(self, digest: bytes, offset: int, flag: bool) -> None:
        self._pending.append(digest + (offset * 2 + flag).to_bytes(8, "big"))
        if len(self._pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._chunks.append(np.array(self._pending, ROW))
            self._pending = []

    def take(self) -> np.ndarray:
        """Every row (the chunks are let go)."""
        self._flush()
        rows = np.empty(sum(len(c) for c in self._chunks), ROW)
        at = 0
        while self._chunks:  # each chunk let go once copied: never two copies of every row
            chunk = self._chunks.pop(0)
            rows[at : at + len(chunk)] = chunk
            at += len(chunk)
        return rows


class Done:
    """Image digest -> byte offset of its state line, as two arrays sorted by digest."""

    def __init__(self, keys: np.ndarray | None = None, offsets: np.ndarray | None = None) -> None:
        self.keys = np.empty(0, DIGEST) if keys is None else keys
        self.offsets = np.empty(0, np.int64) if offsets is None else offsets

    @classmethod
    def of(cls, rows: Rows) -> Done:
        """The last row of each digest, unless that row is flagged (a later flagged row forgets an image)."""
        packed = rows.take()
        packed.sort()  # in place: by digest, then by offset
        fields = packed.view(np.dtype([("key", DIGEST), ("value", ">u8")]))  # views, not copies
        last = np.r_[fields["key"][1:] != fields["key"][:-1], True] if len(packed) else np.empty(0, bool)
        kept = np.flatnonzero(last)
        kept = kept[fields["value"][kept] % 2 == 0]
        return cls(fields["key"][kept], (fields["value"][kept] // 2).astype(np.int64))

    def __len__(self) -> int:
        return len(self.keys)

    def find(self, digests: np.ndarray) -> np.ndarray:
        """Each digest's index in the arrays, -1 where it is not done."""
        where = np.searchsorted(self.keys, digests)
        inside = where < len(self.keys)
        found = np.zeros(len(digests), bool)
        found[inside] = self.keys[where[inside]] == digests[inside]
        return np.where(found, where, -1)
