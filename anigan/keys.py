"""Compact keys for a million posts: fixed-width digests in temporary files, not Python strings.

A post key (`source:post_id`) becomes a 16-byte blake2b digest and an image ID (sha256 hex) its 32
raw bytes, each followed by one 0x01 byte: numpy's fixed-width bytes drop trailing zero bytes when
an element is read back, and a non-zero last byte keeps every digest whole and comparable.

What grows with the posts lives on disk, in unlinked temporary files beside the output (nothing is
left behind by a kill): a `RowFile` holds one fixed-width row per line and hands its rows back by
bucket, a range of digests at a time, so each key's lines are grouped in memory one bucket at a
time and compared by their whole digests; a `SortedFile` is a sorted set of rows read by a small
in-memory index and one read per lookup. Digests are hashes, so buckets of equal ranges are
about equally full.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

SHORT = np.dtype("S17")  # short_digest: a post key, or any text that is not a sha256
POST = SHORT
IMAGE = np.dtype("S33")
_END = b"\x01"
CHUNK = 1 << 16  # rows read at a time, and gathered in memory before a fold
PENDING = 1 << 12  # rows (Python tuples, a few hundred bytes each) gathered before they are written
BUCKET_ROWS = 1 << 16  # rows a bucket holds on average
STRIDE = 256  # rows of a SortedFile per entry of its in-memory index: one lookup reads this many


def short_digest(text: str) -> bytes:
    """Any text as 17 bytes: a 16-byte blake2b of all of it, then the end byte."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest() + _END


def post_digest(key: str) -> bytes:
    """A post key (`source:post_id`) as 17 bytes."""
    return short_digest(key)


def image_digest(image_id: str) -> bytes:
    """An image ID as 33 bytes: its own sha256 bytes (any other string hashed)."""
    if len(image_id) == 64:
        try:
            return bytes.fromhex(image_id) + _END
        except ValueError:
            pass
    return hashlib.blake2b(image_id.encode("utf-8"), digest_size=32).digest() + _END


