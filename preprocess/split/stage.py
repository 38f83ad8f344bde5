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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anigan.files import write_json, write_jsonl
from anigan.ids import file_sha256
from anigan.params import Params
from anigan.shards import Member
from preprocess.columns import decode, in_value_order
from preprocess.groups import dense_codes
from preprocess.spill import Spill, blocks, fixed_mmap_threshold, gather_blocks, release
from preprocess.split.pack import PackResult, pack_faces
from preprocess.split.sides import held_out
from preprocess.split.table import SplitTable, read_split_table

log = logging.getLogger(__name__)

SPLITS = ("train", "test")


@dataclass(frozen=True)
class SplitSummary:
    """What `anigan split` wrote; `card` is card.json."""

    card: dict[str, Any]
    output: str

    def faces(self, split: str) -> int:
        return self.card["splits"][split]["faces"]


def index_rows(table: SplitTable, rows: np.ndarray) -> Iterator[dict]:
    """The split's index, row i of its array: face_id, group_id, image_id and colours."""
    for block in gather_blocks(len(rows)):
        for i in rows[block].tolist():
            yield {
                "face_id": decode(table.face_id[i]),
                "group_id": decode(table.group_id[i]),
                "image_id": decode(table.image_id[i]),
                "hair_color": table.colors[table.hair[i]],
                "eye_color": table.colors[table.eyes[i]],
            }
        table.release()


def crops(table: SplitTable, rows: np.ndarray) -> Iterator[tuple[str, Member | None]]:
    """(face ID, crop place) of each row, for pack_faces."""
    for block in gather_blocks(len(rows)):
        for i in rows[block].tolist():
            yield decode(table.face_id[i]), table.member(i)
        table.release()


def color_counts(table: SplitTable, column: np.ndarray, rows: np.ndarray) -> dict[str, int]:
    """How many of `rows` have each colour word (no word: "unknown") in a colour column, sorted by word."""
    tally = np.zeros(len(table.colors), dtype=np.int64)
    for block in blocks(len(rows)):  # rows ascend when the dedup manifest is in face-ID order, as dedupe writes it
        tally += np.bincount(column[rows[block]], minlength=len(table.colors))
        release(column)
    counts: Counter = Counter()
    for code, count in enumerate(tally.tolist()):
        if count:
            counts[table.colors[code] or "unknown"] += count
    return dict(sorted(counts.items()))


def distinct_count(codes: np.ndarray, rows: np.ndarray) -> int:
    """How many distinct values codes[rows] holds (codes: small non-negative integers), a block at a time."""
    present = np.zeros(int(codes.max()) + 1 if len(codes) else 0, dtype=bool)
    for block in blocks(len(rows)):
        present[codes[rows[block]]] = True
    return int(present.sum())


def side_card(table: SplitTable, image_code: np.ndarray, rows: np.ndarray, packed: PackResult, index: Path) -> dict[str, Any]:
    return {
        "faces": len(rows),
        "source_images": distinct_count(image_code, rows),
        "hair_color": color_counts(table, table.hair, rows),
        "eye_color": color_counts(table, table.eyes, rows),
        "pixels_sha256": packed.pixels_sha256,
        "index_sha256": file_sha256(index),
    }


def run_split(params: Params, progress: Callable[[int, int], None] | None = None) -> SplitSummary:
    """Assign sides, pack each split's kept faces, write the index files and the dataset card."""
    p = params.split
    out = Path(params.paths.dataset)
    fixed_mmap_threshold()
    with Spill(out) as spill:
        table = read_split_table(Path(params.paths.faces) / "manifest.jsonl", Path(params.paths.dedup) / "manifest.jsonl", spill)
        image_code = dense_codes(table.image_id)  # the card counts source images by these
        in_test = held_out(table.image_id, table.group_id, p.test_ratio, p.salt, image_code)
        kept = in_value_order(table.face_id, np.flatnonzero(table.kept).astype(np.int32 if len(table.kept) < 2**31 else np.int64))  # rows in face-ID order
        table.release()
        return _pack_and_write(params, table, in_test, image_code, kept, progress)


def _pack_and_write(
    params: Params, table: SplitTable, in_test: np.ndarray, image_code: np.ndarray, kept: np.ndarray, progress: Callable[[int, int], None] | None
) -> SplitSummary:
    p = params.split
    out = Path(params.paths.dataset)
    shards = Path(params.paths.faces) / "shards"
    total = len(kept)
    done = 0
    card: dict[str, Any] = {"image_size": p.image_size, "test_ratio": p.test_ratio, "salt": p.salt, "splits": {}}
    skipped: Counter = Counter()
    for split in SPLITS:
        chosen = kept[in_test[kept] == (split == "test")]
        packed = pack_faces(
            crops(table, chosen),
            len(chosen),
            shards,
            p.image_size,
            out / f"{split}.npy",
            progress=(lambda i, base=done: progress(base + i, total)) if progress else None,
        )
        done += len(chosen)
        skipped.update(e.reason for _, e in packed.skipped)
        rows = chosen[packed.rows]
        write_jsonl(out / f"{split}.jsonl", index_rows(table, rows))
        card["splits"][split] = side_card(table, image_code, rows, packed, out / f"{split}.jsonl")
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
