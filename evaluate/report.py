"""report.html: one self-contained page (images as data: URIs, charts as inline SVG) that works offline."""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from string import Template

import numpy as np
from PIL import Image

from anigan.images import data_uri, png_bytes
from evaluate.metrics.condition_accuracy import ConditionAccuracy
from gan.charts import Series, chart_groups, svg_line_chart
from gan.samples import image_grid

TEMPLATE = "report_template.html"
GRID_LIMIT = 64  # images shown per grid

# metrics.json key -> what it says, shown beside the value; the order is the table's.
METRIC_MEANINGS: dict[str, str] = {
    "fid": "Frechet Inception distance, generated vs test (lower is better; biased upward for small sets)",
    "kid": "kernel Inception distance, generated vs test (lower is better; unbiased)",
    "kid_std": "spread of KID over the random subsets",
    "face_rate": "share of generated samples in which animeface finds a face",
    "face_rate_test": "the same share on real test images: the ceiling to compare with",
    "face_rate_untrained": "the same share for the same network freshly initialised: the floor",
    "msssim": "mean MS-SSIM between random pairs of samples (lower is more diverse)",
    "msssim_test": "the same on real test images: the diversity of real faces",
    "nn_train_distance_mean": "mean RMS pixel distance from a sample to its nearest training image",
    "nn_train_distance_min": "the smallest such distance (0 means an exact copy)",
    "test_nn_train_distance_mean": "mean distance from a test image to its nearest training image",
    "test_nn_train_distance_min": "the smallest: the memorization threshold",
    "memorized_share": "share of samples closer to training than any test image is",
    "nn_train_references": "training images the nearest-neighbour search compared with (a seeded subset when fewer than all)",
    "nn_test_images": "test images measured for the memorization threshold (a seeded subset when fewer than all)",
    "d_logit_train": "discriminator's mean logit on training reals",
    "d_logit_test": "discriminator's mean logit on test reals",
    "d_overfit_gap": "train minus test logit: near 0 is healthy, large means D memorised its training set",
    "d_overfit_gap_stderr": "standard error of the gap from the images scored: a gap within about twice it is noise",
    "d_gap_train_images": "training images the discriminator scored (a seeded subset when fewer than all)",
    "d_gap_test_images": "test images the discriminator scored (a seeded subset when fewer than all)",
    "condition_accuracy_hair": "share of samples whose hair colour (by the colour classifier) is the one asked for",
    "condition_accuracy_eyes": "the same for eye colour",
    "condition_accuracy_both": "the same for both colours at once",
    "condition_chance_hair": "what a generator ignoring the hair label scores: 1 / hair colours",
    "condition_chance_eyes": "the same for eyes: 1 / eye colours",
    "condition_chance_both": "the same for both: 1 / (hair colours x eye colours)",
    "colour_classifier_test_hair": "the colour classifier's hair accuracy on real test faces: how far to trust it",
    "colour_classifier_test_eyes": "its eye colour accuracy on real test faces",
    "colour_classifier_test_both": "its accuracy on both colours of real test faces",
    "colour_classifier_majority_hair": "share of the commonest hair colour among test faces: the classifier's chance level",
    "colour_classifier_majority_eyes": "the same for eye colour",
    "colour_classifier_majority_both": "the same for the commonest (hair, eyes) pair",
    "iteration": "training iteration of the checkpoint",
    "num_samples": "generated samples scored",
    "num_train": "training images",
    "num_test": "test images",
}


def png_uri(image: np.ndarray) -> str:
    """A uint8 (H, W, 3) image as a PNG data: URI."""
    return data_uri(png_bytes(image), "image/png")


