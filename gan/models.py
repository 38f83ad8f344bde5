"""The DCGAN of Radford et al. (2015) for square images of side 32, 64 or 128.

The generator turns a noise vector (N, nz, 1, 1) into images (N, 3, S, S) in [-1, 1]; the
discriminator turns images into one raw logit per image (N,): no Sigmoid, so the loss can use
the numerically stable BCE-with-logits. Side 64 is the paper's network; 32 drops one block
and 128 adds one, doubling the width of the deepest layer each time.

The ACGAN of Odena et al. (2017) reuses both: its generator takes the noise with one-hot hair
and eye colours appended, its discriminator adds a hair and an eye classifier on the same trunk.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZES = (32, 64, 128)


def depth_for(image_size: int) -> int:
    """Number of (transposed) convolutions between 4x4 and `image_size`: 64 -> 4 as in the paper."""
    if image_size not in IMAGE_SIZES:
        raise ValueError(f"image size must be one of {IMAGE_SIZES}, got {image_size}")
    return int(math.log2(image_size)) - 2


def _generator_layers(in_channels: int, ngf: int, image_size: int) -> nn.Sequential:
    depth = depth_for(image_size)
    width = ngf * 2 ** (depth - 1)
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(in_channels, width, 4, 1, 0, bias=False),
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
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """Noise (N, nz, 1, 1) -> images (N, 3, S, S) in [-1, 1]; transposed convs, batch norm, ReLU, Tanh."""

    def __init__(self, nz: int, ngf: int, image_size: int = 64) -> None:
        super().__init__()
        self.nz, self.ngf, self.image_size = nz, ngf, image_size
        self.main = _generator_layers(nz, ngf, image_size)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """`labels` is accepted so callers treat both models alike, but must be None: a DCGAN has no colours."""
        if labels is not None:
            raise ValueError("an unconditional DCGAN generator takes no labels")
        return self.main(z)


class ConditionalGenerator(nn.Module):
    """Noise (N, nz, 1, 1) and labels (N, 2) [hair, eyes] -> images (N, 3, S, S) in [-1, 1]."""

    def __init__(self, nz: int, ngf: int, image_size: int, hair_classes: int, eye_classes: int) -> None:
        super().__init__()
        self.nz, self.ngf, self.image_size = nz, ngf, image_size
        self.hair_classes, self.eye_classes = hair_classes, eye_classes
        self.main = _generator_layers(nz + hair_classes + eye_classes, ngf, image_size)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        one_hot = torch.cat([F.one_hot(labels[:, 0], self.hair_classes), F.one_hot(labels[:, 1], self.eye_classes)], dim=1)
        return self.main(torch.cat([z, one_hot.to(z.dtype)[:, :, None, None]], dim=1))


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


class ConditionalDiscriminator(Discriminator):
    """The DCGAN discriminator plus a hair and an eye classifier on its trunk (the last conv's input).

    `forward(images)` is the plain discriminator's (one logit per image), so code that only scores
    images treats both alike; `forward(images, classes=True)` also returns the class logits
    (N, hair_classes) and (N, eye_classes). Training calls the latter through the wrapped module.
    """

    def __init__(self, ndf: int, image_size: int, hair_classes: int, eye_classes: int) -> None:
        super().__init__(ndf, image_size)
        self.hair_classes, self.eye_classes = hair_classes, eye_classes
        width = self.main[-1].in_channels
        self.hair_head = nn.Conv2d(width, hair_classes, 4, 1, 0)
        self.eye_head = nn.Conv2d(width, eye_classes, 4, 1, 0)

    def forward(self, images: torch.Tensor, classes: bool = False):  # type: ignore[override]
        features = self.main[:-1](images)
        logits = self.main[-1](features).flatten()
        if not classes:
            return logits
        return logits, self.hair_head(features).flatten(1), self.eye_head(features).flatten(1)


def init_weights(module: nn.Module) -> None:
    """The paper's init: conv weights from N(0, 0.02), batch-norm scales from N(1, 0.02), shifts 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:  # only the ACGAN's class heads have one
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def make_generator(nz: int, ngf: int, image_size: int, conditions: dict[str, list[str]] | None = None) -> nn.Module:
    """A DCGAN generator, or an ACGAN one when `conditions` ({"hair": names, "eyes": names}) is given."""
    if conditions is None:
        return Generator(nz, ngf, image_size)
    return ConditionalGenerator(nz, ngf, image_size, len(conditions["hair"]), len(conditions["eyes"]))


def make_discriminator(ndf: int, image_size: int, conditions: dict[str, list[str]] | None = None) -> Discriminator:
    """A DCGAN discriminator, or an ACGAN one (with class heads) when `conditions` is given."""
    if conditions is None:
        return Discriminator(ndf, image_size)
    return ConditionalDiscriminator(ndf, image_size, len(conditions["hair"]), len(conditions["eyes"]))


def build_models(
    nz: int, ngf: int, ndf: int, image_size: int, seed: int, conditions: dict[str, list[str]] | None = None
) -> tuple[nn.Module, Discriminator]:
    """A freshly initialised generator and discriminator (ACGAN ones given `conditions`); the same seed gives the same weights."""
    rng_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        generator, discriminator = make_generator(nz, ngf, image_size, conditions), make_discriminator(ndf, image_size, conditions)
        init_weights(generator)
        init_weights(discriminator)
    finally:
        # Leave the caller's global RNG as it was: the seed belongs to this run only.
        torch.random.set_rng_state(rng_state)
    return generator, discriminator
