"""The split stage's packed arrays, read as train, evaluate and the benchmarks need them: memory-mapped, checked."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np

from anigan.errors import UserError
from gan.models import IMAGE_SIZES

TRAIN_FILE = "train.npy"


def load_images(dataset_dir: str | os.PathLike, name: str = TRAIN_FILE) -> np.ndarray:
    """Memory-map a packed image array and check it is uint8 (N, S, S, 3) with S in 32, 64, 128."""
    path = Path(dataset_dir) / name
    if not path.is_file():
        raise UserError(f"{path}: no packed images here; run the split stage first (`anigan split` or `dvc repro split`)")
    try:
        images = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npy array ({e}); rerun the split stage") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise UserError(f"{path}: expected uint8 images of shape (N, S, S, 3), got {images.dtype} {images.shape}")
    if images.shape[1] not in IMAGE_SIZES:
        raise UserError(f"{path}: image side {images.shape[1]} is not one of {', '.join(map(str, IMAGE_SIZES))}")
    if images.shape[0] == 0:
        raise UserError(f"{path}: holds no images; the earlier stages kept no faces for it")
    return images


def release_pages(images: np.ndarray) -> None:
    """Let go of the pages of a memory-mapped array that this process has read.

    They stay in the kernel's page cache, so reading them again is cheap, but they no longer
    count in this process's resident memory: a pass over a large split then holds one chunk, not
    every page it went through. Arrays in memory are left alone.
    """
    mapping = getattr(images, "_mmap", None)  # numpy's memmap keeps its mmap object here
    if mapping is not None and hasattr(mapping, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)
