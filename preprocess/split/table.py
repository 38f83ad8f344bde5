"""What split needs of the dedup and faces manifests, as compact columns read in one streamed pass each.

Rows follow the dedup manifest. From the faces manifest each face takes its source image ID (its
own face ID when it has none), where its crop lies and its colour words; the last record of a
face ID wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anigan.errors import UserError
from anigan.files import read_jsonl
from anigan.shards import Member
from preprocess.columns import ColumnBuilder, Vocabulary, chunked, encode, finder, last_of_each, take_rows
from preprocess.spill import BLOCK_ROWS, Spill, blocks, release


@dataclass
class SplitTable:
    """Per dedup manifest row: IDs as bytes, kept, crop place, colour codes into `colors`."""

    face_id: np.ndarray  # 'S'
    group_id: np.ndarray  # 'S'
    kept: np.ndarray  # bool
    image_id: np.ndarray  # 'S'
    shard: np.ndarray  # int32 code into shards, -1: no member named
    offset: np.ndarray
    size: np.ndarray
    hair: np.ndarray  # int32 code into colors
    eyes: np.ndarray
    shards: list[str]
    colors: list[Any]  # the colour values as the faces manifest has them (words, or null)

    def release(self) -> None:
        """Hand back the pages of spilled columns read so far."""
        release(*vars(self).values())

    def member(self, i: int) -> Member | None:
        code = int(self.shard[i])
        return None if code < 0 else Member(self.shards[code], int(self.offset[i]), int(self.size[i]))


def copy_column(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`target` (as long, at least as wide) filled with `source`, a block at a time; returned."""
    for rows in blocks(len(source)):
        target[rows] = source[rows]
        release(source, target)
    return target


def _dedup_columns(path: Path, spill: Spill | None) -> dict[str, np.ndarray]:
    columns = ColumnBuilder({"face_id": "S", "group_id": "S", "kept": bool}, spill)
    for record in read_jsonl(path):
        fid, gid = record.get("face_id"), record.get("group_id")
        if not isinstance(fid, str) or not isinstance(gid, str):
            raise UserError(f"{path}: a record without face_id and group_id strings ({str(record)[:120]}); run `anigan dedupe` again")
        columns.add(face_id=encode(fid), group_id=encode(gid), kept=bool(record.get("kept")))
    return columns.arrays()


def read_split_table(faces_manifest: Path, dedup_manifest: Path, spill: Spill | None = None) -> SplitTable:
    """The dedup manifest's faces with what the faces manifest says of them; a UserError when either is
    missing or the dedup manifest names a face the faces manifest does not (dedupe ran on other faces).

    With `spill`, every per-face column but `kept` is spilled, filled a chunk at a time."""
    for path, stage in ((faces_manifest, "faces"), (dedup_manifest, "dedupe")):
        if not path.exists():
            raise UserError(f"{path} not found: run `anigan {stage}` first")
    dedup = _dedup_columns(dedup_manifest, spill)
    n = len(dedup["face_id"])
    by_id = np.argsort(dedup["face_id"], kind="stable")
    release(dedup["face_id"])
    sorted_ids = take_rows(dedup["face_id"], by_id, spill)
    seen = np.zeros(n, bool)
    zeros = spill.zeros if spill else np.zeros
    # a face without a source image ID is its own source
    image_id = copy_column(dedup["face_id"], zeros(n, f"S{max(64, dedup['face_id'].dtype.itemsize)}"))
    shard, offset, size = zeros(n, np.int32), zeros(n, np.int64), zeros(n, np.int64)
    shard[:] = -1
    hair, eyes = zeros(n, np.int32), zeros(n, np.int32)
    release(shard)
    shards, colors = Vocabulary(), Vocabulary()
    # only the fields used travel in a chunk, never whole records (a faces record carries its measures)
    fields = (
        (r["face_id"], r.get("image_id"), Member.of(r), colors.code(r.get("hair_color")), colors.code(r.get("eye_color")))
        for r in read_jsonl(faces_manifest)
        if isinstance(r.get("face_id"), str)
    )
    find = finder(sorted_ids)
    for chunk in chunked(fields):
        found = find(np.array([encode(fid) for fid, *_ in chunk], dtype="S"))
        release(sorted_ids)
        positions = last_of_each(found)
        rows = by_id[found[positions]]
        order = np.argsort(rows)
        rows, positions = rows[order], positions[order]
        # The chunk's rows lie anywhere in the columns: they are written in row order, a block of
        # rows at a time with the pages handed back after each, so no chunk makes a column resident.
        for part in np.split(np.arange(len(rows)), np.searchsorted(rows, np.arange(BLOCK_ROWS, n, BLOCK_ROWS))):
            for k, i in zip(positions[part].tolist(), rows[part].tolist(), strict=True):
                _, source, member, hair[i], eyes[i] = chunk[k]
                seen[i] = True
                if isinstance(source, str) and source:
                    source_id = encode(source)
                    if len(source_id) > image_id.dtype.itemsize:  # an unusually long ID: widen rather than cut it
                        image_id = copy_column(image_id, zeros(n, f"S{len(source_id)}"))
                    image_id[i] = source_id
                else:
                    image_id[i] = dedup["face_id"][i]
                shard[i], offset[i], size[i] = (-1, 0, 0) if member is None else (shards.code(member.shard), member.offset, member.bytes)
            release(image_id, shard, offset, size, hair, eyes, dedup["face_id"])
    if not seen.all():
        stale = np.nonzero(~seen)[0]
        raise UserError(
            f"{dedup_manifest} lists {len(stale)} faces that {faces_manifest} does not (e.g. {dedup['face_id'][stale[0]].decode()}): run `anigan dedupe` again"
        )
    return SplitTable(**dedup, image_id=image_id, shard=shard, offset=offset, size=size, hair=hair, eyes=eyes, shards=shards.values, colors=colors.values)
