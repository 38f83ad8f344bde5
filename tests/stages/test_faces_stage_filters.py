"""The faces stage's alignment and quality filters on demo posts planted with defects."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anigan.files import read_jsonl
from anigan.params import load_params
from anigan.shards import Member, read_member
from preprocess.faces import align
from preprocess.faces.stage import MANIFEST, REJECTS, SUMMARY, run_faces
from tests.conftest import write_demo_raw_folder

pytestmark = pytest.mark.slow  # a faces run over 120 planted posts, twice

FILTERS = ("monochrome", "cut_off", "blurry")  # the filters whose defects animeface still finds on the demo


def params_for(raw: Path, out: Path, **faces):
    overrides = {"paths.raw": str(raw), "paths.faces": str(out), "faces.workers": 1}
    overrides.update({f"faces.{k}": v for k, v in faces.items()})
    return load_params(None, overrides)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    return write_demo_raw_folder(tmp_path_factory.mktemp("planted") / "raw", posts=120, defects=0.5)


@pytest.fixture(scope="module")
def aligned_run(planted, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("aligned") / "faces"
    run_faces(params_for(planted, out, align=True))
    return out


def test_each_filter_drops_faces_of_its_planted_defect_and_faces_json_says_how_well(aligned_run):
    filters = json.loads((aligned_run / SUMMARY).read_text())["quality"]["animeface"]["filters"]
    reasons = {r["reason"] for r in read_jsonl(aligned_run / REJECTS)}
    for name in FILTERS:
        assert name in reasons, f"no face rejected as {name}"
        assert filters[name]["dropped"] >= 1
        assert filters[name]["precision"] >= 0.75, (name, filters[name])
        assert filters[name]["recall"] > 0, (name, filters[name])


def test_filters_off_keep_the_faces_they_would_drop(planted, aligned_run, tmp_path):
    out = tmp_path / "faces"
    run_faces(params_for(planted, out, align=True, max_upscale=0, min_sharpness=0, drop_monochrome=False, max_cut_off=1))
    assert not {r["reason"] for r in read_jsonl(out / REJECTS)} & set(FILTERS)
    assert len(list(read_jsonl(out / MANIFEST))) > len(list(read_jsonl(aligned_run / MANIFEST)))


def test_a_crop_is_rebuilt_from_its_source_image_and_recorded_transform(planted, aligned_run):
    faces = list(read_jsonl(aligned_run / MANIFEST))
    aligned = [f for f in faces if f["aligned_by"] != "none"]
    assert aligned, "alignment found no eyes on any demo face"
    sources = {r["image_id"]: r for r in read_jsonl(planted / "manifest.jsonl")}
    for face in aligned[:5]:
        with Image.open(io.BytesIO(read_member(planted / "shards", Member.of(sources[face["image_id"]])))) as source:
            rebuilt = np.asarray(align.cut(source.convert("RGB"), face["transform"], 128))
        with Image.open(io.BytesIO(read_member(aligned_run / "shards", Member.of(face)))) as saved:
            assert np.array_equal(np.asarray(saved.convert("RGB")), rebuilt)
