"""Every pair of 64-bit hashes within a Hamming distance, without comparing all pairs (multi-index hashing).

The pigeonhole idea: split the 64 bits into m bands. If two hashes differ in at most r bits, some
band differs in at most floor(r/m) bits; more precisely, writing r = m*q + a, one of the first a+1
bands differs in at most q bits or one of the others in at most q-1 (Norouzi, Punjani and Fleet,
"Fast search in Hamming space with multi-index hashing", CVPR 2012). With m = r+1 every radius is
0 and candidates are the hashes that share a band exactly; with many hashes those bands are
too narrow (9 bits at r=6: a million random hashes put ~2,000 in every bucket, billions of
candidates), so `plan_bands` picks m from an estimate of the work, trading more lookups (all band
values within the radius) for far fewer candidates. Candidates are verified with a popcount, and a
pair is reported only by the first band that can find it, so each pair comes out exactly once.

All of it is vectorised numpy: per band, a bucket table (or a sorted array for wide bands) and one
pass per flip mask over all hashes; candidates are expanded and verified in bounded chunks, so a
giant bucket costs time but never unbounded memory.
"""

from __future__ import annotations

import itertools
import logging
import math
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from preprocess.spill import release

log = logging.getLogger(__name__)

BITS = 64
TABLE_BITS = 24  # bands up to this wide get a bucket table (2^24 values: 16 to 64 MiB, see _BucketTable)
CHUNK_PAIRS = 2_000_000  # candidates expanded and verified at a time (bounds memory)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64."""
    x = np.asarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    # numpy < 2.0: count per byte
    table = np.array([i.bit_count() for i in range(256)], dtype=np.int64)
    return table[x.reshape(-1, 1).view(np.uint8)].sum(axis=1).reshape(x.shape)


@dataclass(frozen=True)
class Band:
    """One band of the hash: bits [shift, shift+width), searched at Hamming radius `radius` (-1: not searched)."""

    shift: int
    width: int
    radius: int

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.shift

    def flips(self) -> int:
        """How many band values lie within the radius of one value (lookups per hash)."""
        return sum(math.comb(self.width, k) for k in range(self.radius + 1))


@dataclass(frozen=True)
class Plan:
    """How to search: brute force (no bands) or these bands."""

    bands: tuple[Band, ...]
    estimated_cost: float

    @property
    def brute_force(self) -> bool:
        return not self.bands


# Relative costs per unit of work, measured roughly: one lookup of one hash in one bucket table,
# one candidate expanded and verified, one pair compared by brute force, one pass over a flip mask
# (numpy call overheads), one bucket table entry built.
_LOOKUP_COST = 1.0
_CANDIDATE_COST = 4.0
_BRUTE_COST = 1.0
_PASS_COST = 200.0
_TABLE_COST = 1.0


