"""GAN losses on raw discriminator logits: the paper's BCE (non-saturating for G) or hinge, and
the ACGAN's class loss on its classifier heads.

The discriminator's two halves are separate functions because the step back-propagates them
one after the other (see train.loop.train_step).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("bce", "hinge")


def _check(kind: str) -> None:
    if kind not in LOSSES:
        raise ValueError(f"unknown loss {kind!r}; expected one of {LOSSES}")


def real_loss(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The discriminator's loss on training images (it should score them high)."""
    _check(kind)
    logits = logits.float()
    # softplus(-x) is BCE-with-logits against label 1: stable for any logit, unlike Sigmoid followed
    # by BCELoss, and without allocating a label tensor.
    return F.softplus(-logits).mean() if kind == "bce" else F.relu(1.0 - logits).mean()


def fake_loss(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The discriminator's loss on generated images (it should score them low)."""
    _check(kind)
    logits = logits.float()
    return F.softplus(logits).mean() if kind == "bce" else F.relu(1.0 + logits).mean()


def generator_loss(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The generator's loss on the discriminator's logits for its images."""
    _check(kind)
    logits = logits.float()
    # bce: the paper's non-saturating form, maximise log D(G(z)).
    return F.softplus(-logits).mean() if kind == "bce" else -logits.mean()


def class_loss(hair_logits: torch.Tensor, eye_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The ACGAN's auxiliary loss: cross-entropy of the hair and the eye classifier against labels (N, 2), summed."""
    return F.cross_entropy(hair_logits.float(), labels[:, 0]) + F.cross_entropy(eye_logits.float(), labels[:, 1])
