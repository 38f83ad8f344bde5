"""`anigan dedupe` on faces of the demo booru, planted near duplicates included: cut at the ground-truth boxes, and found by the real detector.

Each face of a planted copy (re-encoded JPEG, resized to 75 %, shifted a few pixels) must land in
the group of the same face of the post it copies, and no two different drawings may share a
group, at the default thresholds.
"""

from collections import defaultdict

import pytest

from anigan.files import read_jsonl, write_jsonl
from anigan.ids import face_id
from anigan.params import load_params
from preprocess.faces.crop import cut_square, square_crop
from preprocess.dedupe.stage import run_dedupe
from preprocess.boxes import match_boxes
from anigan.images import png_bytes
from preprocess.faces.stage import run_faces
from preprocess.split.stage import run_split
from anigan.ids import sha256_hex
from anigan.shards import ShardWriter
from preprocess.imageio import ImageRejected, load_rgb, read_encoded
from tests.conftest import write_demo_raw_folder

SEEDS = range(6)
POSTS = 45  # enough for every planted kind (the demo plants each once from 40 posts)


def faces_from_ground_truth(raw, faces_dir, params):
    """Cut every ground-truth face box of the raw folder's images like the faces stage cuts a detection.

    Faces below `faces.min_face_size` are left out, as the faces stage rejects them.
    """
    fp = params.faces
    places = {r["image_id"]: r for r in read_jsonl(raw / "manifest.jsonl")}
    records, identity = [], {}
    writer = ShardWriter(faces_dir / "shards", "faces", 16)
    for truth in read_jsonl(raw / "ground_truth.jsonl"):
        try:
            image = load_rgb(read_encoded(raw / "shards", places.get(truth["image_id"], {}), truth["image_id"]), fp.max_pixels)
        except ImageRejected:
            continue  # the demo's broken files
        for k, face in enumerate(truth["faces"]):
            if min(face["box"][2:]) < fp.min_face_size:
                continue
            crop = square_crop(face["box"], fp.margin, image.size, fp.border)
            fid = face_id(truth["image_id"], crop)
            data = png_bytes(cut_square(image, crop, fp.size))
            records.append(
                {"face_id": fid, "image_id": truth["image_id"], "box": face["box"], "crop": list(crop), "score": 1.0,
                 "detector": "ground_truth", "hair_color": face["hair_color"], "eye_color": face["eye_color"],
                 **writer.add(f"{fid}.png", data).fields(), "file_sha256": sha256_hex(data)}
            )
            # which drawing this is: a planted copy shows the same faces, in the same order, as its original
            identity[fid] = (truth["duplicate_of"] or truth["post_id"], k, truth["kind"])
    writer.close()
    write_jsonl(faces_dir / "manifest.jsonl", records)
    return identity


@pytest.fixture(scope="module", params=SEEDS, ids=lambda s: f"seed{s}")
def demo_dedup(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"demo{request.param}")
    raw = write_demo_raw_folder(root / "raw", posts=POSTS, seed=request.param)
    params = load_params(None, {"paths.raw": str(raw), "paths.faces": str(root / "faces"), "paths.dedup": str(root / "dedup"), "dedupe.workers": 1})
    identity = faces_from_ground_truth(raw, root / "faces", params)
    run_dedupe(params)
    rows = {r["face_id"]: r for r in read_jsonl(root / "dedup" / "manifest.jsonl")}
    return identity, rows


def test_every_planted_near_duplicate_joins_its_original(demo_dedup):
    identity, rows = demo_dedup
    group_of = {identity[f][:2]: rows[f]["group_id"] for f in rows if not identity[f][2].startswith("near_duplicate")}
    copies = [f for f in rows if identity[f][2].startswith("near_duplicate")]
    assert {identity[f][2] for f in copies} == {"near_duplicate_jpeg", "near_duplicate_resized", "near_duplicate_shifted"}
    for f in copies:
        drawing = identity[f][:2]
        assert rows[f]["group_id"] == group_of[drawing], f"{identity[f][2]} copy of post {drawing[0]} face {drawing[1]}: {rows[f]['distance']} bits from its kept face"


def test_no_two_different_drawings_share_a_group(demo_dedup):
    identity, rows = demo_dedup
    drawings = defaultdict(set)
    for f, r in rows.items():
        drawings[r["group_id"]].add(identity[f][:2])
    assert all(len(d) == 1 for d in drawings.values())


# Through the real detector: animeface boxes a copy's faces a few pixels off the original's, so the
# crops hash far apart; the copies are caught through their source images instead.
DETECTED_SEEDS = range(3)


