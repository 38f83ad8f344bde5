"""A contact sheet: a seeded random sample of face crops in one grid PNG, for a person to look at."""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

GAP = 2
BACKGROUND = (40, 40, 40)


def pick_faces(face_ids: Sequence[str], count: int, seed: int) -> list[str]:
    """`count` face IDs chosen at random but reproducibly: the same IDs and seed give the same pick."""
    pool = sorted(face_ids)
    return sorted(random.Random(seed).sample(pool, min(count, len(pool))))


def _prefix(face_id: str) -> int:
    """A face ID's first 8 UTF-8 bytes as a big-endian number: ordered as the IDs themselves (none holds a NUL)."""
    return int.from_bytes(face_id.encode("utf-8")[:8].ljust(8, b"\0"), "big")


class FacePick:
    """pick_faces over a stream, 8 bytes a face: `add` every face ID, `choose`, then `offer` them
    again (in any order) and `picked` names the same IDs pick_faces would.

    random.sample chooses positions from the pool's length alone, so the pick is the same ranks
    of the sorted IDs; a rank's ID is found among the few IDs that share its 8-byte prefix.
    """

    def __init__(self) -> None:
        self._prefixes = array("Q")
        self._wanted: dict[int, list[int]] = {}  # prefix -> ranks among the IDs sharing it
        self._offered: list[str] = []

    def add(self, face_id: str) -> None:
        self._prefixes.append(_prefix(face_id))

    def choose(self, count: int, seed: int) -> None:
        held, self._prefixes = self._prefixes, array("Q")
        prefixes = np.frombuffer(held, np.uint64) if held else np.empty(0, np.uint64)
        prefixes.sort()  # in place, in the array's own buffer: not a second copy
        for rank in random.Random(seed).sample(range(len(prefixes)), min(count, len(prefixes))):
            prefix = prefixes[rank]
            self._wanted.setdefault(int(prefix), []).append(rank - int(np.searchsorted(prefixes, prefix)))

    def offer(self, face_id: str) -> bool:
        """Whether this ID may be picked (it shares a prefix with a chosen rank); keeps it if so."""
        if _prefix(face_id) in self._wanted:
            self._offered.append(face_id)
            return True
        return False

    def picked(self) -> set[str]:
        ties: dict[int, list[str]] = {}
        for face_id in self._offered:
            ties.setdefault(_prefix(face_id), []).append(face_id)
        return {sorted(ties[prefix])[i] for prefix, ranks in self._wanted.items() for i in ranks}


def contact_sheet(crops: Sequence[str | Path | BinaryIO], tile: int = 64) -> Image.Image:
    """Lay the crop images (files, or file objects of bytes read from a shard) out in a near-square grid of `tile`-px cells, in the order given.

    With no crops the sheet is one empty cell, so a pipeline that lists the file always gets one.
    """
    columns = max(1, math.ceil(math.sqrt(len(crops))))
    rows = max(1, math.ceil(len(crops) / columns))
    sheet = Image.new("RGB", (columns * (tile + GAP) + GAP, rows * (tile + GAP) + GAP), BACKGROUND)
    for n, path in enumerate(crops):
        with Image.open(path) as im:
            cell = im.convert("RGB").resize((tile, tile), Image.Resampling.LANCZOS)
        row, col = divmod(n, columns)
        sheet.paste(cell, (GAP + col * (tile + GAP), GAP + row * (tile + GAP)))
    return sheet
