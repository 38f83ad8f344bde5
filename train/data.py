"""The packed training set and the batches drawn from it, with no per-image Python work.

`train.npy` (uint8, N x S x S x 3) is read once. When it fits it is copied to the training
device whole, and every batch is drawn there: shuffled epochs, random horizontal flips and the
scaling to [-1, 1] are a handful of tensor operations on the device. The copy goes from the
memory map a chunk at a time, so the host never holds a second whole copy of the set, and each
rank of a multi-process run reads the one shared file rather than a private copy of it. A set
too big for the device stays memory-mapped on the host and only each batch is gathered and
sent. An ACGAN's colour labels (N, 2) are small and always live on the training device, drawn
with their images.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch

from gan.packed import release_pages

log = logging.getLogger(__name__)

# Host bytes staged per chunk on the way to the device: large enough for fast transfers, small
# next to any set worth chunking.
COPY_CHUNK_BYTES = 64 << 20
# Batches gathered from a memory-mapped set between releases of the pages read (see release_pages).
RELEASE_EVERY = 64


def fits_on_device(nbytes: int, device: torch.device, policy: str = "auto", copies: int = 1) -> bool:
    """Whether to copy the whole set to the device: 'always', 'never', or 'auto' (under half the free memory).

    `copies` is how many processes would hold one on this device: the ranks of a multi-process
    run on the CPU all hold theirs in the one host memory.
    """
    if policy != "auto":
        return policy == "always"
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return nbytes < free // 2
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return True
    return nbytes * copies < total // 4


def copy_to_device(images: np.ndarray, device: torch.device, chunk_bytes: int = COPY_CHUNK_BYTES) -> torch.Tensor:
    """A uint8 tensor on `device` holding `images` (often memory-mapped), copied `chunk_bytes` at a time.

    Only one chunk is staged on the host at once (none for a CPU device, where the rows go
    straight into the tensor), and the pages read are released as it goes, so a set larger than
    the host's free memory can still fill a large GPU.
    """
    out = torch.empty(images.shape, dtype=torch.uint8, device=device)
    rows = max(1, chunk_bytes // max(1, images[0].nbytes)) if len(images) else 1
    target = out.numpy() if device.type == "cpu" else None
    for start in range(0, len(images), rows):
        stop = min(start + rows, len(images))
        if target is not None:
            target[start:stop] = images[start:stop]
        else:
            out[start:stop].copy_(torch.from_numpy(np.array(images[start:stop])))
        release_pages(images)
    return out


class BatchSource:
    """Endless training batches (B, 3, S, S) in [-1, 1] drawn on the device from uint8 images.

    Each epoch visits every image once in a random order; each image is flipped left-right with
    probability 1/2. All randomness comes from one torch.Generator seeded by `seed`, and
    `state_dict()` captures it with the position in the epoch, so a resumed run draws exactly
    the batches an uninterrupted one would. Given `labels` (int64 (N, 2), the ACGAN's colours),
    `next_with_labels()` returns each batch with its images' labels; a flip keeps the label.
    """

    def __init__(
        self,
        images: np.ndarray,
        batch_size: int,
        device: torch.device,
        seed: int,
        channels_last: bool = False,
        on_device: bool = True,
        labels: np.ndarray | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.device = device
        self.channels_last = channels_last
        self.count = len(images)
        self.on_device = on_device
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(labels)} labels for {len(images)} images")
        self.labels = torch.from_numpy(np.array(labels, dtype=np.int64)).to(device) if labels is not None else None
        if on_device:
            self.images = copy_to_device(images, device)
            index_device = device
        else:
            self.images = images  # memory-mapped; each batch is gathered on the host
            index_device = torch.device("cpu")
        self.generator = torch.Generator(device=index_device)
        self.generator.manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.long, device=index_device)
        self.position = 0
        self.gathered = 0
        log.info(
            "%d training images of %dx%d %s",
            self.count, images.shape[1], images.shape[2],
            f"held on {device}" if on_device else "memory-mapped on the host",
        )

    def _next_indices(self) -> torch.Tensor:
        parts, needed = [], self.batch_size
        while needed:
            if self.position >= len(self.order):
                self.order = torch.randperm(self.count, generator=self.generator, device=self.generator.device)
                self.position = 0
            take = min(needed, len(self.order) - self.position)
            parts.append(self.order[self.position : self.position + take])
            self.position += take
            needed -= take
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def next(self) -> torch.Tensor:
        """The next batch, float32 in [-1, 1], on the device (channels-last strides if asked)."""
        return self._draw()[0]

    def next_with_labels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch and its images' labels (B, 2) on the device."""
        if self.labels is None:
            raise ValueError("this BatchSource was made without labels")
        images, indices = self._draw()
        return images, self.labels[indices.to(self.labels.device)]

    def random_labels(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """Labels of `count` training images drawn at random: conditions for generated images, as often as in the data."""
        if self.labels is None:
            raise ValueError("this BatchSource was made without labels")
        picks = torch.randint(len(self.labels), (count,), generator=generator, device=generator.device)
        return self.labels[picks.to(self.labels.device)]

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        indices = self._next_indices()
        flip = torch.rand(self.batch_size, generator=self.generator, device=self.generator.device) < 0.5
        if self.on_device:
            batch = self.images[indices]
        else:
            batch = torch.from_numpy(np.ascontiguousarray(self.images[indices.numpy()]))
            self.gathered += 1
            if self.gathered % RELEASE_EVERY == 0:
                release_pages(self.images)  # an epoch would otherwise leave the whole file resident
            if self.device.type == "cuda":
                batch = batch.pin_memory()
            batch = batch.to(self.device, non_blocking=True)
            flip = flip.to(self.device, non_blocking=True)
        # Images are (B, H, W, 3): dim 2 is the width.
        batch = torch.where(flip[:, None, None, None], batch.flip(2), batch)
        # Permuting HWC to CHW gives channels-last strides for free; .float() keeps them.
        images = batch.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        return (images if self.channels_last else images.contiguous()), indices

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state: generator, current epoch order and position (CPU tensors and ints)."""
        return {"generator": self.generator.get_state(), "order": self.order.cpu(), "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where `state_dict()` was taken."""
        self.generator.set_state(state["generator"])
        self.order = state["order"].to(self.generator.device)
        self.position = int(state["position"])
