"""`anigan split` after `anigan dedupe` on synthetic face folders: packed arrays, index, card, no leaks."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from anigan.cli import cli
from anigan.errors import UserError
from anigan.files import read_jsonl
from anigan.params import load_params
from preprocess import columns, spill
from preprocess.dedupe.stage import run_dedupe
from preprocess.split.stage import run_split
from tests.faces_folder import Face, crop, drawing, image_id_for, pad_records, planted_set, traced_peak, write_faces

OUTPUTS = ("train.npy", "test.npy", "train.jsonl", "test.jsonl", "card.json")


def params_for(root, **overrides):
    paths = {f"paths.{k}": str(root / k) for k in ("raw", "faces", "dedup", "dataset")}
    return load_params(None, {**paths, "dedupe.workers": 1, "test_ratio": 0.3, **overrides})


def with_faces_from_shared_images(faces):
    """Add a second face cut from some original images (a two-person picture)."""
    extra = []
    for k, f in enumerate(faces[:12]):
        other = drawing(10_000 + k)
        extra.append(Face(crop(other), f.image_id, crop_box=(200, 0, 128, 128), source_size=f.source_size))
    return faces + extra


@pytest.fixture
def built(tmp_path):
    faces, copy_of = planted_set(40, seed=2)
    faces = with_faces_from_shared_images(faces)
    write_faces(tmp_path, faces)
    params = params_for(tmp_path)
    run_dedupe(params)
    return tmp_path, params, faces, copy_of


def load(root, split):
    return np.load(root / "dataset" / f"{split}.npy", mmap_mode="r"), list(read_jsonl(root / "dataset" / f"{split}.jsonl"))


def test_kept_faces_are_packed_as_uint8_arrays_with_a_matching_index(built):
    root, params, faces, copy_of = built
    summary = run_split(params)
    kept = {r["face_id"] for r in read_jsonl(root / "dedup" / "manifest.jsonl") if r["kept"]}
    by_id = {f.face_id: f for f in faces}
    seen = set()
    for split in ("train", "test"):
        arr, index = load(root, split)
        assert arr.dtype == np.uint8 and arr.shape == (len(index), 64, 64, 3)
        assert summary.faces(split) == len(index)
        for row, record in zip(arr, index):
            expected = cv2.resize(by_id[record["face_id"]].pixels, (64, 64), interpolation=cv2.INTER_AREA)
            assert np.array_equal(row, expected)
            assert record["hair_color"] == by_id[record["face_id"]].hair_color
            assert set(record) >= {"face_id", "group_id", "hair_color", "eye_color"}
        seen |= {r["face_id"] for r in index}
    assert seen == kept  # every kept face once, no removed duplicate


def test_no_source_image_or_duplicate_group_spans_train_and_test(built):
    root, params, faces, copy_of = built
    run_split(params)
    rows = list(read_jsonl(root / "dedup" / "manifest.jsonl"))
    side = {r["face_id"]: split for split in ("train", "test") for r in load(root, split)[1]}
    image_of = {f.face_id: f.image_id for f in faces}
    sides_of_image, sides_of_group = {}, {}
    for r in rows:
        if r["face_id"] in side:
            sides_of_image.setdefault(image_of[r["face_id"]], set()).add(side[r["face_id"]])
            sides_of_group.setdefault(r["group_id"], set()).add(side[r["face_id"]])
    assert all(len(s) == 1 for s in sides_of_image.values())
    assert all(len(s) == 1 for s in sides_of_group.values())
    assert {"train", "test"} == set(side.values())
    # the two-person pictures really put two kept faces on one side
    assert any(len([f for f in faces if f.image_id == image_id and f.face_id in side]) == 2 for image_id in sides_of_image)


def test_the_card_counts_splits_and_colours_and_hashes_the_content(built):
    root, params, _, _ = built
    run_split(params)
    card = json.loads((root / "dataset" / "card.json").read_text())
    train, test = load(root, "train")[1], load(root, "test")[1]
    assert card["splits"]["train"]["faces"] == len(train) and card["splits"]["test"]["faces"] == len(test)
    assert card["faces"] == len(train) + len(test)
    assert card["realized_test_ratio"] == pytest.approx(len(test) / (len(train) + len(test)), abs=1e-6)
    assert sum(card["splits"]["train"]["hair_color"].values()) == len(train)
    assert card["splits"]["test"]["eye_color"] == dict(sorted({c: sum(r["eye_color"] == c for r in test) for c in {r["eye_color"] for r in test}}.items()))
    assert len(card["content_hash"]) == 64


def test_two_runs_write_identical_files(built):
    root, params, _, _ = built
    run_split(params)
    first = {name: (root / "dataset" / name).read_bytes() for name in OUTPUTS}
    run_split(params)
    assert {name: (root / "dataset" / name).read_bytes() for name in OUTPUTS} == first


def test_adding_images_leaves_every_existing_face_on_its_side(built):
    root, params, faces, _ = built
    run_split(params)
    before = {r["face_id"]: split for split in ("train", "test") for r in load(root, split)[1]}
    more, _ = planted_set(30, seed=3)
    write_faces(root, faces + more)
    run_dedupe(params)
    run_split(params)
    after = {r["face_id"]: split for split in ("train", "test") for r in load(root, split)[1]}
    assert len(after) > len(before)
    assert {f: after[f] for f in before} == before


def test_a_zero_test_ratio_writes_an_empty_but_valid_test_array(built):
    root, _, faces, copy_of = built
    card = run_split(params_for(root, test_ratio=0.0, **{"split.image_size": 32})).card
    arr, index = load(root, "test")
    assert arr.shape == (0, 32, 32, 3) and arr.dtype == np.uint8 and index == []
    assert card["splits"]["test"]["faces"] == 0 and card["realized_test_ratio"] == 0.0
    assert load(root, "train")[0].shape == (card["faces"], 32, 32, 3)


def test_the_salt_moves_faces_between_sides(built):
    root, params, _, _ = built
    plain = run_split(params).card["content_hash"]
    salted = run_split(params_for(root, **{"split.salt": "another draw"})).card["content_hash"]
    assert plain != salted


def test_a_face_file_broken_after_dedupe_is_skipped_and_rows_still_match(built):
    root, params, _, _ = built
    kept = [r["face_id"] for r in read_jsonl(root / "dedup" / "manifest.jsonl") if r["kept"]]
    # the crop's bytes replaced in its shard (a damaged copy): same length, not a PNG any more
    record = next(r for r in read_jsonl(root / "faces" / "manifest.jsonl") if r["face_id"] == kept[0])
    with open(root / "faces" / "shards" / record["shard"], "r+b") as f:
        f.seek(record["offset"])
        f.write(b"not a png".ljust(record["bytes"], b"\0"))
    card = run_split(params).card
    assert card["skipped"] == {"not_an_image": 1}
    for split in ("train", "test"):
        arr, index = load(root, split)
        assert len(arr) == len(index) and kept[0] not in {r["face_id"] for r in index}
    assert not list((root / "dataset").glob(".*"))  # no temporary files left behind


def test_a_stale_dedup_manifest_or_missing_inputs_are_clear_errors(built, tmp_path_factory):
    root, params, faces, _ = built
    write_faces(root, faces[5:])  # faces changed since dedupe ran
    with pytest.raises(UserError, match="run `anigan dedupe` again"):
        run_split(params)
    with pytest.raises(UserError, match="run `anigan faces` first"):
        run_split(params_for(tmp_path_factory.mktemp("empty")))


def test_the_command_prints_the_split_and_takes_the_ratio(built):
    root, _, _, _ = built
    overrides = [arg for k in ("raw", "faces", "dedup", "dataset") for arg in ("-S", f"paths.{k}={root / k}")]
    result = CliRunner().invoke(cli, [*overrides, "split", "--test-ratio", "0", "--image-size", "32"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "test 0 faces" in result.output
    assert json.loads((root / "dataset" / "card.json").read_text())["image_size"] == 32


def test_no_kept_faces_still_writes_a_valid_empty_dataset(tmp_path):
    write_faces(tmp_path, [])
    params = params_for(tmp_path)
    run_dedupe(params)
    card = run_split(params).card
    assert card["faces"] == 0
    assert load(tmp_path, "train")[0].shape == (0, 64, 64, 3)


def test_faces_without_a_source_image_id_are_their_own_source(tmp_path):
    faces = [Face(crop(drawing(k)), image_id_for(f"s{k}")) for k in range(6)]
    write_faces(tmp_path, faces)
    lines = [json.loads(x) for x in (tmp_path / "faces" / "manifest.jsonl").read_text().splitlines()]
    for r in lines:
        r["image_id"] = None
    (tmp_path / "faces" / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    params = params_for(tmp_path, test_ratio=0.5)
    run_dedupe(params)
    card = run_split(params).card
    assert card["faces"] == 6


@pytest.mark.slow
def test_the_manifests_are_read_as_a_stream_not_held(built):
    root, params, _, _ = built
    run_split(params)
    expected = {name: (root / "dataset" / name).read_bytes() for name in OUTPUTS}
    size = pad_records(root / "faces" / "manifest.jsonl", 400_000) + pad_records(root / "dedup" / "manifest.jsonl", 400_000)
    _, peak = traced_peak(lambda: run_split(params))
    assert peak < size / 8, f"peak {peak} bytes for {size} bytes of manifests"
    assert {name: (root / "dataset" / name).read_bytes() for name in OUTPUTS} == expected


def test_columns_built_in_chunks_of_any_size_give_the_same_files(built, monkeypatch):
    root, params, _, _ = built
    run_split(params)
    folders = ("dedup", "dataset")
    expected = {p: p.read_bytes() for folder in folders for p in (root / folder).iterdir()}
    monkeypatch.setattr(columns, "CHUNK", 3)  # every manifest and the hash cache cross many chunk boundaries
    monkeypatch.setattr(spill, "BLOCK_ROWS", 5)  # spilled columns: read in many blocks, gathered a few rows at a time
    monkeypatch.setattr(spill, "GATHER_ROWS", 2)
    run_dedupe(params)
    run_split(params)
    assert {p: p.read_bytes() for folder in folders for p in (root / folder).iterdir()} == expected


def test_a_failed_split_leaves_no_spill_and_the_old_files(built, monkeypatch):
    from preprocess.split import stage

    root, params, _, _ = built
    run_split(params)
    expected = {name: (root / "dataset" / name).read_bytes() for name in OUTPUTS}

    def broken(*args, **kwargs):
        raise RuntimeError("packing failed")

    monkeypatch.setattr(stage, "pack_faces", broken)
    with pytest.raises(RuntimeError):
        run_split(params)
    assert sorted(p.name for p in (root / "dataset").iterdir()) == sorted(OUTPUTS)
    assert {name: (root / "dataset" / name).read_bytes() for name in OUTPUTS} == expected