def faces_identified(raw, faces_dir):
    """face_id -> (drawing post, truth face index, kind) of each detected face, by IoU >= 0.5 with the ground truth.

    A detection that matches no true face is (drawing post, "false", kind): the same spot of the same
    picture in a copy may join it, nothing else may.
    """
    truth = {t["image_id"]: t for t in read_jsonl(raw / "ground_truth.jsonl")}
    by_image = defaultdict(list)
    for r in read_jsonl(faces_dir / "manifest.jsonl"):
        by_image[r["image_id"]].append(r)
    identity = {}
    for image_id, faces in by_image.items():
        t = truth[image_id]
        drawing = t["duplicate_of"] or t["post_id"]
        matched = dict(match_boxes([f["box"] for f in faces], [g["box"] for g in t["faces"]], 0.5))
        for i, f in enumerate(faces):
            identity[f["face_id"]] = (drawing, matched.get(i, "false"), t["kind"])
    return identity


@pytest.fixture(scope="module", params=DETECTED_SEEDS, ids=lambda s: f"seed{s}")
def detected_dedup(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"detected{request.param}")
    kinds = {"scene", "near_duplicate_jpeg", "near_duplicate_resized", "near_duplicate_shifted"}
    raw = write_demo_raw_folder(root / "raw", posts=POSTS, seed=request.param, kinds=kinds)
    paths = {"paths.raw": str(raw), "paths.faces": str(root / "faces"), "paths.dedup": str(root / "dedup")}
    params = load_params(None, {**paths, "faces.workers": 1, "dedupe.workers": 1})
    run_faces(params)
    summary = run_dedupe(params)
    rows = {r["face_id"]: r for r in read_jsonl(root / "dedup" / "manifest.jsonl")}
    return faces_identified(raw, root / "faces"), rows, summary, params


@pytest.mark.slow
def test_through_the_detector_planted_copies_join_their_original_by_source_image(detected_dedup):
    identity, rows, summary, _ = detected_dedup
    group_of = {identity[f][:2]: rows[f]["group_id"] for f in rows if identity[f][2] == "scene"}
    copies = [f for f in rows if identity[f][2].startswith("near_duplicate") and identity[f][1] != "false"]
    checked = [f for f in copies if identity[f][:2] in group_of]  # faces found in both the copy and its original
    assert len(checked) >= 2, "the demo copies must be detected to test anything"
    for f in checked:
        assert rows[f]["group_id"] == group_of[identity[f][:2]], f"{identity[f]}: {rows[f]['distance']} bits from its kept face"
    assert summary.removed_by_kind["near_image"] >= 1  # caught through the source images, not the face hashes


def test_through_the_detector_no_two_different_drawings_share_a_group(detected_dedup):
    identity, rows, _, _ = detected_dedup
    drawings = defaultdict(set)
    for f, r in rows.items():
        drawings[r["group_id"]].add(identity[f][:2])
    assert all(len(d) == 1 for d in drawings.values()), [sorted(map(str, d)) for d in drawings.values() if len(d) > 1]


def test_without_the_image_check_the_copies_found_by_the_detector_stay_apart(detected_dedup, tmp_path):
    identity, _, _, params = detected_dedup
    off = load_params(None, {"paths.raw": params.paths.raw, "paths.faces": params.paths.faces, "paths.dedup": str(tmp_path), "dedupe.workers": 1, "dedupe.image_max_distance": 0})
    summary = run_dedupe(off)
    rows = {r["face_id"]: r for r in read_jsonl(tmp_path / "manifest.jsonl")}
    assert summary.removed_by_kind["near_image"] == 0 and summary.images == {}
    assert all(r["dup_kind"] != "near_image" for r in rows.values())


def test_a_rerun_reuses_the_source_image_hashes_even_after_a_run_without_the_check(detected_dedup):
    _, rows, summary, params = detected_dedup
    again = run_dedupe(params)
    assert again.hashes_reused == len(rows) + summary.images["hashed"]
    assert again.metrics() == summary.metrics()
    off = load_params(None, {"paths.raw": params.paths.raw, "paths.faces": params.paths.faces, "paths.dedup": params.paths.dedup, "dedupe.workers": 1, "dedupe.image_max_distance": 0})
    run_dedupe(off)
    back_on = run_dedupe(params)
    assert back_on.hashes_reused == len(rows) + summary.images["hashed"]
    assert back_on.metrics() == summary.metrics()


def test_the_split_keeps_a_repost_and_its_original_on_one_side(detected_dedup, tmp_path):
    identity, rows, _, params = detected_dedup
    split_params = load_params(None, {"paths.faces": params.paths.faces, "paths.dedup": params.paths.dedup, "paths.dataset": str(tmp_path), "test_ratio": 0.5, "split.image_size": 32})
    run_split(split_params)
    side_of_image = {}
    for side in ("train", "test"):
        for r in read_jsonl(tmp_path / f"{side}.jsonl"):
            side_of_image[r["image_id"]] = side
    # every image whose faces joined another image's (by face or source image) takes that image's side
    images_of_group = defaultdict(set)
    for r in rows.values():
        images_of_group[r["group_id"]].add(r["image_id"])
    joined = [images for images in images_of_group.values() if len(images) > 1]
    assert any(any(rows[f]["dup_kind"] == "near_image" for f in rows if rows[f]["image_id"] in images) for images in joined)
    for images in joined:
        assert len({side_of_image[i] for i in images if i in side_of_image}) <= 1
