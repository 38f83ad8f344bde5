"""Joining related items into groups: connected components over edges that arrive in chunks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Edges are folded into the labels once this many are pending, so memory stays bounded however
# many pairs a search yields.
_FOLD_EVERY = 5_000_000


def label_edges(labels: np.ndarray) -> np.ndarray:
    """A grouping as edges, a star per group: item -> its label, shape (k, 2).

    Only items joined to another: an item that is its own label adds nothing, and most are, so
    no n-long array is made for them.
    """
    joined = np.nonzero(labels != np.arange(len(labels)))[0]
    return np.stack([joined, labels[joined]], axis=1)


def _fold(labels: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    n = len(labels)
    e = np.concatenate([label_edges(labels), *edges])  # the grouping so far, then the new edges
    graph = coo_matrix((np.ones(len(e), dtype=np.int8), (e[:, 0], e[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    # name each group by its smallest member: deterministic, independent of scipy's numbering
    smallest = np.full(comp.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, comp, np.arange(n))
    return smallest[comp]


def components(n: int, edge_chunks: Iterable[np.ndarray]) -> np.ndarray:
    """Group items 0..n-1 joined by (k, 2) edge arrays; returns each item's group as its smallest member's index."""
    labels = np.arange(n, dtype=np.int64)
    pending: list[np.ndarray] = []
    count = 0
    for chunk in edge_chunks:
        chunk = np.asarray(chunk, dtype=np.int64).reshape(-1, 2)
        if not len(chunk):
            continue
        pending.append(chunk)
        count += len(chunk)
        if count >= _FOLD_EVERY:
            labels, pending, count = _fold(labels, pending), [], 0
    return _fold(labels, pending) if pending and n else labels


def same_key_edges(keys: Sequence | np.ndarray) -> np.ndarray:
    """Edges joining every item to the first item with an equal key (a star per key), shape (k, 2).

    Keys are compared as one numpy array (strings, bytes or numbers), so a million keys cost one sort, not a dict.
    """
    keys = np.asarray(keys)
    if not len(keys):
        return np.empty((0, 2), dtype=np.int64)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    head = first[inverse.reshape(-1)]
    items = np.nonzero(head != np.arange(len(keys)))[0]
    return np.stack([head[items], items], axis=1).astype(np.int64)
