"""Joining related items into groups: connected components over edges that arrive in chunks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from preprocess.columns import column_hashes
from preprocess.spill import blocks, read_rows, release

# Edges are folded into the labels once this many are pending, so memory stays bounded however
# many pairs a search yields.
_FOLD_EVERY = 250_000
CHECK_ROWS = 1024  # neighbours compared as keys between releases: each pair may touch two pages anywhere in a column


def label_edges(labels: np.ndarray) -> np.ndarray:
    """A grouping as edges, a star per group: item -> its label, shape (k, 2).

    Only items joined to another: an item that is its own label adds nothing, and most are, so
    no n-long array is made for them.
    """
    joined = np.nonzero(labels != np.arange(len(labels), dtype=labels.dtype))[0]
    return np.stack([joined, labels[joined]], axis=1)


def _fold(parent: np.ndarray, edges: list[np.ndarray]) -> None:
    """Join the edges into `parent` (flat: every item points at its root, a root at itself), in place.

    Vectorised union-find: each pass links the larger root of every edge whose ends' roots differ
    to the smaller one (a root offered several keeps the smallest), then points every item
    straight at its root, until no edge's ends differ. A root is never linked to a larger item,
    so a group's root is its smallest member.
    """
    e = np.concatenate(edges).astype(parent.dtype)
    a, b = e[:, 0], e[:, 1]
    del e
    while len(a):
        ra, rb = parent[a], parent[b]
        apart = ra != rb
        a, b, ra, rb = a[apart], b[apart], ra[apart], rb[apart]
        if not len(a):
            return
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        del ra, rb
        _flatten(parent)


def _flatten(parent: np.ndarray) -> None:
    """Point every item straight at its root by pointer jumping: log2 of the longest chain of passes."""
    while True:
        up = parent[parent]
        if np.array_equal(up, parent):
            return
        parent[:] = up


def components(n: int, edge_chunks: Iterable[np.ndarray]) -> np.ndarray:
    """Group items 0..n-1 joined by (k, 2) edge arrays; returns each item's group as its smallest member's index."""
    parent = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    pending: list[np.ndarray] = []
    count = 0
    for chunk in edge_chunks:
        chunk = np.asarray(chunk).reshape(-1, 2)
        if not len(chunk):
            continue
        pending.append(chunk)
        count += len(chunk)
        if count >= _FOLD_EVERY:
            _fold(parent, pending)
            pending, count = [], 0
    if pending and n:
        _fold(parent, pending)
    return parent.astype(np.int64)


def key_runs(keys: np.ndarray, hashes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A stable order of `keys` with equal keys next to each other, and per position in it whether
    the key equals the one before (runs of equal keys; the runs themselves in no meaningful order).

    Numbers are sorted as they are. Bytes and text keys are sorted by a 64-bit hash (`hashes`:
    columns.column_hashes, when made already), made a block at a time, so a spilled column is never held
    whole; neighbours with equal hashes are then compared as keys, a few rows between releases,
    and the rare run of equal hashes holding unequal keys is sorted by its keys.
    """
    keys = np.asarray(keys)
    if keys.dtype.kind not in "SU":
        return _runs(keys)
    hashes = column_hashes(keys) if hashes is None else hashes
    order, same = _runs(hashes)
    del hashes
    same_hash = np.flatnonzero(same)
    clashes = []
    for block in blocks(len(same_hash), CHECK_ROWS):
        at = same_hash[block]
        clashes.extend(at[read_rows(keys, order[at]) != read_rows(keys, order[at - 1])].tolist())
        release(keys)
    starts = np.flatnonzero(~same)
    for start in sorted({int(starts[np.searchsorted(starts, at, side="right") - 1]) for at in clashes}):
        after = np.searchsorted(starts, start, side="right")
        run = slice(start, int(starts[after]) if after < len(starts) else len(keys))
        run_order, run_same = _runs(np.asarray(keys[order[run]]))  # a run of equal hashes is short: held for this
        order[run], same[run] = order[run][run_order], run_same
    return order, same


def dense_codes(keys: np.ndarray) -> np.ndarray:
    """Each key as an integer code 0..k-1 for its k distinct keys: equal codes exactly for equal
    keys, in no meaningful order; 4 bytes a key however wide the keys (see key_runs)."""
    order, same = key_runs(keys)
    codes = np.empty(len(keys), dtype=np.int32 if len(keys) < 2**31 else np.int64)
    codes[order] = np.cumsum(~same) - 1
    return codes


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """key_runs by sorting the keys themselves."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    release(keys)
    same = np.zeros(len(keys), dtype=bool)
    np.equal(ordered[1:], ordered[:-1], out=same[1:])
    return order, same


def same_key_edges(keys: Sequence | np.ndarray) -> np.ndarray:
    """Edges joining every item to the first item with an equal key (a star per key), shape (k, 2), in item order.

    Keys are compared as one numpy array (strings, bytes or numbers), so a million keys cost one sort, not a dict.
    """
    keys = np.asarray(keys)
    if not len(keys):
        return np.empty((0, 2), dtype=np.int64)
    return run_edges(*key_runs(keys))


def run_edges(order: np.ndarray, same: np.ndarray) -> np.ndarray:
    """same_key_edges from a stable order of the keys and its runs of equal keys (see `key_runs`),
    in 4-byte integers where the items fit."""
    index = np.int32 if len(order) < 2**31 else np.int64
    members = np.flatnonzero(same | np.r_[same[1:], False])  # in runs of two or more: the only items with edges
    order, same = order[members].astype(index), same[members]
    del members
    # each run's first item is its smallest (the order is stable)
    start = np.where(same, 0, np.arange(len(order), dtype=index))
    np.maximum.accumulate(start, out=start)
    head = order[start[same]]
    items = order[same]
    del order, same, start
    by_item = np.argsort(items, kind="stable")
    edges = np.empty((len(items), 2), dtype=index)
    edges[:, 0], edges[:, 1] = head[by_item], items[by_item]
    return edges
