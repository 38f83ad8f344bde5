"""Shared fixtures: the demo booru, generated raw folders, tiny packed datasets."""

import json
from pathlib import Path

import numpy as np
import pytest


def make_tiny_dataset(folder, train: int = 24, test: int = 8, size: int = 32, seed: int = 0) -> Path:
    """Write a packed dataset like the split stage's (DESIGN.md) into `folder` and return it.

    Each image is a simple drawn "face": a skin disc with two dark eyes on a random flat
    background, with a random shift, so a generator has some structure to learn. Files:
    train.npy / test.npy (uint8, N x size x size x 3), train.jsonl / test.jsonl, card.json.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    card = {"image_size": size, "splits": {}}
    for split, count in (("train", train), ("test", test)):
        images = np.empty((count, size, size, 3), np.uint8)
        for i in range(count):
            image = np.empty((size, size, 3), np.uint8)
            image[:] = rng.integers(0, 256, 3)
            cy, cx = size / 2 + rng.uniform(-size / 10, size / 10, 2)
            radius = size * rng.uniform(0.28, 0.36)
            image[(yy - cy) ** 2 + (xx - cx) ** 2 < radius**2] = (250, 220, 190)
            for side in (-1, 1):
                eye = (yy - (cy - radius * 0.1)) ** 2 + (xx - (cx + side * radius * 0.4)) ** 2 < (radius * 0.18) ** 2
                image[eye] = rng.integers(0, 120, 3)
            images[i] = image
        np.save(folder / f"{split}.npy", images)
        rows = [
            {"face_id": f"{split}{i:04d}", "group_id": f"g-{split}{i:04d}", "hair_color": None, "eye_color": None}
            for i in range(count)
        ]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        card["splits"][split] = {"faces": count}
    card["faces"] = train + test
    (folder / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return folder


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    """A packed 32x32 dataset (24 train, 8 test images) in a temporary folder: see make_tiny_dataset."""
    return make_tiny_dataset(tmp_path / "dataset")
