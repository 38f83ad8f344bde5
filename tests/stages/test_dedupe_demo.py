"""`anigan dedupe` on faces cut from the demo booru at its ground-truth boxes, planted near duplicates included.

Each face of a planted copy (re-encoded JPEG, resized to 75 %, shifted a few pixels) must land in
the group of the same face of the post it copies, and no two different drawings may share a
group, at the default threshold.
"""

from collections import defaultdict

import pytest

from anigan.files import read_jsonl, write_jsonl
from anigan.ids import face_id
from anigan.params import load_params
from preprocess.crop import cut_square, square_crop
from preprocess.dedupe import run_dedupe
from preprocess.face_image import png_bytes
from preprocess.imageio import ImageRejected, load_rgb
from tests.conftest import write_demo_raw_folder

SEEDS = range(6)
POSTS = 45  # enough for every planted kind (the demo plants each once from 40 posts)


def faces_from_ground_truth(raw, faces_dir, params):
    """Cut every ground-truth face box of the raw folder's images like the faces stage cuts a detection.

    Faces below `faces.min_face_size` are left out, as the faces stage rejects them.
    """
    fp = params.faces
    (faces_dir / "images").mkdir(parents=True, exist_ok=True)
    paths = {p.stem: p for p in (raw / "images").glob("*/*")}
    records, identity = [], {}
    for truth in read_jsonl(raw / "ground_truth.jsonl"):
        try:
            image = load_rgb(paths[truth["image_id"]], fp.max_pixels)
        except ImageRejected:
            continue  # the demo's broken files
        for k, face in enumerate(truth["faces"]):
            if min(face["box"][2:]) < fp.min_face_size:
                continue
            crop = square_crop(face["box"], fp.margin, image.size, fp.border)
            fid = face_id(truth["image_id"], crop)
            (faces_dir / "images" / f"{fid}.png").write_bytes(png_bytes(cut_square(image, crop, fp.size)))
            records.append(
                {"face_id": fid, "image_id": truth["image_id"], "box": face["box"], "crop": list(crop), "score": 1.0,
                 "detector": "ground_truth", "hair_color": face["hair_color"], "eye_color": face["eye_color"]}
            )
            # which drawing this is: a planted copy shows the same faces, in the same order, as its original
            identity[fid] = (truth["duplicate_of"] or truth["post_id"], k, truth["kind"])
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
