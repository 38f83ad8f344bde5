"""Hashing faces and source images in batches over worker processes, reusing a cache keyed by content ID.

Hashes are kept as columns (`Hashes`), never as one object per file, and batches are handed to
the workers a few at a time, so memory holds the batches in flight, not a task per file.
"""

from __future__ import annotations

import multiprocessing
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from anigan.files import append_jsonl, read_jsonl
from preprocess.columns import chunked, decode, encode, finder, keep_rows
from preprocess.dedupe.phash import FaceHash, HashFailure, Source, from_hex, hash_files, to_hex
from preprocess.imageio import MAX_FACE_PIXELS
from preprocess.spill import Spill, blocks, release

BATCH = 256  # files per hashing task: big enough for a vectorised DCT, small enough to show progress
IN_FLIGHT = 64  # batches queued at once (a few MB of places): enough to keep any pool busy, never the whole run
HASH_VERSION = "phash-dct32-8x8-v1"  # bump when the hash recipe changes: cached hashes are then recomputed
DIGEST_WIDTH = 64  # hex digits of a sha256
DIGEST_BYTES = 32  # a sha256 as raw bytes: how pixel digests are held (half the hex text)
HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
# cached hashes put between releases of the spilled columns: cache lines come in any order, and each
# put touches a page of every column, so this bounds the pages held whatever the number of items
SCATTER_ROWS = 256


@dataclass
class Hashes:
    """Per item: whether it has hashes (`ok`), and its content ID, pHash, pixel digest and decoded size."""

    ok: np.ndarray  # bool
    file_sha256: np.ndarray  # 'S'
    phash: np.ndarray  # uint64
    pixel_sha256: np.ndarray  # 'S32': raw digest bytes (read back with `pixel_hex`)
    width: np.ndarray  # int64
    height: np.ndarray

    @classmethod
    def empty(cls, n: int, id_width: int = DIGEST_WIDTH, spill: Spill | None = None) -> Hashes:
        """No hashes for n items; with `spill`, every column but `ok` and the pHash is spilled (the pHashes are searched in memory)."""
        zeros = spill.zeros if spill else np.zeros
        return cls(np.zeros(n, bool), zeros(n, f"S{id_width}"), np.zeros(n, np.uint64), zeros(n, f"S{DIGEST_BYTES}"), zeros(n, np.int64), zeros(n, np.int64))

    def release(self) -> None:
        """Hand back the pages of spilled columns read or written so far."""
        release(*vars(self).values())

    def put(self, i: int, h: FaceHash) -> None:
        self.ok[i] = True
        self.file_sha256[i], self.phash[i], self.pixel_sha256[i] = encode(h.file_sha256), h.phash, bytes.fromhex(h.pixel_sha256)
        self.width[i], self.height[i] = h.width, h.height

    def keep(self, rows: np.ndarray, spill: Spill | None = None) -> None:
        """Restrict to `rows` (in that order), column by column (spilled ones into `spill`)."""
        keep_rows(vars(self), rows, spill)

    def pixel_hex(self, i: int) -> str:
        # an 'S' item drops trailing zero bytes: pad them back
        return self.pixel_sha256[i].ljust(DIGEST_BYTES, b"\0").hex()

    def cache_record(self, key: str, name: str, i: int) -> dict:
        """The hash cache line of item i, named `name` under `key` (face_id or image_id)."""
        return {
            key: name, "hash": HASH_VERSION, "file_sha256": decode(self.file_sha256[i]), "phash": to_hex(self.phash[i]),
            "pixel_sha256": self.pixel_hex(i), "size": [int(self.width[i]), int(self.height[i])],
        }


def parse_cache_record(record: dict, id_width: int = DIGEST_WIDTH) -> FaceHash | None:
    """The hashes of one cache line, or None when it is damaged (that file is then simply hashed again)."""
    try:
        width, height = record.get("size") or (0, 0)
        h = FaceHash(record["file_sha256"], from_hex(record["phash"]), record["pixel_sha256"], width, height)
    except (KeyError, TypeError, ValueError):
        return None
    if not (isinstance(h.file_sha256, str) and len(encode(h.file_sha256)) <= id_width):
        return None
    if not (isinstance(h.pixel_sha256, str) and HEX_DIGEST.match(h.pixel_sha256)):
        return None  # every hash this code makes has a sha256 in hex here
    if not (0 <= h.phash < 2**64 and all(type(v) is int and v >= 0 for v in (h.width, h.height))):
        return None
    return h


