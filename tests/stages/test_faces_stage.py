"""The faces stage on demo booru data: quality, outputs, stable IDs, incremental and resumed runs."""

from __future__ import annotations

import io
import json
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from anigan.cli import cli
from anigan.errors import UserError
from anigan.files import read_jsonl
from anigan.ids import face_id
from anigan.params import load_params
from anigan.shards import Member, ShardWriter, read_member
from preprocess.faces.stage import MANIFEST, REJECTS, SHEET, STATE, SUMMARY, run_faces
from tests.conftest import write_demo_raw_folder

REPO = Path(__file__).resolve().parents[2]
SHARED_CASCADE = REPO.parent / "shared" / "models" / "lbpcascade_animeface.xml"
MANIFEST_KEYS = {"face_id", "image_id", "box", "crop", "score", "detector", "hair_color", "eye_color", "colors_from", "shard", "offset", "bytes", "file_sha256", "transform", "aligned_by", "measures"}
PLACE = ("shard", "offset", "bytes")  # where a crop lies: depends on the order workers finished in


def params_for(raw: Path, out: Path, **faces):
    overrides = {"paths.raw": str(raw), "paths.faces": str(out), "faces.workers": 1}
    overrides.update({f"faces.{k}": v for k, v in faces.items()})
    return load_params(None, overrides)


def manifest(out: Path) -> list[dict]:
    return list(read_jsonl(out / MANIFEST))


def content(out: Path) -> list[dict]:
    """The manifest without where each crop lies in the shards."""
    return [{k: v for k, v in f.items() if k not in PLACE} for f in manifest(out)]


def crop_files(out: Path) -> dict[str, bytes]:
    """Every member of the crop shards, read as `tar` reads them; no name twice."""
    crops: dict[str, bytes] = {}
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                assert member.name not in crops, f"{member.name} is stored twice"
                crops[member.name] = tar.extractfile(member).read()
    return crops


def raw_image(raw: Path, image_id: str) -> bytes:
    record = next(r for r in read_jsonl(raw / "manifest.jsonl") if r["image_id"] == image_id)
    return read_member(raw / "shards", Member.of(record))


@pytest.fixture(scope="module")
def first_run(demo_raw_folder, tmp_path_factory):
    """One animeface run over the shared demo raw folder, with all cores (read-only for tests)."""
    out = tmp_path_factory.mktemp("faces") / "faces"
    summary = run_faces(params_for(demo_raw_folder, out, workers=0))
    return summary, out


SMALL = 12


