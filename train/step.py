"""One GAN training step: the discriminator on a real and a generated batch, then the generator.

Everything stays on the device (for the ACGAN, with the class losses of both on hair and eye
colour): the step returns its losses as a device tensor, which the loop reads back only now and then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gan.models import Discriminator
from train.ema import EMA
from train.losses import class_loss, fake_loss, generator_loss, real_loss

METRICS = ("loss_D", "loss_G", "D_x", "D_G_z")  # the order of the per-step stats vector
# The ACGAN's stats follow: the class losses (unweighted; D's on real plus generated images, G's on
# its own) and D's accuracy at naming the hair and eye colour of the real images it was shown.
CLASS_METRICS = ("class_loss_D", "class_loss_G", "hair_accuracy_real", "eyes_accuracy_real")


@dataclass
class Nets:
    """The networks and optimizers of one run; `*_step` are the wrapped (DDP / compiled) modules the step calls."""

    generator: nn.Module  # Generator or ConditionalGenerator
    discriminator: Discriminator
    generator_step: nn.Module
    discriminator_step: nn.Module
    optimizer_g: torch.optim.Optimizer
    optimizer_d: torch.optim.Optimizer
    ema: EMA | None


def _no_sync(module: nn.Module) -> contextlib.AbstractContextManager:
    """Skip DDP's gradient all-reduce for a backward whose gradients are summed with a later one."""
    ddp = getattr(module, "_orig_mod", module)
    return ddp.no_sync() if isinstance(ddp, DistributedDataParallel) else contextlib.nullcontext()


@dataclass(frozen=True)
class StepLabels:
    """An ACGAN step's colour labels (B, 2): of the real batch, and those asked of the generator."""

    real: torch.Tensor
    fake: torch.Tensor
    class_weight: float


def train_step(
    nets: Nets,
    real: torch.Tensor,
    z: torch.Tensor,
    loss: str,
    amp: bool,
    distributed: bool,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    labels: StepLabels | None = None,
) -> torch.Tensor:
    """One GAN step: D on a real and a generated batch, then G. Returns stats on the device:
    METRICS order, then CLASS_METRICS for the ACGAN (when `labels` are given).

    Nothing here reads a value back to the host. D sees real and generated images in separate
    forward passes as in the paper (its batch norm keeps their statistics apart), each followed
    by its backward so DDP all-reduces D's gradients once, after both. `augment`, if given, is
    applied to every image D sees, real or generated (DiffAugment). With `labels`, G draws the
    asked colours and D's classifier heads learn the real images' colours; D and G both add the
    weighted class loss on the generated images (Odena et al.'s ACGAN), with either GAN loss.
    """
    augment = augment or (lambda x: x)
    device_type = real.device.type
    autocast = lambda: torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp)  # noqa: E731
    conditional = labels is not None

    def discriminate(images: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """D's logits and, for the ACGAN, its hair and eye class logits."""
        with autocast():
            if not conditional:
                return nets.discriminator_step(augment(images)), ()
            logits, hair, eyes = nets.discriminator_step(augment(images), classes=True)
            return logits, (hair, eyes)

    def with_classes(adversarial: torch.Tensor, classes: tuple[torch.Tensor, ...], wanted: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the loss to back-propagate, the unweighted class loss or None for a DCGAN)."""
        if not conditional:
            return adversarial, None
        classification = class_loss(*classes, wanted)
        return adversarial + labels.class_weight * classification, classification

    with autocast():
        fake = nets.generator_step(z, labels.fake if conditional else None)

    nets.optimizer_d.zero_grad(set_to_none=True)
    with _no_sync(nets.discriminator_step):
        real_logits, real_classes = discriminate(real)
        loss_real = real_loss(real_logits, loss)
        total, class_real = with_classes(loss_real, real_classes, labels.real if conditional else None)
        total.backward()
    fake_logits, fake_classes = discriminate(fake.detach())
    loss_fake = fake_loss(fake_logits, loss)
    total, class_fake = with_classes(loss_fake, fake_classes, labels.fake if conditional else None)
    total.backward()
    nets.optimizer_d.step()

    nets.optimizer_g.zero_grad(set_to_none=True)
    # G's step needs gradients through D, not for D's weights: freezing them skips that work.
    # DDP must not see requires_grad change, so there D's local gradients are left unsynced.
    frozen = contextlib.nullcontext() if distributed else _frozen(nets.discriminator)
    with frozen, _no_sync(nets.discriminator_step):
        g_logits, g_classes = discriminate(fake)
        loss_g = generator_loss(g_logits, loss)
        total, class_g = with_classes(loss_g, g_classes, labels.fake if conditional else None)
        total.backward()
    nets.optimizer_g.step()

    with torch.no_grad():
        stats = [
            loss_real + loss_fake,
            loss_g,
            torch.sigmoid(real_logits.float()).mean(),
            torch.sigmoid(fake_logits.float()).mean(),
        ]
        if conditional:
            hair, eyes = real_classes
            stats += [
                class_real + class_fake,
                class_g,
                (hair.argmax(1) == labels.real[:, 0]).float().mean(),
                (eyes.argmax(1) == labels.real[:, 1]).float().mean(),
            ]
        return torch.stack(stats)


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    module.requires_grad_(False)
    try:
        yield
    finally:
        module.requires_grad_(True)
