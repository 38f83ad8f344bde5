"""Grouping as dedupe and split use it: runs of equal keys, codes and edges from them, components over chunks of edges."""

from __future__ import annotations

import numpy as np
import pytest

from preprocess import groups
from preprocess.columns import column_hashes
from preprocess.groups import components, dense_codes, key_runs, same_key_edges
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


def assert_runs(keys: list, order: np.ndarray, same: np.ndarray) -> None:
    """Equal keys next to each other in item order, `same` true exactly where the key repeats the one before."""
    ordered = [keys[i] for i in order.tolist()]
    assert sorted(order.tolist()) == list(range(len(keys)))
    assert same.tolist() == [k > 0 and ordered[k] == ordered[k - 1] for k in range(len(keys))]
    assert len(set(ordered)) == len(keys) - int(same.sum())  # each key in one run
    assert all(order[k] > order[k - 1] for k in np.flatnonzero(same))


@pytest.mark.parametrize("hashes", ["real", "all equal", "three values"])
def test_key_runs_group_equal_keys_exactly_even_when_hashes_clash(tmp_path, monkeypatch, hashes):
    monkeypatch.setattr(groups, "CHECK_ROWS", 2)
    keys = tied_digests(120, 5)
    values = keys.tolist()
    # stand-in hashes keep the one promise real ones make, equal for equal keys, and clash a lot
    given = {"real": None, "all equal": np.zeros(len(keys), np.uint64), "three values": np.array([sum(v) % 3 for v in values], np.uint64)}[hashes]
    with Spill(tmp_path) as spill:
        assert_runs(values, *key_runs(spill.save(keys), given))


def test_dense_codes_are_equal_exactly_for_equal_keys_in_any_kind_of_column(tmp_path):
    rng = np.random.default_rng(1)
    values = [f"id-{k}" for k in rng.integers(0, 25, size=80)]
    with Spill(tmp_path) as spill:
        for column in (np.array(values), np.array(values, dtype="S"), spill.save(np.array(values, dtype="S")), rng.integers(0, 9, 80)):
            codes = dense_codes(column)
            listed = column.tolist()
            assert len(set(zip(codes.tolist(), listed, strict=True))) == len(set(codes.tolist())) == len(set(listed))
            assert sorted(set(codes.tolist())) == list(range(len(set(listed))))


def test_column_hashes_are_equal_for_equal_values_spilled_or_not(tmp_path):
    values = np.array([b"a", b"bb", b"a", b"", b"bb", b"c" * 30], dtype="S")
    with Spill(tmp_path) as spill:
        hashes = column_hashes(spill.save(values))
    assert hashes[0] == hashes[2] and hashes[1] == hashes[4]
    assert len(set(hashes.tolist())) == 4
    assert np.array_equal(hashes, column_hashes(values))


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
