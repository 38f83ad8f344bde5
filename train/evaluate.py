"""`anigan evaluate`: score a trained generator against the held-out test split; metrics.json and report.html.

Every number is a pure function of the checkpoint, the packed dataset, `evaluate.seed` and
`evaluate.num_samples`: the noise is drawn on the CPU from the seed, and every subset (KID
subsets, MS-SSIM pairs, capped real sets) is drawn from the same seed.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch

from anigan.cli import AniganContext, pass_anigan
from anigan.errors import UserError
from anigan.files import atomic_write_text, write_json
from anigan.params import Params
from train.charts import read_dvclive_series
from train.checkpoint import LATEST, load_discriminator, load_generator, resolve_checkpoint
from train.condition_accuracy import ConditionAccuracy, index_labels, score_conditions
from train.conditions import conditions_of
from train.data import load_images
from train.face_rate import face_rate
from train.memorization import memorization
from train.metrics_fid import (
    inception_features,
    kernel_inception_distance,
    frechet_distance,
    load_inception,
    missing_weights_message,
)
from train.metrics_msssim import mean_pairwise_msssim
from train.models import init_weights
from train.overfitting import overfitting_gap, subset
from train.report import NearestPair, ReportInputs, render_report
from train.runtime import pick_device
from train.samples import face_inputs, generate

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class EvaluateSummary:
    checkpoint: str
    iteration: int
    weights: str  # "ema" or "generator"
    device: str
    metrics: dict[str, float | int]
    skipped: tuple[str, ...]  # one line per metric group that could not be computed, with the reason
    metrics_path: str
    report_path: str


def _checkpoint_path(params: Params) -> Path:
    if params.evaluate.checkpoint is not None:
        return resolve_checkpoint(params.evaluate.checkpoint)
    return resolve_checkpoint(Path(params.paths.train_run) / "checkpoints" / LATEST)


def _load_split(dataset: Path, name: str, image_size: int) -> np.ndarray:
    images = load_images(dataset, name)
    if images.shape[1] != image_size:
        raise UserError(
            f"{dataset / name}: images are {images.shape[1]} px but the generator makes {image_size} px; "
            "evaluate the checkpoint trained on this dataset"
        )
    return images


def _fid_kid(params: Params, samples: np.ndarray, test: np.ndarray, device: torch.device) -> dict[str, float]:
    p = params.evaluate
    network = load_inception(p.inception_weights, device)
    log.info("Inception features of %d samples and %d test images", len(samples), len(test))
    fake = inception_features(network, samples, p.batch_size, device)
    real = inception_features(network, test, p.batch_size, device)
    kid, kid_std = kernel_inception_distance(fake, real, p.kid_subsets, p.kid_subset_size, p.seed)
    return {"fid": frechet_distance(fake, real), "kid": kid, "kid_std": kid_std}


def untrained_copy(generator: torch.nn.Module, seed: int) -> torch.nn.Module:
    """The same network freshly initialised from `seed`: the baseline that shows whether training taught anything."""
    untrained = copy.deepcopy(generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in untrained.modules():
            if module is not untrained and hasattr(module, "reset_parameters"):
                module.reset_parameters()  # batch norm also forgets its running statistics
        init_weights(untrained)
    return untrained.eval()


def _condition_accuracy(
    params: Params, samples: np.ndarray, labels: torch.Tensor, train: np.ndarray, test: np.ndarray, conditions: dict, device: torch.device
) -> ConditionAccuracy:
    """Colour classifier from the real train split, checked on the test split, applied to the samples asked for `labels`."""
    p, dataset = params.evaluate, Path(params.paths.dataset)
    return score_conditions(
        samples,
        labels.numpy(),
        (train, index_labels(dataset, "train", len(train), conditions)),
        (test, index_labels(dataset, "test", len(test), conditions)),
        conditions,
        steps=p.classifier_steps,
        batch_size=p.classifier_batch_size,
        seed=p.seed,
        device=device,
    )


def run_evaluate(params: Params) -> EvaluateSummary:
    """Score the checkpoint's generator (EMA weights when present) on the test split; write metrics.json and report.html."""
    p = params.evaluate
    checkpoint = _checkpoint_path(params)
    device = pick_device(p.device)
    generator, meta = load_generator(checkpoint, device)
    discriminator, _ = load_discriminator(checkpoint, device)
    dataset = Path(params.paths.dataset)
    train = _load_split(dataset, "train.npy", meta["image_size"])
    test = _load_split(dataset, "test.npy", meta["image_size"])
    out_dir = Path(params.paths.evaluate_run)

    # An ACGAN is asked for colours drawn uniformly from its vocabularies (None for a DCGAN).
    noise, labels = face_inputs(meta, p.num_samples, p.seed)
    samples = generate(generator, noise, device, p.batch_size, labels=labels)
    # Real sets are capped at num_samples where a metric compares counts (face rate, MS-SSIM, D).
    test_capped = np.asarray(test[subset(len(test), p.num_samples, p.seed)])
    metrics: dict[str, float | int] = {
        "iteration": int(meta["iteration"]),
        "num_samples": p.num_samples,
        "num_train": len(train),
        "num_test": len(test),
    }
    skipped: list[str] = []

    if not Path(p.inception_weights).is_file():
        skipped.append(missing_weights_message(p.inception_weights))
    elif len(test) < 2:
        skipped.append(f"FID/KID skipped: they need at least 2 test images, {dataset / 'test.npy'} has {len(test)}")
    else:
        metrics.update(_fid_kid(params, samples, np.asarray(test), device))

    log.info("face rate (animeface) on %d samples and %d test images", len(samples), len(test_capped))
    metrics["face_rate"] = face_rate(samples, p.face_upscale)
    metrics["face_rate_test"] = face_rate(test_capped, p.face_upscale)
    untrained = generate(untrained_copy(generator, p.seed), noise, device, p.batch_size, labels=labels)
    metrics["face_rate_untrained"] = face_rate(untrained, p.face_upscale)

    log.info("MS-SSIM diversity over up to %d pairs", p.msssim_pairs)
    metrics["msssim"] = mean_pairwise_msssim(samples, p.msssim_pairs, p.seed, device=device)
    if len(test_capped) >= 2:
        metrics["msssim_test"] = mean_pairwise_msssim(test_capped, p.msssim_pairs, p.seed, device=device)
    else:
        skipped.append("msssim_test skipped: fewer than 2 test images")

    log.info("nearest training images of %d samples and %d test images", len(samples), len(test))
    memo = memorization(samples, train, test)
    metrics.update(memo.metrics())
    metrics.update(overfitting_gap(discriminator, train, test, device, p.batch_size, p.num_samples, p.seed))

    conditions = conditions_of(meta)
    accuracy = None
    if conditions is not None:  # an ACGAN: its samples were asked for `labels`
        accuracy = _condition_accuracy(params, samples, labels, train, np.asarray(test), conditions, device)
        metrics.update(accuracy.metrics())

    closest = np.argsort(memo.samples.distance, kind="stable")[: p.nn_pairs]
    pairs = [
        NearestPair(samples[i], np.asarray(train[memo.samples.index[i]]), float(memo.samples.distance[i]))
        for i in closest
    ]
    # The GIF and curves come from the run the checkpoint belongs to (--checkpoint may name another).
    run_dir = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else Path(params.paths.train_run)
    gif = run_dir / "progress.gif"
    report = render_report(
        ReportInputs(
            title=f"iteration {meta['iteration']}",
            subtitle=(
                f"checkpoint {checkpoint} (iteration {meta['iteration']}, {meta['weights']} weights, "
                f"{meta['image_size']} px); dataset {dataset}: {len(train)} train, {len(test)} test images"
            ),
            seed=p.seed,
            metrics=metrics,
            samples=samples,
            test_images=test_capped,
            pairs=pairs,
            threshold=memo.threshold,
            progress_gif=gif.read_bytes() if gif.is_file() else None,
            curves=read_dvclive_series(run_dir / "dvclive"),
            notes=skipped,
            model=meta["model"],
            condition_accuracy=accuracy,
        )
    )
    metrics_path, report_path = out_dir / METRICS_FILE, out_dir / REPORT_FILE
    write_json(metrics_path, metrics)
    atomic_write_text(report_path, report)
    for line in skipped:
        log.info("%s", line)  # the CLI prints these lines; logging them louder would show them twice
    return EvaluateSummary(
        checkpoint=str(checkpoint),
        iteration=int(meta["iteration"]),
        weights=meta["weights"],
        device=str(device),
        metrics=metrics,
        skipped=tuple(skipped),
        metrics_path=str(metrics_path),
        report_path=str(report_path),
    )


