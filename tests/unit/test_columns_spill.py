"""Spilled columns (preprocess/spill.py) give what the in-memory ones give, over many chunks, and leave no file behind."""

import os

import numpy as np
import pytest

from preprocess import columns, spill
from preprocess.columns import ColumnBuilder, distinct, in_value_order, keep_rows, lookup, lookup_column
from preprocess.spill import Spill, read_rows, release


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


def test_rows_in_value_order_whether_the_column_is_sorted_or_not(tmp_path, tiny_chunks):
    rows = np.array([0, 2, 3, 5, 6, 9, 11])
    ordered = np.array([f"f{i:02d}".encode() for i in range(12)], dtype="S")
    shuffled = ordered[np.random.default_rng(2).permutation(12)]
    shuffled[3] = shuffled[9]  # a tie: kept in row order
    with Spill(tmp_path) as spilled:
        assert in_value_order(spilled.save(ordered), rows) is rows
        column = spilled.save(shuffled)
        assert np.array_equal(in_value_order(column, rows), rows[np.argsort(shuffled[rows], kind="stable")])


def test_rows_read_from_a_spilled_columns_file_equal_those_read_through_its_map(tmp_path):
    values = np.array([f"v{i}".encode() for i in range(300)], dtype="S8")
    rows = np.random.default_rng(3).integers(0, 300, 50)
    with Spill(tmp_path) as spilled:
        column = spilled.save(values)
        written = spilled.zeros(300, np.int64)
        written[rows] = rows * 7  # still only in the page cache: a read from the file sees it
        for view in (column, np.asarray(column), column[10:], values):
            assert np.array_equal(read_rows(view, rows[rows < len(view)]), np.asarray(view)[rows[rows < len(view)]])
        assert np.array_equal(read_rows(written, rows), rows * 7)


def test_distinct_equals_numpy_unique_across_blocks(tiny_chunks):
    rng = np.random.default_rng(5)
    column = np.array([f"{v:x}".encode() for v in rng.integers(0, 20, 97)], dtype="S4")
    mask = rng.random(97) < 0.7
    for m in (None, mask):
        got, expected = distinct(column, m), np.unique(column if m is None else column[m])
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_lookup_in_spilled_keys_by_hash_equals_a_binary_search_also_when_hashes_collide(tmp_path, tiny_chunks, monkeypatch):
    rng = np.random.default_rng(6)
    keys = np.unique(np.array([f"{v:x}".encode() for v in rng.integers(0, 500, 60)] + [b"a", b"ab"], dtype="S6"))
    queries = np.array([f"{v:x}".encode() for v in rng.integers(0, 500, 80)] + [b"a", b"ab", b"", b"zz"], dtype="S9")  # wider than the keys
    with Spill(tmp_path) as sp:
        spilled = sp.save(keys)
        assert columns.HashedKeys.suits(spilled, queries)
        assert np.array_equal(lookup_column(spilled, queries), lookup(keys, queries))
        monkeypatch.setattr(columns, "key_hashes", lambda values: np.asarray([len(v) % 2 for v in values], dtype=np.uint64))  # many equal hashes
        assert np.array_equal(lookup_column(spilled, queries), lookup(keys, queries))
        repeated = sp.save(np.array([b"a", b"a", b"b", b"c", b"c"], dtype="S1"))
        assert lookup_column(repeated, np.array([b"c", b"a", b"d"], dtype="S1")).tolist() == [3, 0, -1]


def test_rows_taken_from_a_spilled_column_in_any_order_equal_those_of_the_array(tmp_path, monkeypatch):
    monkeypatch.setattr(columns, "TAKE_BLOCK", 11)
    monkeypatch.setattr(columns, "TAKE_READS", 4)
    rng = np.random.default_rng(7)
    boxes = rng.random((50, 4))
    ids = np.array([f"{v:x}".encode() for v in rng.integers(0, 10**6, 50)], dtype="S5")
    rows = np.concatenate([rng.permutation(50), rng.integers(0, 50, 17)])
    with Spill(tmp_path) as sp:
        for column in (boxes, ids):
            taken = columns.take_rows(sp.save(column), rows, sp)
            assert isinstance(taken, np.memmap) and np.array_equal(taken, column[rows])
        assert len(columns.take_rows(sp.save(ids), rows[:0], sp)) == 0
