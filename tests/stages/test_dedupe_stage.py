"""`anigan dedupe` on synthetic face folders: planted copies grouped, nothing else merged, bad files reported."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from anigan.cli import cli
from anigan.errors import UserError
from anigan.files import read_jsonl, write_jsonl
from anigan.params import load_params
from preprocess.dedupe import hashing
from preprocess.dedupe.stage import run_dedupe
from tests.faces_folder import Face, crop, crop_bytes, drawing, image_id_for, pad_records, planted_set, traced_peak, write_faces


def params_for(root, **overrides):
    paths = {f"paths.{k}": str(root / k) for k in ("raw", "faces", "dedup", "dataset")}
    return load_params(None, {**paths, "dedupe.workers": 1, **overrides})


def manifest(root):
    return {r["face_id"]: r for r in read_jsonl(root / "dedup" / "manifest.jsonl")}


@pytest.fixture
def planted(tmp_path):
    faces, copy_of = planted_set(40, seed=1)
    write_faces(tmp_path, faces)
    return tmp_path, faces, copy_of


def test_every_planted_copy_joins_its_original_and_nothing_else_merges(planted):
    root, faces, copy_of = planted
    summary = run_dedupe(params_for(root))
    rows = manifest(root)
    assert len(rows) == len(faces)
    originals = [f.face_id for f in faces if f.face_id not in copy_of]
    for copy, original in copy_of.items():
        assert rows[copy]["group_id"] == rows[original]["group_id"]
    assert len({rows[o]["group_id"] for o in originals}) == len(originals)  # no two drawings merged
    assert summary.kept == len(originals) and summary.removed == len(copy_of)
    assert summary.duplicate_groups == len(set(copy_of.values()))


def test_the_original_from_the_largest_source_is_kept_and_copies_say_how_they_differ(planted):
    root, faces, copy_of = planted
    run_dedupe(params_for(root))
    rows = manifest(root)
    for copy, original in copy_of.items():
        assert rows[original]["kept"] and rows[original]["dup_kind"] is None
        assert rows[original]["group_id"] == original  # a group is named by the face it keeps
        assert not rows[copy]["kept"]
        # the exact copy was saved with other PNG settings: other bytes, same pixels
        exact = rows[copy]["distance"] == 0 and crop_bytes(root, copy) != crop_bytes(root, original)
        assert rows[copy]["dup_kind"] in ("exact", "near")
        if rows[copy]["dup_kind"] == "exact":
            assert exact
    kinds = [rows[c]["dup_kind"] for c in copy_of]
    assert kinds.count("exact") == 3 and kinds.count("near") == len(copy_of) - 3


def test_summary_is_written_as_metrics(planted):
    root, faces, copy_of = planted
    run_dedupe(params_for(root))
    metrics = json.loads((root / "dedup" / "dedupe.json").read_text())
    assert metrics["faces"] == len(faces)
    assert metrics["removed_by_kind"] == {"exact": 3, "near": len(copy_of) - 3, "near_image": 0}
    assert metrics["kept"] + metrics["removed"] == len(faces)
    assert metrics["max_distance"] == load_params(None).dedupe.max_distance


def test_score_and_box_break_ties_when_sources_are_the_same_size(tmp_path):
    img = drawing(7)
    image_a, image_b = image_id_for("a"), image_id_for("b")
    low = Face(crop(img), image_a, score=0.6)
    high = Face(crop(img), image_b, score=0.9)
    write_faces(tmp_path, [low, high], raw_manifest=False)  # no raw manifest: sources all rank equal
    run_dedupe(params_for(tmp_path))
    rows = manifest(tmp_path)
    assert rows[high.face_id]["kept"] and not rows[low.face_id]["kept"]
    assert rows[low.face_id]["dup_kind"] == "exact"


def test_unusable_face_files_are_skipped_with_a_reason_and_the_rest_deduped(planted):
    root, faces, copy_of = planted
    broken = [f.face_id for f in faces if f.face_id not in copy_of and f.face_id not in copy_of.values()][:3]
    # the manifest names an empty member, a shard not on disk, a member cut short
    damage = {broken[0]: lambda r: {"bytes": 0}, broken[1]: lambda r: {"shard": "faces-999999.tar"}, broken[2]: lambda r: {"bytes": r["bytes"] // 3}}
    records = [r | damage[r["face_id"]](r) if r["face_id"] in damage else r for r in read_jsonl(root / "faces" / "manifest.jsonl")]
    write_jsonl(root / "faces" / "manifest.jsonl", records + [{"face_id": "../escape", "image_id": "x"}])
    summary = run_dedupe(params_for(root))
    assert summary.skipped == {"bad_face_id": 1, "empty_file": 1, "missing_file": 1, "truncated": 1}
    rejects = {r["face_id"]: r["reason"] for r in read_jsonl(root / "dedup" / "rejects.jsonl")}
    assert rejects == {broken[0]: "empty_file", broken[1]: "missing_file", broken[2]: "truncated", "../escape": "bad_face_id"}
    rows = manifest(root)
    assert set(rows) == {f.face_id for f in faces} - set(broken)
    for copy, original in copy_of.items():
        assert rows[copy]["group_id"] == rows[original]["group_id"]


def test_a_rerun_reuses_hashes_and_writes_the_same_files(planted):
    root, faces, _ = planted
    params = params_for(root)
    assert run_dedupe(params).hashes_reused == 0
    outputs = {p.name: p.read_bytes() for p in (root / "dedup").iterdir()}
    assert run_dedupe(params).hashes_reused == len(faces)
    assert {p.name: p.read_bytes() for p in (root / "dedup").iterdir()} == outputs


def test_damaged_hash_cache_records_are_hashed_again(planted):
    root, faces, _ = planted
    params = params_for(root)
    run_dedupe(params)
    expected = (root / "dedup" / "manifest.jsonl").read_bytes()
    cache = root / "dedup" / "hashes.jsonl"
    records = [json.loads(line) for line in cache.read_text().splitlines()]
    del records[0]["file_sha256"]
    records[1]["size"] = "wide"
    records[2]["phash"] = "not hex"
    cache.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert run_dedupe(params).hashes_reused == len(faces) - 3
    assert (root / "dedup" / "manifest.jsonl").read_bytes() == expected


def test_a_killed_run_resumes_from_its_hash_cache(planted, monkeypatch):
    root, faces, _ = planted
    params = params_for(root)
    run_dedupe(params)
    expected = (root / "dedup" / "manifest.jsonl").read_bytes()
    cache = root / "dedup" / "hashes.jsonl"
    lines = cache.read_text().splitlines(keepends=True)
    cache.write_text("".join(lines[:20]) + lines[20][:15])  # killed mid-append: a torn last line
    (root / "dedup" / "manifest.jsonl").unlink()
    assert run_dedupe(params).hashes_reused == 20
    assert (root / "dedup" / "manifest.jsonl").read_bytes() == expected


def test_worker_processes_give_the_same_result_as_one(planted, monkeypatch):
    root, _, _ = planted
    run_dedupe(params_for(root, **{"dedupe.workers": 1}))
    one = (root / "dedup" / "manifest.jsonl").read_bytes()
    (root / "dedup" / "hashes.jsonl").unlink()
    monkeypatch.setattr(hashing, "BATCH", 16)  # several batches, so the pool is really used
    run_dedupe(params_for(root, **{"dedupe.workers": 2}))
    assert (root / "dedup" / "manifest.jsonl").read_bytes() == one


def test_a_missing_faces_folder_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match=r"manifest.jsonl not found: run `anigan faces` first"):
        run_dedupe(params_for(tmp_path))


def test_the_command_prints_a_summary_and_takes_the_threshold(planted):
    root, faces, copy_of = planted
    overrides = [arg for k in ("raw", "faces", "dedup") for arg in ("-S", f"paths.{k}={root / k}")]
    result = CliRunner().invoke(cli, [*overrides, "dedupe", "--max-distance", "0", "--workers", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"{len(faces)} faces" in result.output
    assert json.loads((root / "dedup" / "dedupe.json").read_text())["max_distance"] == 0


def test_a_wide_threshold_merges_more_and_a_giant_group_is_reported(planted, caplog):
    root, faces, copy_of = planted
    narrow = run_dedupe(params_for(root, **{"dedupe.max_distance": 0}))
    assert "fell into one duplicate group" not in caplog.text
    wide = run_dedupe(params_for(root, **{"dedupe.max_distance": 20}))
    assert narrow.removed_by_kind["exact"] == 3 and narrow.removed < len(copy_of)
    assert wide.kept < len(faces) - len(copy_of)  # 20 of 64 bits merges different drawings too
    assert f"{wide.largest_group} of {len(faces)} faces fell into one duplicate group" in caplog.text


def test_decoded_pixels_decide_exactness_not_file_bytes(tmp_path):
    img = crop(drawing(9))
    faces = [Face(img, image_id_for("one"), png_level=0), Face(img, image_id_for("two"), png_level=9)]
    write_faces(tmp_path, faces)
    data = [crop_bytes(tmp_path, f.face_id) for f in faces]
    assert data[0] != data[1]
    decoded = [cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR) for d in data]
    assert (decoded[0] == decoded[1]).all()
    summary = run_dedupe(params_for(tmp_path, **{"dedupe.max_distance": 0}))
    assert summary.removed_by_kind == {"exact": 1, "near": 0, "near_image": 0}


@pytest.mark.slow
def test_the_manifests_are_read_as_a_stream_not_held(planted):
    root, _, _ = planted
    params = params_for(root)
    run_dedupe(params)
    expected = {name: (root / "dedup" / name).read_bytes() for name in ("manifest.jsonl", "dedupe.json", "hashes.jsonl")}
    (root / "dedup" / "hashes.jsonl").unlink()  # every crop hashed again, inside the measurement
    size = pad_records(root / "faces" / "manifest.jsonl", 400_000) + pad_records(root / "raw" / "manifest.jsonl", 400_000)
    _, peak = traced_peak(lambda: run_dedupe(params))
    assert peak < size / 8, f"peak {peak} bytes for {size} bytes of manifests"
    assert {name: (root / "dedup" / name).read_bytes() for name in expected} == expected


def test_columns_spilled_in_many_small_blocks_give_the_same_files_and_leave_no_spill(planted, monkeypatch):
    from preprocess import columns, spill

    root, _, _ = planted
    params = params_for(root)
    run_dedupe(params)
    names = ("manifest.jsonl", "rejects.jsonl", "dedupe.json", "hashes.jsonl")
    expected = {name: (root / "dedup" / name).read_bytes() for name in names}
    for module, name, value in ((columns, "CHUNK", 7), (spill, "BLOCK_ROWS", 5), (spill, "GATHER_ROWS", 3)):
        monkeypatch.setattr(module, name, value)
    run_dedupe(params)
    assert {name: (root / "dedup" / name).read_bytes() for name in names} == expected
    assert sorted(p.name for p in (root / "dedup").iterdir()) == sorted(names)


def test_a_failed_run_leaves_no_spill_and_the_old_manifest(planted, monkeypatch):
    from preprocess.dedupe import stage

    root, _, _ = planted
    run_dedupe(params_for(root))
    before = (root / "dedup" / "manifest.jsonl").read_bytes()

    def broken(*args):
        raise RuntimeError("representatives failed")

    monkeypatch.setattr(stage, "representatives", broken)
    with pytest.raises(RuntimeError):
        run_dedupe(params_for(root))
    assert not list((root / "dedup").glob(".spill-*"))
    assert (root / "dedup" / "manifest.jsonl").read_bytes() == before