@click.command("evaluate")
@click.option("--checkpoint", type=click.Path(), default=None, help="Checkpoint, checkpoints folder or run folder [evaluate.checkpoint].")
@click.option("--num-samples", type=int, default=None, help="Generated samples to score [evaluate.num_samples].")
@click.option("--seed", type=int, default=None, help="Seed of the samples and subsets [evaluate.seed].")
@click.option("--inception-weights", type=click.Path(), default=None, help="FID Inception weights file [evaluate.inception_weights].")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu", "mps"]), default=None, help="Where to run [evaluate.device].")
@pass_anigan
def evaluate_command(
    ctx: AniganContext,
    checkpoint: str | None,
    num_samples: int | None,
    seed: int | None,
    inception_weights: str | None,
    device: str | None,
) -> None:
    """Score the trained generator on the test split: FID/KID (with local weights), face rate,
    diversity, memorization, overfitting gap; writes metrics.json and report.html."""
    params = ctx.params(
        **{
            "evaluate.checkpoint": checkpoint,
            "evaluate.num_samples": num_samples,
            "evaluate.seed": seed,
            "evaluate.inception_weights": inception_weights,
            "evaluate.device": device,
        }
    )
    summary = run_evaluate(params)
    for line in summary.skipped:
        click.echo(line, err=True)
    click.echo(f"evaluated {summary.checkpoint} (iteration {summary.iteration}, {summary.weights} weights) on {summary.device}")
    width = max(len(k) for k in summary.metrics)
    for key, value in summary.metrics.items():
        shown = str(value) if isinstance(value, int) else f"{value:.4f}"
        click.echo(f"  {key:<{width}}  {shown}")
    click.echo(f"metrics: {summary.metrics_path}")
    click.echo(f"report:  {summary.report_path}")
