"""The faces manifest as dedupe needs it: one compact column per field, read in one streamed pass.

Rows are in face-ID order, one per distinct valid face ID (the first record of a repeated ID
wins). Records whose face ID is not a plain file name become rejects.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anigan.errors import UserError
from anigan.files import read_jsonl
from anigan.shards import Member
from preprocess.columns import ColumnBuilder, Vocabulary, encode, keep_rows
from preprocess.spill import Spill, gather_blocks, release

log = logging.getLogger(__name__)

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class FaceTable:
    """Per face, in face-ID order: IDs as bytes, where its crop lies, what ranks it as a representative."""

    face_id: np.ndarray  # 'S'
    image_id: np.ndarray  # 'S'; b"" when the record has none (has_image False)
    has_image: np.ndarray  # bool: image_id is a string
    shard: np.ndarray  # int32 code into shards, -1: the record names no member
    offset: np.ndarray  # int64
    size: np.ndarray  # int64, bytes of the member
    content_id: np.ndarray  # 'S': the crop's file_sha256, the key of its cached hashes
    box: np.ndarray  # float64 (N, 4) [x, y, w, h]; box_ok False when the record's box is not four numbers
    box_ok: np.ndarray
    box_area: np.ndarray  # int64, as the representative rank reads it
    score: np.ndarray  # float64
    shards: list[str]  # shard file names by code

    def __len__(self) -> int:
        return len(self.face_id)

    def keep(self, rows: np.ndarray, spill: Spill | None = None) -> None:
        """Restrict the table to `rows` (in that order), column by column (spilled ones into `spill`)."""
        keep_rows(vars(self), rows, spill)

    def member(self, i: int) -> Member | None:
        code = int(self.shard[i])
        return None if code < 0 else Member(self.shards[code], int(self.offset[i]), int(self.size[i]))


def box_area(box: Any) -> int:
    """w x h of a record's box in whole pixels; 0 when it has none or it is not numbers."""
    box = box or [0, 0, 0, 0]
    try:
        return int(box[2]) * int(box[3])
    except (IndexError, KeyError, TypeError, ValueError):
        return 0


def box_floats(box: Any) -> tuple[float, float, float, float] | None:
    """The box as four floats, or None when it is not four numbers."""
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        return None
    return x, y, w, h


def read_face_table(faces_dir: Path, spill: Spill | None = None) -> tuple[FaceTable, list[dict]]:
    """The faces manifest as a FaceTable, and the records refused for their face ID; with `spill`, its columns are spilled."""
    manifest = faces_dir / "manifest.jsonl"
    if not manifest.exists():
        raise UserError(f"{manifest} not found: run `anigan faces` first")
    columns = ColumnBuilder(
        {
            "face_id": "S", "image_id": "S", "has_image": bool, "shard": np.int32, "offset": np.int64, "size": np.int64,
            "content_id": "S", "box": (np.float64, 4), "box_ok": bool, "box_area": np.int64, "score": np.float64,
        },
        spill,
    )
    shards = Vocabulary()
    rejects: list[dict] = []
    for record in read_jsonl(manifest):
        fid = record.get("face_id")
        if not isinstance(fid, str) or not SAFE_ID.match(fid):
            rejects.append({"face_id": fid, "reason": "bad_face_id", "detail": "face_id missing or not a plain file name"})
            continue
        image_id, member, box, score = record.get("image_id"), Member.of(record), box_floats(record.get("box")), record.get("score")
        columns.add(
            face_id=encode(fid),
            image_id=encode(image_id) if isinstance(image_id, str) else b"",
            has_image=isinstance(image_id, str),
            shard=-1 if member is None else shards.code(member.shard),
            offset=0 if member is None else member.offset,
            size=0 if member is None else member.bytes,
            content_id=encode(str(record.get("file_sha256") or "")),
            box=box or (0.0, 0.0, 0.0, 0.0),
            box_ok=box is not None,
            box_area=box_area(record.get("box")),
            score=float(score) if isinstance(score, (int, float)) else 0.0,
        )
    table = FaceTable(**columns.arrays(), shards=shards.values)
    del columns
    # the first record of each face ID, in face-ID order (a stable sort puts it first among its repeats)
    order = np.argsort(table.face_id, kind="stable")
    release(table.face_id)
    repeat = np.zeros(len(order), dtype=bool)
    for rows in gather_blocks(len(order)):  # neighbours compared a block at a time: no copy of the IDs is held
        lo = max(rows.start, 1)
        repeat[lo : rows.stop] = table.face_id[order[lo : rows.stop]] == table.face_id[order[lo - 1 : rows.stop - 1]]
        release(table.face_id)
    for k in np.flatnonzero(repeat[1:] & ~repeat[:-1]).tolist():
        log.warning("face %s is listed more than once in %s; using the first record", table.face_id[order[k + 1]].decode(), manifest)
    table.keep(order[~repeat], spill)
    return table, rejects
