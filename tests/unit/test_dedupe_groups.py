"""Grouping as dedupe uses it: runs of equal keys, edges between them, components over chunks of edges."""

from __future__ import annotations

import numpy as np
import pytest

from preprocess import groups
from preprocess.groups import components, same_key_edges, sorted_runs
from preprocess.spill import Spill


def star_edges(keys) -> list[tuple[int, int]]:
    """Every item joined to the first item with its key, in item order: the reference."""
    first: dict = {}
    edges = []
    for i, key in enumerate(keys):
        if key in first:
            edges.append((first[key], i))
        else:
            first[key] = i
    return edges


def tied_digests(n: int, seed: int) -> np.ndarray:
    """32-byte keys, many sharing their first 8 bytes but not the rest, some wholly equal, some with trailing zero bytes."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    raw[:, :8] = rng.integers(0, 4, (n, 1), dtype=np.uint8)  # four prefixes only
    raw[:, 8:] %= 3
    raw[rng.random(n) < 0.3, 24:] = 0
    copies = np.nonzero(rng.random(n) < 0.3)[0]
    raw[copies] = raw[rng.integers(0, n, len(copies))]
    return raw.view("S32").reshape(-1)


@pytest.mark.parametrize("seed", range(4))
def test_same_key_edges_of_wide_bytes_keys_with_shared_prefixes_match_the_reference(seed):
    keys = tied_digests(300, seed)
    assert same_key_edges(keys).tolist() == [list(e) for e in star_edges(keys.tolist())]


def test_same_key_edges_of_a_spilled_column_match_those_in_memory(tmp_path):
    keys = tied_digests(500, 7)
    with Spill(tmp_path) as spill:
        assert np.array_equal(same_key_edges(spill.save(keys)), same_key_edges(keys.copy()))


def test_sorted_runs_order_equal_keys_together_in_item_order():
    keys = np.array([b"b" * 9 + b"x", b"a", b"b" * 9 + b"y", b"b" * 9 + b"x", b"a"], dtype="S10")
    order, same = sorted_runs(keys)
    assert order.tolist() == [1, 4, 0, 3, 2]
    assert same.tolist() == [False, True, False, True, False]


def test_numbers_and_strings_keep_their_edges():
    assert same_key_edges(np.array([5, 3, 5, 5, 3], dtype=np.uint64)).tolist() == [[0, 2], [0, 3], [1, 4]]
    assert same_key_edges(["a", "b", "a"]).tolist() == [[0, 2]]


def test_components_of_a_long_chain_in_any_order_name_the_smallest_member(monkeypatch):
    rng = np.random.default_rng(1)
    n = 5000
    chain = rng.permutation(n)  # one group whose links make chains thousands long
    edges = np.stack([chain[:-1], chain[1:]], axis=1)[rng.permutation(n - 1)]
    assert components(n + 3, [edges]).tolist() == [0] * n + [n, n + 1, n + 2]
    monkeypatch.setattr(groups, "_FOLD_EVERY", 7)  # folded into the labels in many pieces
    assert components(n + 3, np.array_split(edges, 600)).tolist() == [0] * n + [n, n + 1, n + 2]
