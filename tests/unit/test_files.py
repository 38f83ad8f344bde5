"""Atomic writes and JSON Lines manifests (anigan/files.py): nothing half-written survives a failure or a kill."""

import os
import stat
import threading

import pytest

from anigan.errors import UserError
from anigan.files import append_jsonl, atomic_write_bytes, read_json, read_jsonl, write_json, write_jsonl


def test_atomic_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(target.parent) == ["out.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "card.json"
    write_json(target, {"faces": 1})
    with pytest.raises(TypeError):
        write_json(target, {"faces": object()})
    assert read_json(target) == {"faces": 1}
    assert os.listdir(tmp_path) == ["card.json"]


def test_written_files_get_the_umask_permissions_not_the_temporary_owner_only_ones(tmp_path):
    old = os.umask(0o022)
    os.umask(old)
    atomic_write_bytes(tmp_path / "a.png", b"x")
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o666 & ~old


def test_a_torn_last_line_is_skipped_on_read_and_cut_off_by_the_next_append(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    write_jsonl(manifest, [{"id": 1}, {"id": 2}])
    with open(manifest, "a", encoding="utf-8") as f:
        f.write('{"id": 3, "half')  # a writer killed mid-line
    assert [r["id"] for r in read_jsonl(manifest)] == [1, 2]

    assert append_jsonl(manifest, [{"id": 3}, {"id": 4}]) == 2
    assert [r["id"] for r in read_jsonl(manifest)] == [1, 2, 3, 4]
    assert manifest.read_text().endswith('{"id":4}\n')


def test_a_file_holding_only_a_torn_line_starts_over_on_append(tmp_path):
    manifest = tmp_path / "state.jsonl"
    manifest.write_bytes(b'{"torn": ' + b"x" * 70000)  # longer than one read-back chunk
    append_jsonl(manifest, [{"id": 1}])
    assert list(read_jsonl(manifest)) == [{"id": 1}]


def test_appending_nothing_changes_nothing_and_a_missing_manifest_reads_empty(tmp_path):
    assert append_jsonl(tmp_path / "m.jsonl", []) == 0
    assert not (tmp_path / "m.jsonl").exists()
    assert list(read_jsonl(tmp_path / "m.jsonl", missing_ok=True)) == []


def test_a_damaged_line_inside_a_manifest_names_the_file_and_line(tmp_path):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text('{"id": 1}\n{"id": 2, oops\n[3]\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"train\.jsonl:2: not a JSON line"):
        list(read_jsonl(manifest))
    manifest.write_text('{"id": 1}\n[3]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"train\.jsonl:2: a JSON list, not an object"):
        list(read_jsonl(manifest))  # also a ValueError, for readers that recover from damage


def test_threads_appending_to_a_new_manifest_at_once_lose_no_line(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    barrier = threading.Barrier(8)

    def writer(k):
        barrier.wait()  # all start together, on an empty file
        for i in range(25):
            append_jsonl(manifest, [{"writer": k, "i": i}])

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = list(read_jsonl(manifest))
    assert sorted((r["writer"], r["i"]) for r in records) == [(k, i) for k in range(8) for i in range(25)]
