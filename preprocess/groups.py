"""Joining related items into groups: connected components over edges that arrive in chunks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from preprocess.spill import blocks, release

# Edges are folded into the labels once this many are pending, so memory stays bounded however
# many pairs a search yields.
_FOLD_EVERY = 1_000_000
PREFIX_BYTES = 8  # bytes keys are sorted by first: a uint64 each, not a copy of the keys


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


def sorted_runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A stable order of `keys` and, per position in it, whether the key equals the one before (runs of equal keys).

    Numbers are sorted as they are. A bytes ('S') key wider than PREFIX_BYTES is sorted by its
    first bytes, read a block at a time (a spilled column is never held whole), and only runs of
    equal first bytes are then told apart by their whole keys.
    """
    keys = np.asarray(keys)
    n = len(keys)
    if keys.dtype.kind != "S" or keys.dtype.itemsize <= PREFIX_BYTES:
        return _runs(keys)
    width = keys.dtype.itemsize
    prefix = np.empty(n, dtype=">u8")  # big-endian: the first byte counts most, as bytes sort
    for rows in blocks(n):
        raw = np.ascontiguousarray(keys[rows]).view(np.uint8).reshape(-1, width)[:, :PREFIX_BYTES]
        prefix[rows] = np.ascontiguousarray(raw).view(">u8").reshape(-1)
        release(keys)
    order, same = _runs(prefix.astype(np.uint64))
    del prefix
    tied = _run_members(same)  # positions whose first bytes another item shares: whole keys decide
    if len(tied):
        sub = np.sort(order[tied])
        sub_order, sub_same = _runs(np.asarray(keys[sub]))  # few keys, held for this
        release(keys)
        order[tied], same[tied] = sub[sub_order], sub_same
    return order, same


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sorted_runs by sorting the keys themselves."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    release(keys)
    same = np.zeros(len(keys), dtype=bool)
    np.equal(ordered[1:], ordered[:-1], out=same[1:])
    return order, same


def _run_members(same: np.ndarray) -> np.ndarray:
    """Positions in runs of two or more: those equal to the one before, and the first of each such run."""
    after = np.flatnonzero(same)
    return np.union1d(after, after - 1)


def same_key_edges(keys: Sequence | np.ndarray) -> np.ndarray:
    """Edges joining every item to the first item with an equal key (a star per key), shape (k, 2), in item order.

    Keys are compared as one numpy array (strings, bytes or numbers), so a million keys cost one sort, not a dict.
    """
    keys = np.asarray(keys)
    if not len(keys):
        return np.empty((0, 2), dtype=np.int64)
    return run_edges(*sorted_runs(keys))


def run_edges(order: np.ndarray, same: np.ndarray) -> np.ndarray:
    """same_key_edges from a stable order of the keys and its runs of equal keys (see `sorted_runs`)."""
    members = _run_members(same)  # positions in runs of two or more items: the only ones with edges
    order, same = order[members], same[members]
    # each run's first item is its smallest (the order is stable)
    head = order[np.maximum.accumulate(np.where(same, 0, np.arange(len(order))))][same]
    items = order[same]
    del order, same
    by_item = np.argsort(items, kind="stable")
    return np.stack([head[by_item], items[by_item]], axis=1).astype(np.int64)