@dataclass(frozen=True)
class NearestPair:
    """A generated sample beside its nearest training image, and the RMS distance between them."""

    sample: np.ndarray
    neighbour: np.ndarray
    distance: float


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows; images are uint8 (N, H, W, 3)."""

    title: str
    subtitle: str
    seed: int
    metrics: Mapping[str, float | int]
    samples: np.ndarray
    test_images: np.ndarray
    pairs: Sequence[NearestPair]
    threshold: float | None  # None when the memorization metric was not selected
    progress_gif: bytes | None
    curves: Mapping[str, Series]
    notes: Sequence[str] = field(default_factory=tuple)
    model: str = "dcgan"  # the checkpoint's model: "dcgan" or "acgan"
    condition_accuracy: ConditionAccuracy | None = None  # ACGAN checkpoints only


# Counts of a seeded subset, shown as "<used> of <all>" beside the total they were drawn from.
SAMPLED_FROM: dict[str, str] = {
    "nn_train_references": "num_train",
    "nn_test_images": "num_test",
    "d_gap_train_images": "num_train",
    "d_gap_test_images": "num_test",
}


def _format_value(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"


def _shown_value(key: str, metrics: Mapping[str, float | int]) -> str:
    total = metrics.get(SAMPLED_FROM.get(key, ""))
    return f"{metrics[key]} of {total}" if total is not None else _format_value(metrics[key])


def _metric_rows(metrics: Mapping[str, float | int]) -> str:
    ordered = [k for k in METRIC_MEANINGS if k in metrics] + sorted(k for k in metrics if k not in METRIC_MEANINGS)
    return "\n".join(
        f'<tr><td><code>{html.escape(k)}</code></td><td class="value">{_shown_value(k, metrics)}</td>'
        f"<td>{html.escape(METRIC_MEANINGS.get(k, ''))}</td></tr>"
        for k in ordered
    )


def _grid(images: np.ndarray, limit: int = GRID_LIMIT) -> tuple[str, int]:
    """A PNG data: URI of up to `limit` images tiled 8 wide, and the width to show it at (2x)."""
    shown = images[:limit]
    grid = image_grid(shown, columns=min(8, len(shown)))
    return png_uri(grid), 2 * grid.shape[1]


def _progress(gif: bytes | None) -> str:
    """The training-progress GIF, shown at 2x when small; a note when the run has none or it is broken."""
    if not gif:
        return '<p class="muted">No progress.gif in the training run.</p>'
    try:
        with Image.open(io.BytesIO(gif)) as picture:
            if picture.format != "GIF":
                raise ValueError(f"a {picture.format} file")
            width = picture.width
    except (OSError, ValueError) as e:
        return f'<p class="note">The training run\'s progress.gif could not be read ({html.escape(str(e))}).</p>'
    shown = width * 2 if width < 400 else width  # small grids read better at 2x
    return f'<img class="pixels" alt="training progress" width="{shown}" src="{data_uri(gif, "image/gif")}">'


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def condition_section(model: str, accuracy: ConditionAccuracy | None) -> str:
    """The condition accuracy table (hair, eyes, both) beside the figures that say whether to trust it, or why there is none."""
    if accuracy is None:
        if model == "acgan":
            return '<p class="muted">No condition accuracy was computed for this checkpoint.</p>'
        return (
            f'<p class="muted">Not computed: this checkpoint is an unconditional {html.escape(model.upper())}, which '
            "takes no hair or eye colour to check. Train with <code>train.model: acgan</code> for a conditional one.</p>"
        )
    rows = [
        ("condition accuracy: samples showing the colour asked for", accuracy.condition),
        ("chance: a generator ignoring its labels", accuracy.condition_chance),
        ("colour classifier on real test faces", accuracy.classifier_test),
        ("chance: always the commonest test colour", accuracy.classifier_majority),
    ]
    body = "\n".join(
        f"<tr><td>{html.escape(what)}</td>"
        + "".join(f'<td class="value">{_percent(shares[part]) if math.isfinite(shares.get(part, math.nan)) else "n/a"}</td>' for part in ("hair", "eyes", "both"))
        + "</tr>"
        for what, shares in rows
    )
    return (
        '<table class="metrics" id="condition-accuracy"><tr><th></th><th>hair</th><th>eyes</th><th>both</th></tr>\n'
        f"{body}\n</table>"
    )


def render_report(inputs: ReportInputs) -> str:
    """The report as one HTML string: no external file, script or font is referenced."""
    template = Template(resources.files(__package__).joinpath(TEMPLATE).read_text(encoding="utf-8"))
    samples_uri, samples_width = _grid(inputs.samples)
    if len(inputs.test_images):
        test_uri, test_width = _grid(inputs.test_images)
    else:
        test_uri, test_width = png_uri(np.zeros((8, 8, 3), np.uint8)), 16
    progress = _progress(inputs.progress_gif)
    charts = "\n".join(
        svg_line_chart(title, {name: inputs.curves[name] for name in members})
        for title, members in chart_groups(list(inputs.curves)).items()
    )
    if charts:
        charts = f'<div class="charts">{charts}</div>'
    else:
        charts = '<p class="muted">No DVCLive metrics in the training run.</p>'
    pairs = "\n".join(
        f'<div class="pair"><img class="pixels" alt="sample" src="{png_uri(p.sample)}">'
        f'<img class="pixels" alt="nearest training image" src="{png_uri(p.neighbour)}">'
        f"<br>distance {p.distance:.4f}</div>"
        for p in inputs.pairs
    )
    notes = "\n".join(f'<p class="note">{html.escape(n)}</p>' for n in inputs.notes)
    shown = min(GRID_LIMIT, len(inputs.samples))
    return template.substitute(
        samples_caption=f"Generated: {shown} of {len(inputs.samples)} samples (seed {inputs.seed})",
        title=html.escape(inputs.title),
        subtitle=html.escape(inputs.subtitle),
        notes=notes,
        metric_rows=_metric_rows(inputs.metrics),
        samples_grid=samples_uri,
        grid_width=samples_width,
        test_grid=test_uri,
        test_grid_width=test_width,
        progress=progress,
        charts=charts,
        threshold=f"{inputs.threshold:.4f}" if inputs.threshold is not None else "(not computed)",
        conditions=condition_section(inputs.model, inputs.condition_accuracy),
        pairs=pairs or '<p class="muted">No pairs: evaluate.nn_pairs is 0 or memorization is not in evaluate.metrics.</p>',
    )