class Column:
    """Values appended one at a time, stored as numpy chunks (a Python list holds only the last chunk)."""

    def __init__(self, dtype) -> None:
        self.dtype = np.dtype(dtype)
        self._chunks: list[np.ndarray] = []
        self._pending: list = []

    def append(self, value) -> None:
        self._pending.append(value)
        if len(self._pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._chunks.append(np.array(self._pending, dtype=self.dtype))
            self._pending = []

    def array(self) -> np.ndarray:
        self._flush()
        return np.concatenate(self._chunks) if self._chunks else np.empty(0, self.dtype)


def _temporary(folder: str | Path | None):
    """An unlinked temporary file in `folder` (the system's temporary folder when there is no such folder)."""
    return tempfile.TemporaryFile(dir=folder if folder is not None and Path(folder).is_dir() else None)


def _read(fd: int, dtype: np.dtype, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a file of rows."""
    data = os.pread(fd, (stop - start) * dtype.itemsize, start * dtype.itemsize)
    return np.frombuffer(data, dtype).copy()


def leading(digests: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each digest as a big-endian uint64: the order of the digests themselves."""
    raw = np.ascontiguousarray(digests).view(np.uint8).reshape(len(digests), digests.dtype.itemsize)
    return np.ascontiguousarray(raw[:, :8]).view(">u8").ravel()


def buckets_for(rows: int) -> int:
    return max(1, -(-rows // BUCKET_ROWS))


def bucket_of(digests: np.ndarray, buckets: int) -> np.ndarray:
    """Each digest's bucket of `buckets` equal ranges, in digest order."""
    if buckets == 1:
        return np.zeros(len(digests), np.int64)
    return (leading(digests) // np.uint64(-(-(1 << 64) // buckets))).astype(np.int64)


class RowFile:
    """Rows of one structured dtype appended in order to a temporary file; read back in order or by bucket."""

    def __init__(self, dtype, folder: str | Path | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self.folder = folder
        self._file = _temporary(folder)
        self._pending: list[tuple] = []
        self.rows = 0
        self._buckets: dict[tuple[str, int], list] = {}

    def append(self, row: tuple) -> None:
        self._pending.append(row)
        if len(self._pending) >= PENDING:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._file.write(np.array(self._pending, dtype=self.dtype).tobytes())
            self.rows += len(self._pending)
            self._pending = []
            self._file.flush()

    def chunks(self) -> Iterator[np.ndarray]:
        """Every row, in order, CHUNK rows at a time."""
        self.flush()
        for start in range(0, self.rows, CHUNK):
            yield _read(self._file.fileno(), self.dtype, start, min(self.rows, start + CHUNK))

    def row(self, i: int) -> np.void:
        self.flush()
        return _read(self._file.fileno(), self.dtype, i, i + 1)[0]

    def buckets(self, field: str, buckets: int | None = None) -> Iterator[np.ndarray]:
        """The rows bucket by bucket (ranges of `field`, a digest, in ascending order), each bucket's rows in append order."""
        self.flush()
        buckets = buckets or buckets_for(self.rows)
        files = self._buckets.get((field, buckets))
        if files is None:
            files = [_temporary(self.folder) for _ in range(buckets)]
            for chunk in self.chunks():
                which = bucket_of(chunk[field], buckets)
                order = np.argsort(which, kind="stable")
                bounds = np.searchsorted(which[order], np.arange(buckets + 1))
                for b in np.flatnonzero(np.diff(bounds)):
                    files[b].write(chunk[order[bounds[b] : bounds[b + 1]]].tobytes())
            for f in files:
                f.flush()
            self._buckets[(field, buckets)] = files
        for f in files:
            yield _read(f.fileno(), self.dtype, 0, os.fstat(f.fileno()).st_size // self.dtype.itemsize)

    def close(self) -> None:
        for files in self._buckets.values():
            for f in files:
                f.close()
        self._buckets.clear()
        self._file.close()


def count_distinct(spill: RowFile, field: str) -> int:
    """How many distinct values of `field` (a digest) a spill holds."""
    return sum(len(np.unique(bucket[field])) for bucket in spill.buckets(field))


class SortedFile:
    """Rows of one structured dtype with a digest field `key`, sorted and unique by it, in a
    temporary file; the key of every `stride`-th row (STRIDE unless told) stays in memory, so a lookup reads one stretch."""

    def __init__(self, dtype, folder: str | Path | None = None, blocks: Iterable[np.ndarray] = (), stride: int = STRIDE) -> None:
        self.dtype = np.dtype(dtype)
        self.folder = folder
        self.stride = stride
        self._file, self.rows, self._index = self._write(blocks)

    def _write(self, blocks: Iterable[np.ndarray]):
        """A new file of `blocks` (sorted, in order) and its index."""
        f = _temporary(self.folder)
        rows, index = 0, []
        for block in blocks:
            if len(block):
                f.write(block.tobytes())
                index.append(block["key"][(-rows) % self.stride :: self.stride].copy())  # not a view: that would hold the block
                rows += len(block)
        f.flush()
        return f, rows, np.concatenate(index) if index else np.empty(0, self.dtype["key"])

    def blocks(self) -> Iterator[np.ndarray]:
        for start in range(0, self.rows, CHUNK):
            yield _read(self._file.fileno(), self.dtype, start, min(self.rows, start + CHUNK))

    def get(self, key: bytes) -> np.void | None:
        """The row whose key is `key`, or None."""
        stretch = int(np.searchsorted(self._index, key, side="right")) - 1
        if stretch < 0:
            return None
        rows = _read(self._file.fileno(), self.dtype, stretch * self.stride, min(self.rows, (stretch + 1) * self.stride))
        i = int(np.searchsorted(rows["key"], key))
        return rows[i] if i < len(rows) and rows["key"][i] == key else None

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each key's row number (-1 where it is not here) and its row (zeros there): one read per
        stretch the keys fall in, not one per key."""
        where = np.full(len(keys), -1, np.int64)
        found = np.zeros(len(keys), self.dtype)
        stretch = np.searchsorted(self._index, keys, side="right") - 1
        order = np.argsort(stretch, kind="stable")
        wanted = stretch[order]
        bounds = np.r_[np.flatnonzero(np.r_[True, wanted[1:] != wanted[:-1]]), len(keys)] if len(keys) else np.zeros(1, np.int64)
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if wanted[a] < 0:
                continue  # before the first key
            first = int(wanted[a]) * self.stride
            rows = _read(self._file.fileno(), self.dtype, first, min(self.rows, first + self.stride))
            ask = order[a:b]
            i = np.minimum(np.searchsorted(rows["key"], keys[ask]), len(rows) - 1)
            hit = rows["key"][i] == keys[ask]
            where[ask[hit]] = first + i[hit]
            found[ask[hit]] = rows[i[hit]]
        return where, found

    def __contains__(self, key: bytes) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return self.rows

    def merge(self, new: np.ndarray) -> None:
        """Add rows whose keys are not here yet (any order), one block of the file at a time."""
        new = new[np.argsort(new["key"], kind="stable")]

        def merged() -> Iterator[np.ndarray]:
            taken = 0
            for block in self.blocks():
                upto = int(np.searchsorted(new["key"], block["key"][-1], side="right"))
                both = np.concatenate([block, new[taken:upto]])
                taken = upto
                yield both[np.argsort(both["key"], kind="stable")]
            yield new[taken:]

        f, rows, index = self._write(merged())
        self._file.close()
        self._file, self.rows, self._index = f, rows, index

    def copy(self) -> SortedFile:
        return SortedFile(self.dtype, self.folder, self.blocks(), self.stride)

    def close(self) -> None:
        self._file.close()


def sorted_file(spill: RowFile, dtype, field: str, folder: str | Path | None = None) -> SortedFile:
    """The first row of each distinct `field` of a spill, as a SortedFile of `dtype` (its key taken from `field`)."""
    dtype = np.dtype(dtype)

    def blocks() -> Iterator[np.ndarray]:
        for bucket in spill.buckets(field):
            _, first = np.unique(bucket[field], return_index=True)
            rows = bucket[first]
            out = np.empty(len(rows), dtype)
            for name in dtype.names:
                out[name] = rows[field if name == "key" else name]
            yield out

    return SortedFile(dtype, folder, blocks())


class KeySet:
    """A set of digests: a SortedFile, plus what was added since, folded in now and then."""

    def __init__(self, dtype, folder: str | Path | None = None, keys: SortedFile | None = None) -> None:
        self.dtype = np.dtype(dtype)
        self._file = keys if keys is not None else SortedFile([("key", self.dtype)], folder)
        self._added: set[bytes] = set()

    @classmethod
    def of(cls, dtype, keys: Iterable[bytes], folder: str | Path | None = None) -> KeySet:
        spill = RowFile([("key", dtype)], folder)
        try:
            for key in keys:
                spill.append((key,))
            return cls(dtype, folder, sorted_file(spill, [("key", dtype)], "key", folder))
        finally:
            spill.close()

    def __contains__(self, key: bytes) -> bool:
        return key in self._added or key in self._file

    def add(self, key: bytes) -> bool:
        """Add `key`; True when it was not there."""
        if key in self:
            return False
        self._added.add(key)
        if len(self._added) >= CHUNK:  # a set of bytes costs several times the file's rows: fold it in
            self._file.merge(np.array([(k,) for k in self._added], dtype=self._file.dtype))
            self._added.clear()
        return True

    def __len__(self) -> int:
        return len(self._file) + len(self._added)

    def copy(self) -> KeySet:
        """Another set with the same keys, changed apart from this one."""
        other = KeySet(self.dtype, keys=self._file.copy())
        other._added = set(self._added)
        return other
