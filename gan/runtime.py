"""Where a network runs and how its random streams are seeded: shared by train, evaluate and the page."""

from __future__ import annotations

import hashlib
import logging

import torch

from anigan.errors import UserError

log = logging.getLogger(__name__)


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; naming a device that is not there is a user error."""
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("device = cuda, but torch sees no CUDA GPU here; use device: auto or cpu")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise UserError("device = mps, but this torch has no usable MPS backend; use device: auto or cpu")
    return torch.device(name)


def derive_seed(seed: int, purpose: str, rank: int = 0) -> int:
    """A seed for one purpose (weights, batches, noise...) of one process, derived from the run's seed.

    Separate streams mean that, say, changing the sample grid never changes the batches drawn.
    """
    digest = hashlib.sha256(f"{seed}:{purpose}:{rank}".encode()).digest()
    return int.from_bytes(digest[:7], "big")
