"""A contact sheet: a seeded random sample of face crops in one grid PNG, for a person to look at."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from PIL import Image

GAP = 2
BACKGROUND = (40, 40, 40)


def pick_faces(face_ids: Sequence[str], count: int, seed: int) -> list[str]:
    """`count` face IDs chosen at random but reproducibly: the same IDs and seed give the same pick."""
    pool = sorted(face_ids)
    return sorted(random.Random(seed).sample(pool, min(count, len(pool))))


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
