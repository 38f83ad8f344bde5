"""Training checkpoints: written atomically, read back with `torch.load(weights_only=True)`.

A checkpoint is one `.pt` file holding only tensors, numbers, strings, lists and dicts:

    meta           dict: format, model ("dcgan" or "acgan"; absent in older DCGAN checkpoints),
                   conditions (acgan: {"hair": names, "eyes": names}, see gan.conditions),
                   nz, ngf, ndf, image_size, iteration, loss, ema, run (what defines the run:
                   model, widths, lr, seed, dataset digest...)
    generator      state_dict of gan.models.Generator (or ConditionalGenerator)
    generator_ema  state_dict of the averaged generator, or None when train.ema is off
    discriminator  state_dict of gan.models.Discriminator (or ConditionalDiscriminator)
    optimizer_g, optimizer_d   Adam state_dicts
    processes      per training process: the batch sampler's state and the noise generator state
    rng            the global torch (and CUDA) RNG states

`runs/train/checkpoints/latest.pt` is always the newest; `step_NNNNNN.pt` are periodic snapshots.
Other stages use `load_generator` and `load_discriminator`; they never need the training code.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from anigan.errors import UserError
from anigan.files import atomic_write_bytes
from gan.conditions import conditions_of, model_of
from gan.models import Discriminator, make_discriminator, make_generator

log = logging.getLogger(__name__)

FORMAT = "anigan-dcgan/1"
LATEST = "latest.pt"
SNAPSHOT = re.compile(r"^step_(\d{6,})\.pt$")


@dataclass(frozen=True)
class TrainingNets:
    """What a checkpoint saves of a run and restores into it (the unwrapped modules, not DDP's)."""

    generator: nn.Module
    discriminator: nn.Module
    optimizer_g: torch.optim.Optimizer
    optimizer_d: torch.optim.Optimizer
    generator_ema: nn.Module | None  # the averaged generator, None when train.ema is off


def training_state(meta: dict[str, Any], nets: TrainingNets, processes: list[Any] | None, device: torch.device) -> dict[str, Any]:
    """The checkpoint dictionary of a run, in the format described at the top of this module."""
    rng: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return {
        "meta": meta,
        "generator": nets.generator.state_dict(),
        "generator_ema": nets.generator_ema.state_dict() if nets.generator_ema is not None else None,
        "discriminator": nets.discriminator.state_dict(),
        "optimizer_g": nets.optimizer_g.state_dict(),
        "optimizer_d": nets.optimizer_d.state_dict(),
        "processes": processes,
        "rng": rng,
    }


def restore_training(state: dict[str, Any], nets: TrainingNets, device: torch.device) -> list[Any]:
    """Load weights, optimizers and the global RNGs from `state`; returns the per-process stream states.

    A run saved without an averaged generator resumed with one starts the average from the
    generator's weights.
    """
    nets.generator.load_state_dict(state["generator"])
    nets.discriminator.load_state_dict(state["discriminator"])
    nets.optimizer_g.load_state_dict(state["optimizer_g"])
    nets.optimizer_d.load_state_dict(state["optimizer_d"])
    if nets.generator_ema is not None:
        nets.generator_ema.load_state_dict(state.get("generator_ema") or state["generator"])
    rng = state.get("rng") or {}
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if device.type == "cuda" and len(rng.get("cuda", [])) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return state.get("processes") or []


def snapshot_name(iteration: int) -> str:
    return f"step_{iteration:06d}.pt"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a reader sees the old file or the new one, never half of one."""
    buffer = io.BytesIO()
    torch.save({**state, "meta": {**state["meta"], "format": FORMAT}}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_snapshot(checkpoint_dir: str | os.PathLike, iteration: int, keep: int) -> None:
    """Keep a copy of latest.pt as step_NNNNNN.pt and drop all but the `keep` newest snapshots.

    The copy is a hard link where the file system allows it: latest.pt is later replaced by a
    rename, so the snapshot keeps the old contents without writing them twice.
    """
    directory = Path(checkpoint_dir)
    if keep > 0:
        target = directory / snapshot_name(iteration)
        tmp = directory / f".{target.name}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(directory / LATEST, tmp)
        except OSError:
            atomic_write_bytes(tmp, (directory / LATEST).read_bytes())
        os.replace(tmp, target)
    snapshots = sorted(list_snapshots(directory), reverse=True)
    for _, old in snapshots[keep:]:
        old.unlink(missing_ok=True)


def list_snapshots(checkpoint_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(iteration, path) of the periodic snapshots in a folder, oldest first."""
    directory = Path(checkpoint_dir)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := SNAPSHOT.match(p.name))]
    return sorted(found)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file from a file path, a checkpoints folder or a training run folder (its latest.pt)."""
    path = Path(path)
    for candidate in (path, path / LATEST, path / "checkpoints" / LATEST):
        if candidate.is_file():
            return candidate
    raise UserError(f"{path}: no checkpoint there (looked for the file, {LATEST} and checkpoints/{LATEST}); train first")


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True` (no code runs from the file) and check its format."""
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path}: not a readable checkpoint ({first_line})") from None
    if not isinstance(state, dict) or not isinstance(state.get("meta"), dict) or state["meta"].get("format") != FORMAT:
        raise UserError(f"{path}: not an anigan checkpoint (expected format {FORMAT})")
    return state