def read_cache(path: Path, key: str, names: np.ndarray, id_width: int = DIGEST_WIDTH, spill: Spill | None = None) -> tuple[Hashes, np.ndarray]:
    """For each of `names` (sorted 'S'): the last undamaged line recorded for it under `key` with
    the current recipe, and the number of the first such line (-1: none), in one pass over the cache."""
    hashes = Hashes.empty(len(names), id_width, spill)
    first_line = np.full(len(names), -1, np.int64)
    # a line's key and parsed hashes travel in a chunk, not the record
    parsed = ((n, r[key], parse_cache_record(r, id_width)) for n, r in enumerate(read_jsonl(path, missing_ok=True)) if r.get("hash") == HASH_VERSION and isinstance(r.get(key), str))
    find = finder(names)
    for lines in chunked(line for line in parsed if line[2] is not None):
        keys = np.array([encode(name) for _, name, _ in lines], dtype="S")
        found = np.empty(len(keys), dtype=np.int64)
        for rows in blocks(len(keys), SCATTER_ROWS):  # each lookup reads pages of spilled names
            found[rows] = find(keys[rows])
            release(names)
        del keys
        hashes.release()
        hits = np.nonzero(found >= 0)[0].tolist()
        for start in range(0, len(hits), SCATTER_ROWS):
            for k in hits[start : start + SCATTER_ROWS]:
                number, _, h = lines[k]
                i = int(found[k])
                hashes.put(i, h)
                if first_line[i] < 0:
                    first_line[i] = number
            hashes.release()
    return hashes, first_line


@contextmanager
def hashing_pool(workers: int, files: int) -> Iterator[Executor | None]:
    """Worker processes for hashing `files` files in batches; None when one process does."""
    batches = -(-files // BATCH)
    if workers <= 1 or batches <= 1:
        yield None
        return
    # spawn: a fresh interpreter per worker, safe whatever threads the parent runs (progress bars)
    pool = ProcessPoolExecutor(max_workers=min(workers, batches), mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def bounded_map(pool: Executor | None, fn: Callable, tasks: Iterable[tuple[Any, tuple]]) -> Iterator[tuple[Any, Any]]:
    """(tag, fn(*args)) for each (tag, args) of `tasks`, in order; at most IN_FLIGHT tasks queued at once
    (Executor.map would queue every task up front)."""
    if pool is None:
        for tag, args in tasks:
            yield tag, fn(*args)
        return
    pending: deque = deque()
    for tag, args in tasks:
        pending.append((tag, pool.submit(fn, *args)))
        if len(pending) >= IN_FLIGHT:
            tag, future = pending.popleft()
            yield tag, future.result()
    while pending:
        tag, future = pending.popleft()
        yield tag, future.result()


def hash_cached(
    key: str,
    names: np.ndarray,
    content_ids: np.ndarray,
    source_of: Callable[[int], Source],
    cache_path: Path,
    pool: Executor | None,
    progress: Callable[[int], None],
    max_pixels: int = MAX_FACE_PIXELS,
    spill: Spill | None = None,
) -> tuple[Hashes, list[tuple[int, HashFailure]], int]:
    """Hashes of the items `names` (sorted 'S' face or image IDs, recorded in the cache under `key`):
    also the items that could not be hashed, and how many hashes were reused.

    A cached hash is reused when it was made from the same content ID: no file is read to check
    it. Every other item's file is read (`source_of(i)`) and hashed, and its hashes are appended
    to the cache batch by batch, so a killed run keeps every finished batch.
    """
    id_width = max(DIGEST_WIDTH, content_ids.dtype.itemsize)
    hashes, _ = read_cache(cache_path, key, names, id_width, spill)
    for rows in blocks(len(names)):
        hashes.ok[rows] &= hashes.file_sha256[rows] == content_ids[rows].astype(f"S{id_width}")
        release(content_ids)
        hashes.release()
    reused = int(hashes.ok.sum())
    progress(reused)
    failures: list[tuple[int, HashFailure]] = []
    done = reused
    work = partial(hash_files, max_pixels=max_pixels)
    batches = ((ids, ([source_of(i) for i in ids],)) for ids in chunked(np.nonzero(~hashes.ok)[0].tolist(), BATCH))
    for ids, results in bounded_map(pool, work, batches):
        fresh = []
        for i, result in zip(ids, results):
            if isinstance(result, FaceHash):
                hashes.put(i, result)
                fresh.append(hashes.cache_record(key, decode(names[i]), i))
            else:
                failures.append((i, result))
        append_jsonl(cache_path, fresh)
        hashes.release()
        done += len(ids)
        progress(done)
    return hashes, failures, reused
