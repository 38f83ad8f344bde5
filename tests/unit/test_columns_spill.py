"""Spilled columns (preprocess/spill.py) give what the in-memory ones give, over many chunks, and leave no file behind."""

import os

import numpy as np
import pytest

from preprocess import columns, spill
from preprocess.columns import ColumnBuilder, dense_codes, distinct, in_value_order, keep_rows, lookup, lookup_column, value_hashes
from preprocess.spill import Spill, release


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks, blocks and gathers of a few rows, so a small set crosses many of each."""
    monkeypatch.setattr(columns, "CHUNK", 7)
    monkeypatch.setattr(spill, "BLOCK_ROWS", 5)
    monkeypatch.setattr(spill, "GATHER_ROWS", 3)


def records(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    # IDs grow longer part-way through: a later chunk is wider than the first
    return [
        {"face_id": f"f{i:03d}".encode() + (b"-long-suffix" if i > 40 else b""), "offset": int(rng.integers(0, 10**12)), "box": tuple(rng.random(4)), "ok": bool(i % 3)}
        for i in range(n)
    ]


def build(rows: list[dict], spilled: Spill | None) -> dict[str, np.ndarray]:
    builder = ColumnBuilder({"face_id": "S", "offset": np.int64, "box": (np.float64, 4), "ok": bool}, spilled)
    for record in rows:
        builder.add(**record)
    return builder.arrays()


def test_spilled_columns_equal_in_memory_ones_over_many_chunks(tmp_path, tiny_chunks):
    rows = records(60)
    expected = build(rows, None)
    with Spill(tmp_path) as spilled:
        got = build(rows, spilled)
        assert all(isinstance(got[name], np.memmap) for name in got)
        for name, column in expected.items():
            assert got[name].dtype == column.dtype and np.array_equal(got[name], column), name
        order = np.random.default_rng(1).permutation(60)[:45]
        kept = dict(got)
        keep_rows(kept, order, spilled)
        for name, column in expected.items():
            assert np.array_equal(kept[name], column[order]), name
        mask = expected["ok"]
        assert np.array_equal(distinct(got["face_id"], got["ok"]), np.unique(expected["face_id"][mask]))
        keys = np.unique(expected["face_id"][::2])
        for block_rows in (None, 2):
            assert np.array_equal(lookup_column(keys, got["face_id"], got["ok"], block_rows), np.where(mask, lookup(keys, expected["face_id"]), -1))
        release(*got.values())  # pages handed back: the data stays
        assert np.array_equal(got["offset"], expected["offset"])


def test_no_rows_spill_to_empty_columns(tmp_path):
    with Spill(tmp_path) as spilled:
        got = build([], spilled)
        assert all(len(column) == 0 for column in got.values())
        assert len(spilled.save(np.zeros(0, np.int64))) == 0


def test_the_spill_folder_goes_after_success_and_after_an_error(tmp_path):
    with Spill(tmp_path) as spilled:
        spilled.save(np.arange(10))
        root = spilled.root
        assert root.is_dir() and root.parent == tmp_path
    assert not root.exists()
    with pytest.raises(RuntimeError), Spill(tmp_path) as spilled:
        spilled.save(np.arange(10))
        raise RuntimeError("stage failed")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_runs_spill_folder_is_removed_by_the_next_and_a_live_ones_is_not(tmp_path):
    dead = os.fork()
    if not dead:
        os._exit(0)
    os.waitpid(dead, 0)
    (tmp_path / f".spill-{dead}-abc").mkdir()
    (tmp_path / f".spill-{os.getpid()}-live").mkdir()
    with Spill(tmp_path):
        pass
    assert [p.name for p in tmp_path.iterdir()] == [f".spill-{os.getpid()}-live"]


def same_partition(codes: np.ndarray, values: list) -> bool:
    """Whether equal codes fall exactly on equal values."""
    pairs = set(zip(codes.tolist(), values, strict=True))
    return len(pairs) == len(set(codes.tolist())) == len(set(values))


@pytest.mark.parametrize("hashes", ["real", "all equal", "three values"])
def test_dense_codes_are_equal_exactly_for_equal_values_even_when_hashes_clash(tmp_path, tiny_chunks, monkeypatch, hashes):
    monkeypatch.setattr(columns, "CHECK_ROWS", 2)
    rng = np.random.default_rng(1)
    values = [f"id-{k}".encode() for k in rng.integers(0, 25, size=80)]
    # stand-in hashes keep the one promise real ones make, equal for equal values, and clash a lot
    given = {"real": None, "all equal": np.zeros(80, np.uint64), "three values": np.array([sum(v) % 3 for v in values], np.uint64)}[hashes]
    with Spill(tmp_path) as spilled:
        column = spilled.save(np.array(values, dtype="S"))
        codes = dense_codes(column, given)
        assert same_partition(codes, values)
        assert sorted(set(codes.tolist())) == list(range(len(set(values))))
    as_text = dense_codes(np.array([v.decode() for v in values]))  # 'U' columns too
    assert same_partition(as_text, values)


def test_value_hashes_are_equal_for_equal_values_spilled_or_not(tmp_path, tiny_chunks):
    values = np.array([b"a", b"bb", b"a", b"", b"bb", b"c" * 30], dtype="S")
    with Spill(tmp_path) as spilled:
        hashes = value_hashes(spilled.save(values))
    assert hashes[0] == hashes[2] and hashes[1] == hashes[4]
    assert len(set(hashes.tolist())) == 4
    assert np.array_equal(hashes, value_hashes(values))


def test_rows_in_value_order_whether_the_column_is_sorted_or_not(tmp_path, tiny_chunks):
    rows = np.array([0, 2, 3, 5, 6, 9, 11])
    ordered = np.array([f"f{i:02d}".encode() for i in range(12)], dtype="S")
    shuffled = ordered[np.random.default_rng(2).permutation(12)]
    shuffled[3] = shuffled[9]  # a tie: kept in row order
    with Spill(tmp_path) as spilled:
        assert in_value_order(spilled.save(ordered), rows) is rows
        column = spilled.save(shuffled)
        assert np.array_equal(in_value_order(column, rows), rows[np.argsort(shuffled[rows], kind="stable")])
