"""`anigan evaluate`: score a trained generator against the held-out test split; metrics.json and report.html.

Every number is a pure function of the checkpoint, the packed dataset, `evaluate.seed` and
`evaluate.num_samples`: the noise is drawn on the CPU from the seed, and every subset (KID
subsets, MS-SSIM pairs, capped real sets) is drawn from the same seed. The splits stay memory-mapped:
each metric reads the rows it uses, a chunk at a time, so a large split is never held whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anigan.errors import UserError
from anigan.files import atomic_write_text, write_json
from anigan.params import Params
from evaluate.metrics import EvalInputs, compute, subset
from evaluate.report import NearestPair, ReportInputs, render_report
from gan.charts import read_dvclive_series
from gan.checkpoint import LATEST, load_discriminator, load_generator, resolve_checkpoint
from gan.packed import load_images
from gan.runtime import pick_device
from gan.samples import face_inputs, generate

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
    inputs = EvalInputs(
        params=p,
        dataset=dataset,
        meta=meta,
        generator=generator,
        discriminator=discriminator,
        device=device,
        noise=noise,
        labels=labels,
        samples=samples,
        train=train,
        test=test,
        test_capped=np.asarray(test[subset(len(test), p.num_samples, p.seed)]),
    )
    metrics: dict[str, float | int] = {
        "iteration": int(meta["iteration"]),
        "num_samples": p.num_samples,
        "num_train": len(train),
        "num_test": len(test),
    }
    skipped: list[str] = []
    details: dict[str, object] = {}
    for name in p.metrics:
        result = compute(name, inputs)
        metrics.update(result.values)
        skipped.extend(result.skipped)
        details[name] = result.details

    memo = details.get("memorization")
    pairs = []
    if memo is not None:
        closest = np.argsort(memo.samples.distance, kind="stable")[: p.nn_pairs]
        pairs = [NearestPair(samples[i], np.asarray(train[memo.samples.index[i]]), float(memo.samples.distance[i])) for i in closest]
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
            test_images=inputs.test_capped,
            pairs=pairs,
            threshold=memo.threshold if memo is not None else None,
            progress_gif=gif.read_bytes() if gif.is_file() else None,
            curves=read_dvclive_series(run_dir / "dvclive"),
            notes=skipped,
            model=meta["model"],
            condition_accuracy=details.get("condition_accuracy"),
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
