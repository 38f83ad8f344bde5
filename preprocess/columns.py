"""Compact per-record columns for stages that read a manifest of a million lines.

A stage that keeps one dict per manifest line needs gigabytes at a million faces; one numpy
column per field it uses needs a few dozen bytes a face. Records are read in a stream, their
fields appended here and turned into arrays in chunks, so no more than one chunk of Python
values is alive at a time. Strings become bytes arrays ('S', UTF-8): they sort as the strings do
and compare with `lookup`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

import numpy as np

from preprocess.spill import Spill, blocks, read_rows, release

CHUNK = 16_384  # records turned into arrays at a time: bounds the Python objects alive at once


def chunked(items: Iterable, size: int | None = None) -> Iterator[list]:
    """Lists of up to `size` (default CHUNK) consecutive items."""
    size = size or CHUNK
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def encode(text: str) -> bytes:
    """A string as stored in an 'S' column."""
    return text.encode("utf-8")


def decode(value: bytes) -> str:
    """Inverse of encode, for writing a column back to JSON."""
    return value.decode("utf-8")


class ColumnBuilder:
    """Columns filled a record at a time: `add(face_id=..., offset=...)`, then `arrays()`.

    `dtypes` names every column and its numpy dtype ("S" for bytes of any width). With `spill`
    (preprocess.spill.Spill) each chunk goes to a file as it is made and `arrays()` gives maps of
    the files: memory holds one chunk, not the columns.
    """

    def __init__(self, dtypes: dict[str, Any], spill: Spill | None = None) -> None:
        self.dtypes = dtypes
        self.spill = spill
        self._pending: dict[str, list] = {name: [] for name in dtypes}
        self._done: dict[str, list[np.ndarray]] = {name: [] for name in dtypes}
        self._files = {name: _ColumnFile(spill) for name in dtypes} if spill else {}
        self.count = 0

    def add(self, **values: Any) -> None:
        for name, value in values.items():
            self._pending[name].append(value)
        self.count += 1
        if len(self._pending[next(iter(self.dtypes))]) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        for name, dtype in self.dtypes.items():
            chunk = np.array(self._pending[name], dtype=dtype)
            self._pending[name] = []
            if self.spill:
                self._files[name].append(chunk)
            else:
                self._done[name].append(chunk)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every column as one array (the builder is spent)."""
        self._flush()
        if self.spill:
            return {name: self._files.pop(name).array(np.array([], dtype=dtype)) for name, dtype in self.dtypes.items()}
        out = {}
        for name in self.dtypes:
            parts = self._done.pop(name)  # each column's chunks go as it is joined: one column is ever held twice
            # concatenating 'S' chunks of different widths widens to the widest
            out[name] = np.concatenate(parts) if parts else np.array([], dtype=self.dtypes[name])
            del parts
        return out


class _ColumnFile:
    """One spilled column, appended a chunk at a time; 'S' chunks of several widths are widened to the widest at the end."""

    def __init__(self, spill: Spill) -> None:
        self.spill = spill
        self.path = spill.new_file()
        self.chunks: list[tuple[np.dtype, int]] = []  # dtype and rows of each chunk, in file order
        self.shape: tuple[int, ...] = ()

    def append(self, chunk: np.ndarray) -> None:
        if not len(chunk):
            return
        with open(self.path, "ab") as f:
            f.write(np.ascontiguousarray(chunk).tobytes())
        self.chunks.append((chunk.dtype, len(chunk)))
        self.shape = chunk.shape[1:]

    def array(self, empty: np.ndarray) -> np.ndarray:
        if not self.chunks:
            return empty
        rows = sum(n for _, n in self.chunks)
        dtype = max((d for d, _ in self.chunks), key=lambda d: d.itemsize)
        if all(d == dtype for d, _ in self.chunks):
            return self.spill.open(self.path, dtype, (rows, *self.shape))
        wide = self.spill.new_file()  # rare: an ID longer than those before it
        with open(self.path, "rb") as f, open(wide, "wb") as out:
            for d, n in self.chunks:
                chunk = np.frombuffer(f.read(d.itemsize * n * int(np.prod(self.shape, dtype=np.int64))), dtype=d)
                out.write(chunk.astype(dtype).tobytes())
        self.path.unlink()
        return self.spill.open(wide, dtype, (rows, *self.shape))


def keep_rows(columns: dict[str, Any], rows: np.ndarray, spill: Spill | None = None) -> None:
    """Restrict each numpy column of `columns` (an object's `vars`) to `rows`, in that order, in place.

    Columns are replaced one at a time, so the old and new tables are never both held whole;
    every row in order changes nothing and copies nothing. With `spill`, a spilled column's rows
    go to a new spilled column.
    """
    rows = np.asarray(rows)
    n = next((len(v) for v in columns.values() if isinstance(v, np.ndarray)), 0)
    if len(rows) == n and np.array_equal(rows, np.arange(n)):
        return
    for name in list(columns):
        value = columns[name]
        if isinstance(value, np.ndarray):
            columns[name] = take_rows(value, rows, spill)
        del value  # the old column goes now, not when the loop ends


