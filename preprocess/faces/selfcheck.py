"""Can animeface find faces here? It silently finds none with Pillow 12+, so the stage asks it once.

The test picture is a plain demo-booru portrait stored beside this module (`selfcheck_face.png`),
so the check needs no other room of the project and no network.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from importlib import resources

TEST_FACE = "selfcheck_face.png"
PILLOW_FIX = "run `uv sync` (the lock pins pillow<12, which animeface needs)"


def pillow_version() -> str:
    try:
        return importlib.metadata.version("pillow")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def pillow_works_with_animeface() -> bool:
    return int(pillow_version().split(".")[0]) < 12


def faces_in_test_picture() -> int:
    """How many faces animeface finds on the stored test portrait (it holds exactly one)."""
    from PIL import Image

    animeface = importlib.import_module("animeface")
    with resources.files(__package__).joinpath(TEST_FACE).open("rb") as f, Image.open(f) as picture:
        return len(animeface.detect(picture.convert("RGB")))
