"""`anigan faces`: parse options, call run_faces, print the summary."""

from __future__ import annotations

import click

from anigan.command import AniganContext, pass_anigan
from anigan.progress import counting_bar
from preprocess.faces.stage import QUALITY_FLOOR, REJECTS, SHARDS, SHEET, run_faces


def format_quality(quality: dict) -> list[str]:
    """One line per detector: precision/recall at the stage's size floor and at 64 px."""
    lines = []
    for name, q in quality.items():
        floor = q[f"ge{QUALITY_FLOOR}px"]
        lines.append(
            f"{name} vs ground truth (IoU >= {q['iou_threshold']}): precision {q['precision']:.3f}, recall {q['recall']:.3f} "
            f"on {q['truth_faces']} faces >= {q['min_size']} px; precision {floor['precision']:.3f}, recall {floor['recall']:.3f} "
            f"on {floor['truth_faces']} faces >= {floor['min_size']} px"
            + (f"; hair colour right {q['hair_accuracy']:.0%}" if q.get("hair_accuracy") is not None else "")
            + (f", eyes {q['eye_accuracy']:.0%}" if q.get("eye_accuracy") is not None else "")
        )
        filters = q.get("filters") or {}
        shown = [f"{reason} precision {f['precision']:.2f}, recall {f['recall']:.2f}" for reason, f in filters.items() if f["precision"] is not None and f["recall"] is not None]
        if shown:
            lines.append(f"{name} filters on planted defects: " + "; ".join(shown))
    return lines


@click.command("faces")
@click.option("--detector", type=click.Choice(["animeface", "cascade"]), default=None, help="Face detector [faces.detector].")
@click.option("--cascade", "cascade_path", default=None, metavar="XML", help="Cascade file for --detector cascade [faces.cascade_path].")
@click.option("--workers", type=int, default=None, help="Worker processes; 0 means all cores [faces.workers].")
@pass_anigan
def faces_command(ctx: AniganContext, detector: str | None, cascade_path: str | None, workers: int | None) -> None:
    """Detect, crop and describe anime faces in the raw images."""
    params = ctx.params(**{"faces.detector": detector, "faces.cascade_path": cascade_path, "faces.workers": workers})
    with counting_bar("detecting faces") as update:
        summary = run_faces(params, on_progress=update)
    click.echo(
        f"{summary.images} images -> {summary.faces} faces from {summary.images_with_faces} images "
        f"({summary.processed} processed with {summary.workers} worker(s), {summary.reused} unchanged since the last run)"
    )
    if summary.rejects:
        click.echo("rejected: " + ", ".join(f"{v} {k}" for k, v in summary.rejects.items()) + f" (see {summary.output}/{REJECTS})")
    for line in format_quality(summary.quality or {}):
        click.echo(line)
    click.echo(f"crops in {summary.output}/{SHARDS}/*.tar, contact sheet {summary.output}/{SHEET}")