def bands_for(m: int, max_distance: int) -> tuple[Band, ...]:
    """Split 64 bits into m near-equal bands with the radii that guarantee no pair within max_distance is missed."""
    q, a = divmod(max_distance, m)
    widths = [BITS // m + (1 if i < BITS % m else 0) for i in range(m)]
    bands, shift = [], BITS
    for i, w in enumerate(widths):
        shift -= w
        bands.append(Band(shift=shift, width=w, radius=q if i <= a else q - 1))
    return tuple(bands)


def plan_bands(n: int, max_distance: int) -> Plan:
    """Choose the number of bands that minimises the expected work for n uniformly spread hashes."""
    pairs = n * (n - 1) / 2
    best = Plan((), pairs * _BRUTE_COST)
    for m in range(1, min(max_distance + 1, BITS) + 1):
        bands = bands_for(m, max_distance)
        if any(b.width > 62 for b in bands):
            continue  # numpy shifts of a 63/64-bit band overflow signed helpers; m=1 is brute force anyway
        lookups = sum(n * b.flips() / 2 for b in bands if b.radius >= 0)
        candidates = sum(pairs * b.flips() / 2.0**b.width for b in bands if b.radius >= 0)
        slow = max(b.width for b in bands) > TABLE_BITS  # sorted-array lookups: a binary search each
        passes = sum(b.flips() for b in bands if b.radius >= 0)
        tables = 0 if slow else sum(2**b.width for b in bands)
        cost = lookups * _LOOKUP_COST * (20 if slow else 1) + candidates * _CANDIDATE_COST + passes * _PASS_COST + tables * _TABLE_COST
        if cost < best.estimated_cost:
            best = Plan(bands, cost)
    return best


def _flips_by_top_bit(width: int, radius: int) -> Iterator[tuple[int, list[int]]]:
    """Nonzero XOR masks of popcount <= radius (the band values' neighbours), grouped by their highest bit."""
    for top in range(width):
        flips = [(1 << top) | sum(1 << b for b in rest) for k in range(radius) for rest in itertools.combinations(range(top), k)]
        if flips:
            yield top, flips


def _expand(queries: np.ndarray, starts: np.ndarray, counts: np.ndarray, order: np.ndarray, limit: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each query i (counts > 0), pair it with order[starts[i] : starts[i] + counts[i]]; at most ~limit pairs at a time."""
    if not len(queries):
        return
    counts = counts.astype(np.int64)
    ends = np.cumsum(counts)
    lo = 0
    while lo < len(queries):
        base = ends[lo - 1] if lo else 0
        hi = max(int(np.searchsorted(ends, base + limit, side="right")), lo + 1)  # one giant bucket still goes alone
        c = counts[lo:hi]
        offsets = np.arange(int(c.sum()), dtype=np.int64) - np.repeat(np.cumsum(c) - c, c)
        yield np.repeat(queries[lo:hi], c).astype(np.int64), order[np.repeat(starts[lo:hi], c) + offsets].astype(np.int64)
        lo = hi


def _brute_force_pairs(u: np.ndarray, max_distance: int, limit: int) -> Iterator[np.ndarray]:
    """All pairs i < j within the distance by comparing blocks of rows against everything after them."""
    n = len(u)
    rows = max(1, limit // max(n, 1))
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        d = popcount64(u[lo:hi, None] ^ u[None, :])
        i, j = np.nonzero(d <= max_distance)
        i = i + lo
        later = j > i
        if later.any():
            yield np.stack([i[later], j[later]], axis=1)


PARALLEL_FROM = 100_000  # hashes; below this, starting worker processes costs more than it saves


def iter_distinct_pairs(
    hashes: np.ndarray, max_distance: int, *, plan: Plan | None = None, chunk: int = CHUNK_PAIRS, workers: int = 1
) -> Iterator[np.ndarray]:
    """Yield (k, 2) int64 arrays of index pairs (i < j) with Hamming distance <= max_distance.

    The hashes must be distinct (see `near_pairs` for any input); every qualifying pair is yielded
    exactly once, in a deterministic order. With `workers` > 1 and many hashes, bands are searched
    in parallel processes (each band's pairs then come back whole rather than in chunks).
    """
    u = np.ascontiguousarray(hashes, dtype=np.uint64)
    n = len(u)
    if max_distance < 0:
        raise ValueError("max_distance must be >= 0")
    if n < 2:
        return
    plan = plan or plan_bands(n, max_distance)
    if plan.brute_force:
        yield from _brute_force_pairs(u, max_distance, chunk)
        return
    log.debug("multi-index search: %d hashes, bands %s", n, [(b.width, b.radius) for b in plan.bands])
    searched = tuple(b for b in plan.bands if b.radius >= 0)
    if workers > 1 and len(searched) > 1 and n >= PARALLEL_FROM:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: safe whatever threads the caller runs
        with ProcessPoolExecutor(max_workers=min(workers, len(searched)), mp_context=context) as pool:
            jobs = [pool.submit(_band_pairs_whole, u, searched, t, max_distance, chunk) for t in range(len(searched))]
            for job in jobs:
                pairs = job.result()
                if len(pairs):
                    yield pairs
        return
    for t in range(len(searched)):
        yield from _band_pairs(u, searched, t, max_distance, chunk)


def _band_pairs(u: np.ndarray, searched: tuple[Band, ...], t: int, max_distance: int, chunk: int) -> Iterator[np.ndarray]:
    """The pairs band t reports: its candidates within max_distance that no earlier band can see."""
    masks = [np.uint64(b.mask) for b in searched[:t]]
    for i, j in _band_candidates(u, searched[t], chunk):
        x = u[i] ^ u[j]
        ok = popcount64(x) <= max_distance
        for mask, earlier in zip(masks, searched):  # an earlier band that can see this pair has already reported it
            ok &= popcount64(x & mask) > earlier.radius
        if ok.any():
            i, j = i[ok], j[ok]
            yield np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1)


def _band_pairs_whole(u: np.ndarray, searched: tuple[Band, ...], t: int, max_distance: int, chunk: int) -> np.ndarray:
    """_band_pairs as one array: what a worker process sends back."""
    found = list(_band_pairs(u, searched, t, max_distance, chunk))
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)


def _band_candidates(u: np.ndarray, band: Band, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Index pairs whose band values differ in at most band.radius bits, each pair of values looked at once."""
    n = len(u)
    index = np.int32 if n < 2**31 else np.int64  # narrow indices and values halve the memory traffic
    values = ((u >> np.uint64(band.shift)) & np.uint64((1 << band.width) - 1)).astype(np.int32 if band.width <= 31 else np.int64)
    order = np.argsort(values, kind="stable").astype(index)
    sorted_values = values[order]
    # buckets of equal band values, as runs of the sorted values: only those of two or more make pairs
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    del new
    sizes = np.diff(starts, append=n)
    biggest = int(sizes.max())
    if biggest > max(1000, 50 * math.sqrt(n)):
        log.warning("%d hashes share one %d-bit band value: many similar hashes, the search slows down", biggest, band.width)
    shared = sizes > 1
    starts, sizes = starts[shared], sizes[shared]
    del shared
    # each hash of a bucket pairs with those after it in the bucket
    positions = np.repeat(starts, sizes - 1) + (np.arange(int((sizes - 1).sum())) - np.repeat(np.cumsum(sizes - 1) - (sizes - 1), sizes - 1))
    after = np.repeat(starts + sizes, sizes - 1) - positions - 1
    del starts, sizes
    yield from _expand(order[positions], positions + 1, after, order, chunk)
    del positions, after
    if band.radius == 0:
        return

    table = band.width <= TABLE_BITS
    if table:
        bounds = _BucketTable(sorted_values, band.width, index)
    for top, flips in _flips_by_top_bit(band.width, band.radius):
        # a pair of band values (v, v ^ flip) is looked up from the side whose top flipped bit is 0
        side = np.flatnonzero((values >> top) & 1 == 0).astype(index)
        for lo in range(0, len(side), QUERY_BLOCK):  # a block of queries at a time: the per-flip temporaries stay small
            queries = side[lo : lo + QUERY_BLOCK]
            base = values[queries]
            for flip in flips:
                targets = base ^ flip
                if table:
                    starts, ends = bounds.starts(targets), bounds.starts(targets + 1)
                else:
                    starts = np.searchsorted(sorted_values, targets, side="left").astype(index)
                    ends = np.searchsorted(sorted_values, targets, side="right").astype(index)
                hit = np.flatnonzero(ends != starts)
                if len(hit):
                    yield from _expand(queries[hit], starts[hit], ends[hit] - starts[hit], order, chunk)


QUERY_BLOCK = 1 << 16  # queries of one band looked up at a time


class _BucketTable:
    """Where each band value's bucket starts in `sorted_values` (`starts(v)`; it ends at `starts(v + 1)`), for v in 0..2^width.

    Stored as an exact start every STEP values and each value's offset from it in one byte (two, or a
    plain table, where a stretch of STEP values holds more hashes): a few bytes a value instead of a
    4-byte start each, filled a block of values at a time with no 64-bit temporary of the table's size.
    """

    STEP = 16

    def __init__(self, sorted_values: np.ndarray, width: int, index: type) -> None:
        size = (1 << width) + 1
        coarse = np.searchsorted(sorted_values, np.arange(0, size + self.STEP, self.STEP, dtype=sorted_values.dtype)).astype(index)
        most = int(np.diff(coarse).max(initial=0))
        offset = np.uint8 if most < 2**8 else np.uint16 if most < 2**16 else None
        self.coarse = coarse if offset is not None else None
        self.fine = np.empty(size, dtype=offset or index)
        block = 1 << 18
        for lo in range(0, size, block):
            at = np.searchsorted(sorted_values, np.arange(lo, min(lo + block, size), dtype=sorted_values.dtype))
            self.fine[lo : lo + block] = at - coarse[np.arange(lo, lo + len(at)) // self.STEP] if offset is not None else at

    def starts(self, values: np.ndarray) -> np.ndarray:
        if self.coarse is None:
            return self.fine[values]
        return self.coarse[values // self.STEP] + self.fine[values]


def near_pairs(hashes: np.ndarray, max_distance: int, *, chunk: int = CHUNK_PAIRS, workers: int = 1) -> np.ndarray:
    """All index pairs (i < j) whose hashes differ in at most max_distance bits, sorted; any input, repeats included."""
    h = np.asarray(hashes, dtype=np.uint64)
    index = np.int32 if len(h) < 2**31 else np.int64
    # hashes grouped by value: members[bounds[v]:bounds[v+1]] hold distinct[v], in index order
    members = np.argsort(h, kind="stable").astype(index)
    ordered = h[members]
    release(h)  # a spilled column's pages (the sort read all of them)
    new = np.empty(len(h), dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    bounds = np.append(np.flatnonzero(new).astype(index), index(len(h)))
    distinct = ordered[new]
    del ordered, new
    counts = np.diff(bounds)
    out: list[np.ndarray] = []
    for v in np.nonzero(counts > 1)[0]:  # repeats of one value pair with each other
        same = members[bounds[v] : bounds[v + 1]]
        a, b = np.triu_indices(len(same), k=1)
        out.append(np.stack([same[a], same[b]], axis=1))
    for p in iter_distinct_pairs(distinct, max_distance, chunk=chunk, workers=workers):
        single = (counts[p[:, 0]] == 1) & (counts[p[:, 1]] == 1)
        out.append(np.stack([members[bounds[p[single, 0]]], members[bounds[p[single, 1]]]], axis=1))
        for a, b in p[~single]:  # values held by several hashes: every combination
            left, right = members[bounds[a] : bounds[a + 1]], members[bounds[b] : bounds[b + 1]]
            out.append(np.stack(np.meshgrid(left, right, indexing="ij"), axis=-1).reshape(-1, 2))
    if not out:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(out).astype(np.int64)
    pairs = np.stack([pairs.min(axis=1), pairs.max(axis=1)], axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
