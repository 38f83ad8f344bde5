"""Image IDs by the million in a few bytes of memory each: digests in sorted temporary files, not Python strings.

The faces stage looks up every raw manifest line in the state file's record of done images
(`Done`: digest -> byte offset of the image's state line) and, on a first run, in the images it
already listed (an anigan.keys.KeySet: the first listing wins). A digest is anigan.keys'
short_digest of the image ID (16 bytes of blake2b and an end byte): two images share one only by
a 2^-128 chance. What grows with the images is on disk (anigan.keys.RowFile, SortedFile); memory
holds a sparse index of the digests and one flag a state line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anigan.keys import SHORT as DIGEST
from anigan.keys import RowFile, SortedFile

ROW = np.dtype([("key", DIGEST), ("value", np.int64), ("line", np.int64)])  # value: offset * 2 + flag
DONE = np.dtype([("key", DIGEST), ("offset", np.int64)])
STRIDE = 32  # Done rows per entry of its in-memory index: one lookup reads this many


class Rows:
    """(digest, offset, flag) rows of state lines, appended in file order to a temporary file."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = folder
        self._spill = RowFile(ROW, folder)
        self.count = 0
        self.lines = 0  # one past the highest line number appended

    def append(self, digest: bytes, offset: int, flag: bool, line: int | None = None) -> None:
        """A state line's row; `line` is its number among the lines read (the rows' count unless told)."""
        line = self.count if line is None else line
        self._spill.append((digest, offset * 2 + flag, line))
        self.count += 1
        self.lines = max(self.lines, line + 1)

    def close(self) -> None:
        self._spill.close()


class Done:
    """Image digest -> byte offset of its state line, sorted by digest in a temporary file, and
    which state lines (by number) are the current ones."""

    def __init__(self, table: SortedFile | None = None, current: np.ndarray | None = None) -> None:
        self._table = table if table is not None else SortedFile(DONE, stride=STRIDE)
        self.current = np.zeros(0, bool) if current is None else current

    @classmethod
    def of(cls, rows: Rows) -> Done:
        """The last row of each digest, unless that row is flagged (a later flagged row forgets an image).

        The rows come back a range of digests at a time, each range's in file order: the last of a
        digest's run after a stable sort is its latest line."""
        current = np.zeros(rows.lines, bool)

        def blocks():
            for bucket in rows._spill.buckets("key"):
                bucket = bucket[np.argsort(bucket["key"], kind="stable")]
                keys = bucket["key"]
                last = np.flatnonzero(np.r_[keys[1:] != keys[:-1], True]) if len(bucket) else np.empty(0, np.int64)
                kept = bucket[last[bucket["value"][last] % 2 == 0]]
                current[kept["line"]] = True
                out = np.empty(len(kept), DONE)
                out["key"], out["offset"] = kept["key"], kept["value"] // 2
                yield out

        try:
            return cls(SortedFile(DONE, rows.folder, blocks(), STRIDE), current)
        finally:
            rows.close()

    def __len__(self) -> int:
        return len(self._table)

    def find(self, digests: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each digest's row number (-1 where it is not done) and its state line's offset."""
        where, rows = self._table.find(digests)
        return where, rows["offset"]

    def close(self) -> None:
        self._table.close()