def _public_meta(state: dict[str, Any]) -> dict[str, Any]:
    meta = dict(state["meta"])
    meta["model"] = model_of(meta)
    meta["has_ema"] = state.get("generator_ema") is not None
    return meta


def _load_weights(module: nn.Module, weights: dict[str, torch.Tensor], path: Path, what: str) -> None:
    try:
        module.load_state_dict(weights)
    except RuntimeError as e:
        raise UserError(f"{path}: the {what} weights do not fit the network the checkpoint describes ({str(e).splitlines()[0]})") from None


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu", ema: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """The trained generator from a checkpoint, on `device` and in eval mode, with the checkpoint's meta.

    `path` may be a checkpoint file, a checkpoints folder or a run folder (then its latest.pt).
    The EMA weights are used when the checkpoint has them (unless `ema=False`). The generator maps
    noise `torch.randn(n, meta["nz"], 1, 1)` and labels to images (n, 3, S, S) in [-1, 1],
    S = meta["image_size"]: `generator(z, labels)`, where labels is None for a DCGAN and a
    LongTensor (n, 2) of [hair, eyes] indices for an ACGAN (gan.conditions.encode_conditions).
    meta holds model ("dcgan" or "acgan"), conditions (acgan), nz, ngf, ndf, image_size, iteration,
    loss, has_ema, weights ("ema" or "generator"), and run (the settings that defined the training run).
    """
    path = resolve_checkpoint(path)
    state = read_checkpoint(path)
    meta = _public_meta(state)
    generator = make_generator(meta["nz"], meta["ngf"], meta["image_size"], conditions_of(meta))
    use_ema = ema and meta["has_ema"]
    _load_weights(generator, state["generator_ema"] if use_ema else state["generator"], path, "generator")
    meta["weights"] = "ema" if use_ema else "generator"
    return generator.to(device).eval(), meta


def load_discriminator(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Discriminator, dict[str, Any]]:
    """The trained discriminator from a checkpoint, on `device` and in eval mode, with the checkpoint's meta.

    It maps images (n, 3, S, S) scaled to [-1, 1] to one raw logit per image (n,); higher means
    "looks like the training set" (sigmoid of it is D's probability under the bce loss). Comparing
    its scores on train and test images shows how much the discriminator memorised. An ACGAN's
    discriminator does the same; `discriminator(images, classes=True)` adds its class logits.
    """
    path = resolve_checkpoint(path)
    state = read_checkpoint(path)
    meta = _public_meta(state)
    discriminator = make_discriminator(meta["ndf"], meta["image_size"], conditions_of(meta))
    _load_weights(discriminator, state["discriminator"], path, "discriminator")
    return discriminator.to(device).eval(), meta