TAKE_BLOCK = 1 << 16  # rows of a new spilled column made at a time by take_rows
TAKE_READS = 4096  # rows of one such block read through the old column's map between releases, in row order


def take_rows(column: np.ndarray, rows: np.ndarray, spill: Spill | None = None) -> np.ndarray:
    """column[rows]; a spilled column's rows go to a new spilled column when `spill` is given.

    The new column is made a block of rows at a time, each block's rows read from the old column's
    map in ascending order, a stretch at a time with its pages handed back after each: rows read in
    a random order would touch pages all over the map between releases (and each touch makes the
    page-cache folio around it resident), so the whole old column would be resident.
    """
    if not (spill and isinstance(column, np.memmap)):
        return column[rows]
    rows = np.asarray(rows)
    path = spill.new_file()
    with open(path, "wb") as f:
        for lo in range(0, len(rows), TAKE_BLOCK):
            block = rows[lo : lo + TAKE_BLOCK]
            order = np.argsort(block, kind="stable")
            out = np.empty((len(block), *column.shape[1:]), dtype=column.dtype)
            for at in range(0, len(order), TAKE_READS):
                pick = order[at : at + TAKE_READS]
                out[pick] = column[block[pick]]
                release(column)
            f.write(out.tobytes())
    return spill.open(path, column.dtype, (len(rows), *column.shape[1:]))


