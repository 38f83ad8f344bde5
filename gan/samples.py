"""Images from a generator: fixed noise, uint8 conversion, grids, PNG files and the progress GIF."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from anigan.files import atomic_write_bytes
from anigan.images import png_bytes
from gan.conditions import encode_conditions


def fixed_noise(count: int, nz: int, seed: int) -> torch.Tensor:
    """`count` noise vectors (count, nz, 1, 1) drawn on the CPU, so a seed means the same faces on any device."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, nz, 1, 1, generator=generator)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images (N, 3, S, S) in [-1, 1] -> uint8 array (N, S, S, 3)."""
    scaled = images.detach().float().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).contiguous().cpu().numpy()


@torch.no_grad()
def generate(
    generator: nn.Module,
    noise: torch.Tensor,
    device: torch.device,
    batch_size: int = 256,
    amp: bool = False,
    labels: torch.Tensor | None = None,
) -> np.ndarray:
    """Run `generator` over `noise` (and an ACGAN's `labels`, (N, 2)) in batches; returns uint8 images (N, S, S, 3)."""
    out = []
    use_amp = amp and device.type == "cuda"
    for start in range(0, len(noise), batch_size):
        z = noise[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device) if labels is not None else None
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            out.append(to_uint8(generator(z) if y is None else generator(z, y)))
    return np.concatenate(out) if out else np.zeros((0, 0, 0, 3), np.uint8)


def face_inputs(
    meta: dict, count: int, seed: int, hair: str | None = None, eyes: str | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(noise, labels) for `count` faces seeded by `seed`: labels None for a DCGAN, else the colours asked (None: drawn uniformly).

    Both are drawn on the CPU, so a seed gives the same faces on any device. An unknown colour,
    or a colour asked of a DCGAN, is a UserError (gan.conditions.encode_conditions).
    """
    return fixed_noise(count, meta["nz"], seed), encode_conditions(meta, hair, eyes, count, seed)


def draw_faces(
    generator: nn.Module,
    meta: dict,
    count: int,
    seed: int,
    device: torch.device,
    *,
    hair: str | None = None,
    eyes: str | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """`count` faces from the inputs `face_inputs` draws for `seed`, `hair` and `eyes`."""
    noise, labels = face_inputs(meta, count, seed, hair, eyes)
    return generate(generator, noise, device, batch_size, labels=labels)


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile uint8 images (N, S, S, 3) into one image, `columns` wide (default: a square), on black."""
    count, height, width, _ = images.shape
    columns = columns or max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    grid = np.zeros((rows * (height + padding) + padding, columns * (width + padding) + padding, 3), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        y, x = padding + r * (height + padding), padding + c * (width + padding)
        grid[y : y + height, x : x + width] = image
    return grid


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Save a uint8 (H, W, 3) image as PNG atomically."""
    atomic_write_bytes(path, png_bytes(image))


def write_gif(path: str | os.PathLike, frames: Sequence[tuple[str, Path]], max_frames: int = 60, frame_ms: int = 250) -> int:
    """An animated GIF of image files, each captioned (e.g. "step 300"); returns the frames used.

    Long runs are thinned to `max_frames` evenly spread frames, always keeping the last one, and
    the last frame is held longer so the final result can be seen.
    """
    if not frames:
        return 0
    if len(frames) > max_frames:
        picks = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in sorted(set(picks.tolist()))]
    images = []
    for caption, file in frames:
        with Image.open(file) as im:
            picture = im.convert("RGB")
        framed = Image.new("RGB", (picture.width, picture.height + 14), "black")
        framed.paste(picture, (0, 0))
        ImageDraw.Draw(framed).text((4, picture.height + 1), caption, fill="white")
        images.append(framed)
    buffer = io.BytesIO()
    durations = [frame_ms] * (len(images) - 1) + [frame_ms * 8]
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    atomic_write_bytes(path, buffer.getvalue())
    return len(images)
