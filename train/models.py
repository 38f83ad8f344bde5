"""The DCGAN of Radford et al. (2015) for square images of side 32, 64 or 128.

The generator turns a noise vector (N, nz, 1, 1) into images (N, 3, S, S) in [-1, 1]; the
discriminator turns images into one raw logit per image (N,): no Sigmoid, so the loss can use
the numerically stable BCE-with-logits. Side 64 is the paper's network; 32 drops one block
and 128 adds one, doubling the width of the deepest layer each time.
"""

from __future__ import annotations

import math

import torch
from torch import nn

IMAGE_SIZES = (32, 64, 128)


def depth_for(image_size: int) -> int:
    """Number of (transposed) convolutions between 4x4 and `image_size`: 64 -> 4 as in the paper."""
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image size must be one of {IMAGE_SIZES}, got {image_size}")
    return int(math.log2(image_size)) - 2


class Generator(nn.Module):
    """Noise (N, nz, 1, 1) -> images (N, 3, S, S) in [-1, 1]; transposed convs, batch norm, ReLU, Tanh."""

    def __init__(self, nz: int, ngf: int, image_size: int = 64) -> None:
        super().__init__()
        self.nz, self.ngf, self.image_size = nz, ngf, image_size
        depth = depth_for(image_size)
        width = ngf * 2 ** (depth - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(depth - 1):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        layers += [nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class Discriminator(nn.Module):
    """Images (N, 3, S, S) -> one logit per image (N,); strided convs, batch norm, LeakyReLU(0.2)."""

    def __init__(self, ndf: int, image_size: int = 64) -> None:
        super().__init__()
        self.ndf, self.image_size = ndf, image_size
        depth = depth_for(image_size)
        # The paper leaves batch norm off the first layer.
        layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        width = ndf
        for _ in range(depth - 1):
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width *= 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.main(images).flatten()


def init_weights(module: nn.Module) -> None:
    """The paper's init: conv weights from N(0, 0.02), batch-norm scales from N(1, 0.02), shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_models(nz: int, ngf: int, ndf: int, image_size: int, seed: int) -> tuple[Generator, Discriminator]:
    """A freshly initialised generator and discriminator; the same seed gives the same weights."""
    rng_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        generator, discriminator = Generator(nz, ngf, image_size), Discriminator(ndf, image_size)
        init_weights(generator)
        init_weights(discriminator)
    finally:
        # Leave the caller's global RNG as it was: the seed belongs to this run only.
        torch.random.set_rng_state(rng_state)
    return generator, discriminator
