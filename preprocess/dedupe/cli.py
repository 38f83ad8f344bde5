"""`anigan dedupe`: parse options, call run_dedupe, print the summary."""

from __future__ import annotations

import click

from anigan.command import AniganContext, pass_anigan
from anigan.progress import counting_bar
from preprocess.dedupe.stage import run_dedupe


@click.command("dedupe")
@click.option("--max-distance", type=int, default=None, help="Near-duplicate threshold in bits of the 64-bit pHash [dedupe.max_distance].")
@click.option("--image-max-distance", type=int, default=None, help="Threshold for near-duplicate source images, in bits; 0 turns the image check off [dedupe.image_max_distance].")
@click.option("--workers", type=int, default=None, help="Hashing processes; 0 means all cores [dedupe.workers].")
@pass_anigan
def dedupe_command(ctx: AniganContext, max_distance: int | None, image_max_distance: int | None, workers: int | None) -> None:
    """Group exact and near-duplicate faces; keep one per group."""
    params = ctx.params(**{"dedupe.max_distance": max_distance, "dedupe.image_max_distance": image_max_distance, "dedupe.workers": workers})
    with counting_bar("hashing faces and source images") as update:
        summary = run_dedupe(params, progress=update)
    kinds = ", ".join(f"{v} {k}" for k, v in summary.removed_by_kind.items())
    click.echo(f"{summary.faces} faces -> {summary.kept} kept, {summary.removed} removed ({kinds}); {summary.duplicate_groups} duplicate groups, largest {summary.largest_group}")
    if summary.skipped:
        click.echo("skipped: " + ", ".join(f"{v} {k}" for k, v in summary.skipped.items()) + f" (see {summary.output}/rejects.jsonl)")
    if summary.images:
        images = summary.images
        click.echo(f"{images['hashed']} source images hashed: {images['near_pairs']} near-duplicate pairs, {images['faces_joined']} face pairs joined through them")
    if summary.hashes_reused:
        click.echo(f"{summary.hashes_reused} hashes reused from {summary.output}/hashes.jsonl")
