"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for GANs trained on few images.

With a few hundred faces the discriminator soon memorises the training set and the generator
collapses to one face. Showing D randomly shifted, recoloured and cut-out versions of both the
real and the generated images, through operations the generator's gradient passes through,
keeps D from memorising without teaching G to draw the augmentations. Everything runs on the
images' device with random numbers from the caller's generator, so a resumed run draws the
same augmentations as an uninterrupted one.
"""

from __future__ import annotations

import torch

AUGMENTATIONS = ("color", "translation", "cutout")


def _uniform(x: torch.Tensor, generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(x.shape[0], *shape, device=x.device, dtype=x.dtype, generator=generator)


def color(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image."""
    x = x + (_uniform(x, generator, 1, 1, 1) - 0.5)
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * (_uniform(x, generator, 1, 1, 1) * 2) + gray
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator, 1, 1, 1) + 0.5) + mean


def translation(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size in x and y, filling with zeros (mid-grey)."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    shift_y = (_uniform(x, generator) * (2 * sy + 1)).long().clamp_(max=2 * sy) - sy
    shift_x = (_uniform(x, generator) * (2 * sx + 1)).long().clamp_(max=2 * sx) - sx
    # Read from a copy padded by one zero pixel; indices that fall outside land on the padding.
    rows = (torch.arange(h, device=x.device)[None, :] + shift_y[:, None] + 1).clamp_(0, h + 1)
    cols = (torch.arange(w, device=x.device)[None, :] + shift_x[:, None] + 1).clamp_(0, w + 1)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of `ratio` the image size in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = (_uniform(x, generator) * (h + 1 - ch % 2)).long() - ch // 2
    left = (_uniform(x, generator) * (w + 1 - cw % 2)).long() - cw // 2
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    inside_y = (ys >= top[:, None]) & (ys < top[:, None] + ch)
    inside_x = (xs >= left[:, None]) & (xs < left[:, None] + cw)
    keep = ~(inside_y[:, :, None] & inside_x[:, None, :])
    return x * keep[:, None, :, :].to(x.dtype)


_OPS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """Apply the augmentations named in `policy` (in the order color, translation, cutout)."""
    for name in AUGMENTATIONS:
        if name in policy:
            x = _OPS[name](x, generator)
    return x