@pytest.fixture
def small_raw(demo_raw_folder, tmp_path) -> Path:
    """A private raw folder with the first SMALL images of the demo one (faster runs; a test may change it)."""
    rows = list(read_jsonl(demo_raw_folder / "manifest.jsonl"))[:SMALL]
    ids = {r["image_id"] for r in rows}
    raw = tmp_path / "raw"
    shards = {r["shard"] for r in rows}
    (raw / "shards").mkdir(parents=True)
    for name in shards:
        shutil.copyfile(demo_raw_folder / "shards" / name, raw / "shards" / name)
    (raw / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    truth = [t for t in read_jsonl(demo_raw_folder / "ground_truth.jsonl") if t["image_id"] in ids]
    (raw / "ground_truth.jsonl").write_text("".join(json.dumps(t) + "\n" for t in truth))
    return raw


def test_animeface_finds_the_demo_faces_of_64_px_and_more(first_run):
    summary, out = first_run
    quality = summary.quality["animeface"]
    big = quality["ge64px"]
    assert big["truth_faces"] >= 20, "the demo data must hold enough big faces to measure"
    assert big["recall"] >= 0.8 and big["precision"] >= 0.9, big
    # the metrics DVC tracks say the same
    saved = json.loads((out / SUMMARY).read_text())["quality"]["animeface"]["ge64px"]
    assert saved["recall"] == big["recall"] and saved["precision"] == big["precision"]


def test_outputs_follow_the_data_contract(first_run):
    summary, out = first_run
    faces = manifest(out)
    assert summary.faces == len(faces) > 0
    crops = crop_files(out)
    assert set(crops) == {f"{f['face_id']}.png" for f in faces}
    assert len({f["face_id"] for f in faces}) == len(faces)
    for f in faces[:10]:
        assert set(f) == MANIFEST_KEYS and f["detector"] == "animeface"
        assert f["face_id"] == face_id(f["image_id"], f["crop"]), "face IDs trace back to image and crop"
        x, y, w, h = f["crop"]
        assert w == h, "crops are square"
        data = read_member(out / "shards", Member.of(f))
        assert data == crops[f"{f['face_id']}.png"], "the manifest names each crop's place in its shard"
        with Image.open(io.BytesIO(data)) as im:
            assert im.mode == "RGB" and im.size == (128, 128)
    with Image.open(out / SHEET) as sheet:
        assert sheet.size[0] > 128 and sheet.size[1] > 128
    assert all(r["reason"] and r["detail"] and r["image_id"] for r in read_jsonl(out / REJECTS))


def test_single_face_images_take_their_colours_from_the_tags(first_run, demo_raw_folder):
    _, out = first_run
    tags = {r["image_id"]: set(r["tags"]) for r in read_jsonl(demo_raw_folder / "manifest.jsonl")}
    per_image: dict[str, list[dict]] = {}
    for f in manifest(out):
        per_image.setdefault(f["image_id"], []).append(f)
    singles = [fs[0] for fs in per_image.values() if len(fs) == 1 and fs[0]["colors_from"] == "tags"]
    assert singles, "some demo images have one face and colour tags"
    for f in singles:
        assert f"{f['hair_color']}_hair" in tags[f["image_id"]] and f"{f['eye_color']}_eyes" in tags[f["image_id"]]
    several = [f for fs in per_image.values() if len(fs) > 1 for f in fs]
    assert several and all(f["colors_from"] == "detector" and f["hair_color"] and f["eye_color"] for f in several)


@pytest.mark.slow
def test_ids_crops_and_manifest_are_identical_across_runs_and_worker_counts(first_run, demo_raw_folder, tmp_path):
    _, out = first_run
    again = tmp_path / "again"
    run_faces(params_for(demo_raw_folder, again, workers=1))
    assert content(again) == content(out)
    assert (again / REJECTS).read_bytes() == (out / REJECTS).read_bytes()
    assert crop_files(again) == crop_files(out)
    assert (again / SUMMARY).read_bytes() == (out / SUMMARY).read_bytes()
    assert (again / SHEET).read_bytes() == (out / SHEET).read_bytes()


def test_a_rerun_processes_nothing_new_and_changes_nothing(small_raw, tmp_path):
    out = tmp_path / "faces"
    first = run_faces(params_for(small_raw, out))
    before = (out / MANIFEST).read_bytes(), crop_files(out)
    second = run_faces(params_for(small_raw, out, workers=2))  # workers do not change crops
    assert first.processed == first.images and second.processed == 0 and second.reused == first.images
    assert ((out / MANIFEST).read_bytes(), crop_files(out)) == before


def test_new_and_removed_images_are_the_only_work_of_a_rerun(small_raw, tmp_path):
    out = tmp_path / "faces"
    lines = (small_raw / "manifest.jsonl").read_text().splitlines(keepends=True)
    run_faces(params_for(small_raw, out))
    faced = {f["image_id"] for f in manifest(out)}
    # drop one image that had faces, hold back the last one, then add it back
    dropped = next(json.loads(line)["image_id"] for line in lines if json.loads(line)["image_id"] in faced)
    kept_lines = [line for line in lines if json.loads(line)["image_id"] != dropped]
    (small_raw / "manifest.jsonl").write_text("".join(kept_lines[:-1]))
    shrunk = run_faces(params_for(small_raw, out))
    assert shrunk.processed == 0
    assert dropped not in {f["image_id"] for f in manifest(out)}
    assert not [n for n in crop_files(out) if n.startswith(dropped[:8])], "its crops are gone too"
    (small_raw / "manifest.jsonl").write_text("".join(kept_lines))
    grown = run_faces(params_for(small_raw, out))
    assert grown.processed == 1 and grown.reused == shrunk.images


def test_changing_a_detection_setting_reprocesses_everything(small_raw, tmp_path):
    out = tmp_path / "faces"
    run_faces(params_for(small_raw, out))
    old = {f["face_id"] for f in manifest(out)}
    changed = run_faces(params_for(small_raw, out, margin=0.4))
    assert changed.processed == changed.images and changed.reused == 0
    new = {f["face_id"] for f in manifest(out)}
    assert new and not (new & old), "a new margin gives new crops and so new face IDs"
    assert {n.removesuffix(".png") for n in crop_files(out)} == new, "old crops are removed"
    assert {r["image_id"] for r in read_jsonl(out / STATE)} == {r["image_id"] for r in read_jsonl(small_raw / "manifest.jsonl")}


KILL_AT_SEVEN = """
import os, signal, sys
from anigan.params import load_params
from preprocess.faces import stage
from preprocess.faces.stage import run_faces

stage.BATCH_IMAGES, stage.BATCH_SECONDS = 3, 1e9  # three images a batch: the kill lands inside a batch and a shard

def kill_at_seven(done, total):
    if done == 7:
        os.kill(os.getpid(), signal.SIGKILL)

overrides = {"paths.raw": sys.argv[1], "paths.faces": sys.argv[2], "faces.workers": 2, "faces.shard_size": 4}
run_faces(load_params(None, overrides), on_progress=kill_at_seven)
"""


@pytest.mark.slow
def test_a_killed_run_resumes_without_duplicates_or_lost_work(small_raw, tmp_path):
    reference = tmp_path / "reference"
    run_faces(params_for(small_raw, reference, shard_size=4))

    out = tmp_path / "faces"
    # SIGKILL the stage (and so its pool) right after its seventh image is done, its batch unsaved
    killed = subprocess.run([sys.executable, "-c", KILL_AT_SEVEN, str(small_raw), str(out)], cwd=REPO, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    saved = len(list(read_jsonl(out / STATE)))
    assert saved == 6 and not (out / MANIFEST).exists(), "two whole batches were saved, the third lost"
    # a kill can also tear the last state line and the shard being written
    with open(out / STATE, "a") as f:
        f.write('{"image_id": "torn')
    last = sorted((out / "shards").glob("*.tar"))[-1]
    with open(last, "ab") as f:
        f.write(b"half a member")

    resumed = run_faces(params_for(small_raw, out, shard_size=4))
    assert resumed.reused == saved and resumed.processed == resumed.images - saved
    assert content(out) == content(reference)
    assert crop_files(out) == crop_files(reference), "every crop once, none lost"
    assert all(read_member(out / "shards", Member.of(f)) == crop_files(out)[f"{f['face_id']}.png"] for f in manifest(out))
    assert len(list(read_jsonl(out / STATE))) == resumed.images, "state is compacted: one line per image"
    assert all(len(tarfile.open(p).getmembers()) <= 4 for p in (out / "shards").glob("*.tar"))


def test_border_modes_skip_pad_and_shift(small_raw, tmp_path):
    # a huge margin pushes most crops past the image edge
    # the cut-off filter is off: this is about what each border mode does with such crops
    runs = {mode: run_faces(params_for(small_raw, tmp_path / mode, margin=2.0, border=mode, max_cut_off=1)) for mode in ("skip", "pad", "shift")}
    assert runs["skip"].rejects.get("at_border", 0) > 0
    assert runs["pad"].faces == runs["shift"].faces == runs["skip"].faces + runs["skip"].rejects["at_border"]
    sizes = {Image.open(io.BytesIO(data)).size for data in crop_files(tmp_path / "pad").values()}
    assert sizes == {(128, 128)}
    for f in manifest(tmp_path / "shift"):
        x, y, w, h = f["crop"]
        assert x >= 0 and y >= 0  # shifted inside
    assert any(f["crop"][0] < 0 or f["crop"][1] < 0 for f in manifest(tmp_path / "pad"))


def test_broken_and_odd_files_are_rejected_or_read_never_crash(tmp_path):
    odd = {"truncated", "zero_byte", "html", "bomb", "grayscale", "rgba", "cmyk", "animated_gif", "md5_mismatch"}
    raw = write_demo_raw_folder(tmp_path / "raw", posts=48, seed=1, include_broken=True, kinds=odd)
    truth = {r["image_id"]: r for r in read_jsonl(raw / "ground_truth.jsonl")}
    summary = run_faces(params_for(raw, tmp_path / "faces", drop_monochrome=False))  # grey pictures must decode and be searched
    rejects = list(read_jsonl(tmp_path / "faces" / REJECTS))
    by_kind: dict[str, set[str]] = {}
    for r in rejects:
        by_kind.setdefault(truth[r["image_id"]]["kind"], set()).add(r["reason"])
    assert {"truncated", "decode_error"} & by_kind["truncated"]
    assert by_kind["zero_byte"] == {"empty_file"}
    assert by_kind["html"] == {"not_an_image"}
    assert by_kind["bomb"] == {"too_large"}
    found = {f["image_id"] for f in manifest(tmp_path / "faces")}
    for kind in ("grayscale", "rgba", "cmyk", "animated_gif"):
        ids = [i for i, t in truth.items() if t["kind"] == kind and t["faces"]]
        assert ids and all(i in found for i in ids), f"faces in {kind} images are found"
    assert summary.images == len(truth)


def _drawn_face(demo_raw_folder) -> tuple[Image.Image, dict]:
    """The single-face demo image with the biggest face, and its ground-truth record."""
    records = list(read_jsonl(demo_raw_folder / "ground_truth.jsonl"))
    best = max((r for r in records if len(r["faces"]) == 1 and r["kind"] == "scene"), key=lambda r: r["faces"][0]["box"][2])
    return Image.open(io.BytesIO(raw_image(demo_raw_folder, best["image_id"]))).convert("RGB"), best


def _raw_of(folder: Path, files: dict[str, bytes]) -> Path:
    """A raw folder holding the given files (name -> bytes; the image ID is the sha256 of the bytes)."""
    from anigan.ids import sha256_hex

    rows = []
    with ShardWriter(folder / "shards", "raw", 4) as writer:
        for name, data in files.items():
            image_id = sha256_hex(data)
            member = writer.add(f"{image_id}.{name.rsplit('.', 1)[1]}", data)
            rows.append({"image_id": image_id, "source": "test", "post_id": name, "tags": [], **member.fields()})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, fmt, **kwargs)
    return buf.getvalue()


def test_faces_are_found_in_every_odd_format(demo_raw_folder, tmp_path):
    from anigan.ids import sha256_hex

    drawn, _ = _drawn_face(demo_raw_folder)
    gray16 = Image.fromarray(np.asarray(drawn.convert("L"), np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned; displays upright after a 90 degree turn back
    frames = [drawn, Image.new("RGB", drawn.size, (0, 0, 0))]
    files = {
        "gray.png": _encode(drawn.convert("L"), "PNG"),
        "alpha.png": _encode(drawn.convert("RGBA"), "PNG"),
        "palette.png": _encode(drawn.convert("P", palette=Image.Palette.ADAPTIVE, colors=64), "PNG"),
        "cmyk.jpg": _encode(drawn.convert("CMYK"), "JPEG", quality=95),
        "deep.png": _encode(gray16, "PNG"),
        "turned.jpg": _encode(drawn.transpose(Image.Transpose.ROTATE_270), "JPEG", quality=95, exif=exif.tobytes()),
        "anim.gif": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
    }
    raw = _raw_of(tmp_path / "raw", files)
    assert Image.open(io.BytesIO(raw_image(raw, sha256_hex(files["gray.png"])))).size == drawn.size
    run_faces(params_for(raw, tmp_path / "faces", drop_monochrome=False))  # grey and deep pictures must decode and be searched
    names = {r["image_id"]: r["post_id"] for r in read_jsonl(raw / "manifest.jsonl")}
    found = {names[f["image_id"]] for f in manifest(tmp_path / "faces")}
    assert found == set(files), f"no face found in {sorted(set(files) - found)}"


@pytest.mark.skipif(not SHARED_CASCADE.is_file(), reason="shared lbpcascade_animeface.xml not present")
def test_cascade_backend_runs_with_the_shared_cascade_file(small_raw, tmp_path):
    out = tmp_path / "faces"
    summary = run_faces(params_for(small_raw, out, detector="cascade", cascade_path=str(SHARED_CASCADE), workers=2))
    assert summary.detector == "cascade" and summary.images > 0 and summary.processed == summary.images
    # faces.json scores the cascade's wider boxes in animeface's framing, so its hits count as hits
    q = summary.quality["cascade"]
    assert q["truth_faces"] >= 8 and q["recall"] >= 0.4 and q["precision"] >= 0.8, q
    for f in manifest(out):
        assert set(f) == MANIFEST_KEYS and f["detector"] == "cascade" and f["score"] == 1.0
        assert f["face_id"] == face_id(f["image_id"], f["crop"]) and f"{f['face_id']}.png" in crop_files(out)
    assert json.loads((out / SUMMARY).read_text())["detector"] == "cascade"
    again = run_faces(params_for(small_raw, out, detector="cascade", cascade_path=str(SHARED_CASCADE)))
    assert again.processed == 0


def test_a_missing_cascade_stops_before_any_work(demo_raw_folder, tmp_path):
    out = tmp_path / "faces"
    with pytest.raises(UserError, match=r"missing\.xml'?: no such file"):
        run_faces(params_for(demo_raw_folder, out, detector="cascade", cascade_path=str(tmp_path / "missing.xml")))
    assert not out.exists()


def test_a_missing_raw_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no raw manifest; run `anigan crawl` first"):
        run_faces(params_for(tmp_path / "raw", tmp_path / "faces"))


def test_cli_prints_counts_and_quality(small_raw, tmp_path):
    out = tmp_path / "faces"
    args = ["-S", f"paths.raw={small_raw}", "-S", f"paths.faces={out}", "faces", "--workers", "1"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "faces from" in result.output and "precision" in result.output and "recall" in result.output
    assert (out / MANIFEST).exists()


def test_detecting_on_a_shrunk_copy_keeps_boxes_and_crops_in_source_pixels(small_raw, tmp_path):
    shrunk = run_faces(params_for(small_raw, tmp_path / "faces", detect_max_side=320))
    q = shrunk.quality["animeface"]["ge64px"]
    assert q["true_positives"] > 0 and q["precision"] >= 0.9, "boxes scaled back still overlap the true faces"
    sizes = {r["image_id"]: (r["width"], r["height"]) for r in read_jsonl(small_raw / "manifest.jsonl")}
    assert any(max(sizes[f["image_id"]]) > 320 and f["box"][0] + f["box"][2] > 320 for f in manifest(tmp_path / "faces"))


def test_a_corrupt_raw_manifest_line_is_a_clear_error(small_raw, tmp_path):
    with open(small_raw / "manifest.jsonl", "a") as f:
        f.write("{not json}\n")
    with pytest.raises(UserError, match=rf"manifest\.jsonl: line {SMALL + 1} is not valid JSON"):
        run_faces(params_for(small_raw, tmp_path / "faces"))


def test_a_damaged_state_file_means_doing_everything_again(small_raw, tmp_path):
    out = tmp_path / "faces"
    run_faces(params_for(small_raw, out))
    before = content(out)
    lines = (out / STATE).read_text().splitlines(keepends=True)
    (out / STATE).write_text(lines[0] + "garbage\n" + "".join(lines[1:]))
    again = run_faces(params_for(small_raw, out))
    assert again.processed == again.images and content(out) == before


def test_an_image_whose_crops_went_missing_is_done_again(small_raw, tmp_path):
    out = tmp_path / "faces"
    run_faces(params_for(small_raw, out, shard_size=1000))
    before = crop_files(out)
    last = manifest(out)[-1]
    with open(out / "shards" / last["shard"], "r+b") as f:  # a partial checkout: the shard cut short
        f.truncate(last["offset"] + last["bytes"] - 1)
    again = run_faces(params_for(small_raw, out, shard_size=1000))
    assert again.processed == len({f["image_id"] for f in manifest(out) if f["shard"] == last["shard"] and f["offset"] >= last["offset"]})
    assert again.processed >= 1 and crop_files(out) == before
