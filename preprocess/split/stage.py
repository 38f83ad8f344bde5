"""`anigan split`: a stable, leak-free train/test split of the kept faces, packed for training.

Faces that must not be separated are joined first: all faces of one near-duplicate group and all
faces cut from one source image (and, transitively, everything these link). Each such unit gets
its side from a hash of its key (the smallest source image ID in it) and `split.salt`: a face is
in test when that hash, read as a number in [0, 1), is below `test_ratio`. The side depends on
nothing else, so rerunning gives the same split and adding images leaves every existing face where
it was, unless a new image joins two units or a unit whose key it replaces (a repost of an image
already there); then the whole unit takes one side, which is what keeps it leak-free.

Reads `<faces>/manifest.jsonl` and the crop shards it names, `<dedup>/manifest.jsonl`. Writes
`<dataset>/{train,test}.npy` (uint8 (N, H, W, 3) at `split.image_size`, memory-mappable),
`<dataset>/{train,test}.jsonl` (row -> face_id, group_id, image_id, hair_color, eye_color) and
`<dataset>/card.json` (counts, colour counts, content hash).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anigan.errors import UserError
from anigan.files import read_jsonl, write_json, write_jsonl
from anigan.ids import file_sha256, stable_fraction
from anigan.params import Params
from anigan.shards import Member
from preprocess.groups import components, same_key_edges
from preprocess.split.pack import pack_faces

log = logging.getLogger(__name__)

SPLITS = ("train", "test")


def split_keys(image_ids: Sequence[str], group_ids: Sequence[str]) -> list[str]:
    """Each face's split key: the smallest image ID among the faces it is linked to by image or group."""
    edges = np.concatenate([same_key_edges(image_ids), same_key_edges(group_ids)])
    labels = components(len(image_ids), [edges])
    key: dict[int, str] = {}
    for label, image_id in zip(labels.tolist(), image_ids):
        if label not in key or image_id < key[label]:
            key[label] = image_id
    return [key[label] for label in labels.tolist()]


def side_of(key: str, test_ratio: float, salt: str = "") -> str:
    """'test' or 'train' for a split key: a fixed function of the key, the salt and the ratio."""
    return "test" if stable_fraction(key, salt) < test_ratio else "train"


def assign_sides(image_ids: Sequence[str], group_ids: Sequence[str], test_ratio: float, salt: str = "") -> list[str]:
    """The side of each face, keeping every source image and every duplicate group on one side."""
    return [side_of(k, test_ratio, salt) for k in split_keys(image_ids, group_ids)]


@dataclass(frozen=True)
class SplitSummary:
    """What `anigan split` wrote; `card` is card.json."""

    card: dict[str, Any]
    output: str

    def faces(self, split: str) -> int:
        return self.card["splits"][split]["faces"]


def _load_inputs(params: Params) -> tuple[list[dict], dict[str, dict]]:
    dedup_manifest = Path(params.paths.dedup) / "manifest.jsonl"
    faces_manifest = Path(params.paths.faces) / "manifest.jsonl"
    for path, stage in ((faces_manifest, "faces"), (dedup_manifest, "dedupe")):
        if not path.exists():
            raise UserError(f"{path} not found: run `anigan {stage}` first")
    faces = {r["face_id"]: r for r in read_jsonl(faces_manifest) if isinstance(r.get("face_id"), str)}
    rows = list(read_jsonl(dedup_manifest))
    stale = [r["face_id"] for r in rows if r["face_id"] not in faces]
    if stale:
        raise UserError(f"{dedup_manifest} lists {len(stale)} faces that {faces_manifest} does not (e.g. {stale[0]}): run `anigan dedupe` again")
    return rows, faces


def run_split(params: Params, progress: Callable[[int, int], None] | None = None) -> SplitSummary:
    """Assign sides, pack each split's kept faces, write the index files and the dataset card."""
    p = params.split
    rows, faces = _load_inputs(params)
    # a face without a source image ID is its own source
    image_ids = [faces[r["face_id"]].get("image_id") or r["face_id"] for r in rows]
    sides = assign_sides(image_ids, [r["group_id"] for r in rows], p.test_ratio, p.salt)

    out = Path(params.paths.dataset)
    shards = Path(params.paths.faces) / "shards"
    kept = sorted(((r["face_id"], side, image_id, r) for r, side, image_id in zip(rows, sides, image_ids) if r["kept"]), key=lambda k: k[0])
    total = len(kept)
    done = 0
    card: dict[str, Any] = {"image_size": p.image_size, "test_ratio": p.test_ratio, "salt": p.salt, "splits": {}}
    skipped: Counter = Counter()
    for split in SPLITS:
        chosen = [k for k in kept if k[1] == split]
        result = pack_faces(
            [(fid, Member.of(faces[fid])) for fid, *_ in chosen],
            shards,
            p.image_size,
            out / f"{split}.npy",
            progress=(lambda i, base=done: progress(base + i, total)) if progress else None,
        )
        done += len(chosen)
        skipped.update(e.reason for _, e in result.skipped)
        index = []
        for i in result.rows:
            fid, _, image_id, row = chosen[i]
            face = faces[fid]
            index.append({"face_id": fid, "group_id": row["group_id"], "image_id": image_id, "hair_color": face.get("hair_color"), "eye_color": face.get("eye_color")})
        write_jsonl(out / f"{split}.jsonl", index)
        card["splits"][split] = {
            "faces": len(index),
            "source_images": len({r["image_id"] for r in index}),
            "hair_color": dict(sorted(Counter(r["hair_color"] or "unknown" for r in index).items())),
            "eye_color": dict(sorted(Counter(r["eye_color"] or "unknown" for r in index).items())),
            "pixels_sha256": result.pixels_sha256,
            "index_sha256": file_sha256(out / f"{split}.jsonl"),
        }
    n_train, n_test = (card["splits"][s]["faces"] for s in SPLITS)
    card["faces"] = n_train + n_test
    card["realized_test_ratio"] = round(n_test / card["faces"], 6) if card["faces"] else 0.0
    card["skipped"] = dict(sorted(skipped.items()))
    card["content_hash"] = hashlib.sha256(json.dumps(card["splits"], sort_keys=True).encode()).hexdigest()
    if not card["faces"]:
        log.warning("no kept faces: the dataset is empty")
    elif card["faces"] >= 20 and abs(card["realized_test_ratio"] - p.test_ratio) > 0.1:
        log.warning(
            "test share %.3f is far from test_ratio %s: a few large duplicate groups or source images decide it (see dedupe.json)",
            card["realized_test_ratio"], p.test_ratio,
        )
    write_json(out / "card.json", card)
    return SplitSummary(card, str(out))