def distinct(column: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """np.unique(column[mask]), read a block at a time: memory holds the distinct values and one block, never a copy of a spilled column."""
    parts = []
    for rows in blocks(len(column)):
        part = column[rows] if mask is None else column[rows][mask[rows]]
        parts.append(np.unique(part))
        release(column, mask)
    if not parts:
        return np.unique(column[:0])
    # one array of the blocks' values, each block's copy dropped as it goes in (np.concatenate would hold both)
    values = np.empty(sum(len(p) for p in parts), dtype=np.result_type(*parts))
    at = 0
    parts.reverse()
    while parts:
        part = parts.pop()
        values[at : at + len(part)] = part
        at += len(part)
        del part
    values.sort()  # in place: np.unique would sort a copy
    kept, last = 0, None  # repeats squeezed out in place, a block at a time (a value only moves down)
    for rows in blocks(len(values)):
        part = values[rows]
        first = np.ones(len(part), dtype=bool)
        first[1:] = part[1:] != part[:-1]
        if last is not None:
            first[0] = part[0] != last
        last = part[-1].copy()
        part = part[first]
        values[kept : kept + len(part)] = part
        kept += len(part)
    values.resize(kept, refcheck=False)  # shrinks the one buffer, no copy
    return values


def lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The index of each query in `sorted_keys` (an ascending 'S' or number array), -1 where absent."""
    if not len(sorted_keys) or not len(queries):
        return np.full(len(queries), -1, dtype=np.int64)
    queries = np.asarray(queries)
    at = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return np.where(sorted_keys[at] == queries, at, -1).astype(np.int64)


def lookup_column(sorted_keys: np.ndarray, column: np.ndarray, mask: np.ndarray | None = None, block_rows: int | None = None) -> np.ndarray:
    """lookup(sorted_keys, column), -1 also where `mask` is False; `block_rows` (default BLOCK_ROWS) of the column at a time,
    so a spilled one is never held whole; spilled 'S' keys through a `HashedKeys` index (see `finder`)."""
    found = np.empty(len(column), dtype=np.int64)
    find = finder(sorted_keys)
    for rows in blocks(len(column), block_rows):
        found[rows] = find(column[rows])
        if mask is not None:
            found[rows][~np.asarray(mask[rows])] = -1
        release(sorted_keys, column, mask)
    return found


def finder(sorted_keys: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """`lookup` into `sorted_keys` as a function of 'S' queries: through a `HashedKeys` index when the
    keys are spilled (a binary search through their map would touch pages anywhere in it)."""
    if HashedKeys.suits(sorted_keys, sorted_keys):
        return HashedKeys(sorted_keys).find
    return partial(lookup, sorted_keys)


class HashedKeys:
    """`lookup` into an ascending spilled 'S' column without binary searches through its map: a 64-bit hash of
    every key, sorted, in memory (12 bytes a key); a query's hash is searched there and its candidate key read
    from the file by row (spill.read_rows) and compared, so results are exactly `lookup`'s."""

    def __init__(self, sorted_keys: np.ndarray) -> None:
        self.keys = sorted_keys
        hashes = column_hashes(sorted_keys)
        self.order = np.argsort(hashes, kind="stable").astype(np.int32 if len(hashes) < 2**31 else np.int64)  # equal hashes in row order
        self.hashes = hashes[self.order]

    @staticmethod
    def suits(sorted_keys: np.ndarray, column: np.ndarray) -> bool:
        return isinstance(sorted_keys, np.memmap) and sorted_keys.ndim == 1 and sorted_keys.dtype.kind == "S" and np.asarray(column).dtype.kind == "S"

    def find(self, queries: np.ndarray) -> np.ndarray:
        """lookup(sorted_keys, queries)."""
        queries = np.asarray(queries)
        out = np.full(len(queries), -1, dtype=np.int64)
        if not len(self.hashes) or not len(queries):
            return out
        h = key_hashes(queries)
        at = np.searchsorted(self.hashes, h)
        hit = np.flatnonzero(self.hashes[np.minimum(at, len(self.hashes) - 1)] == h)
        at = at[hit]
        while len(hit):  # the first key of each hash, then (rarely: another key with the same hash) the next
            rows = self.order[at]
            same = read_rows(self.keys, rows) == queries[hit]
            out[hit[same]] = rows[same]
            at = at[~same] + 1
            hit = hit[~same]
            more = at < len(self.hashes)
            at, hit = at[more], hit[more]
            more = self.hashes[at] == h[hit]
            at, hit = at[more], hit[more]
        return out


def column_hashes(column: np.ndarray) -> np.ndarray:
    """key_hashes of every value of a column ('S' or 'U', spilled or not), a block at a time: a sequential pass through a map."""
    hashes = np.empty(len(column), dtype=np.uint64)
    for rows in blocks(len(column)):
        hashes[rows] = key_hashes(column[rows])
        release(column)
    return hashes


def key_hashes(values: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each 'S' value, the same whatever the column's width (trailing zero bytes add nothing, as in 'S' comparisons)."""
    values = np.ascontiguousarray(values)
    width = values.dtype.itemsize
    words = -(-width // 8)
    raw = values.view(np.uint8).reshape(len(values), width)
    if width % 8:
        raw = np.concatenate([raw, np.zeros((len(values), words * 8 - width), dtype=np.uint8)], axis=1)
    h = np.zeros(len(values), dtype=np.uint64)
    for k, word in enumerate(np.ascontiguousarray(raw).view("<u8").T):
        h += word * np.uint64(_odd_constant(k))  # wraps modulo 2^64
    h ^= h >> np.uint64(31)
    return h


def _odd_constant(k: int) -> int:
    """The k-th multiplier of key_hashes (splitmix64 of k, made odd)."""
    z = (k + 1) * 0x9E3779B97F4A7C15 % 2**64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 % 2**64
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB % 2**64
    return (z ^ (z >> 31)) | 1


def is_sorted(column: np.ndarray) -> bool:
    """Whether a column's values never descend, read a block at a time."""
    for rows in blocks(len(column)):
        part = column[rows.start : rows.stop + 1]  # one row into the next block
        descends = bool((part[1:] < part[:-1]).any())
        release(column)
        if descends:
            return False
    return True


def in_value_order(column: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Ascending `rows` reordered so that column[rows] ascends, ties kept in row order. A column
    sorted already (as a stage's manifest written in ID order is) gives `rows` back without a copy
    of the column's values."""
    if is_sorted(column):
        return rows
    return rows[np.argsort(column[rows], kind="stable")]


def gather(values: np.ndarray, at: np.ndarray, missing: Any) -> np.ndarray:
    """values[at], with `missing` where at is -1 (a `lookup` miss)."""
    out = np.full(len(at), missing, dtype=values.dtype)
    hit = at >= 0
    out[hit] = values[at[hit]]
    return out


def last_of_each(index: np.ndarray) -> np.ndarray:
    """Positions of the last occurrence of each distinct value >= 0 of `index`: assigning there
    makes the last of several records for one item win, as a dict filled in order would."""
    index = np.asarray(index)
    reversed_first = np.unique(index[::-1], return_index=True)
    positions = len(index) - 1 - reversed_first[1]
    return np.sort(positions[index[positions] >= 0])


class Vocabulary:
    """Small int codes for the few distinct values of a field (shard names, colour words).

    Values are told apart by their JSON text, so 1, 1.0 and true stay distinct and come back as read.
    """

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self.values: list[Any] = []

    def code(self, value: Any) -> int:
        key = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        key = ("s" if isinstance(value, str) else "j") + key
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = len(self.values)
            self.values.append(value)
        return code
