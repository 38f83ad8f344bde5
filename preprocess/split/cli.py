"""`anigan split`: parse options, call run_split, print the summary."""

from __future__ import annotations

import click

from anigan.command import AniganContext, pass_anigan
from anigan.progress import counting_bar
from preprocess.split.stage import run_split


@click.command("split")
@click.option("--test-ratio", type=float, default=None, help="Share of faces held out for evaluation [test_ratio].")
@click.option("--salt", default=None, help="Change it to draw a different split on purpose [split.salt].")
@click.option("--image-size", type=int, default=None, help="Side of the packed images in px [split.image_size].")
@pass_anigan
def split_command(ctx: AniganContext, test_ratio: float | None, salt: str | None, image_size: int | None) -> None:
    """Split kept faces into train/test without leaks and pack them as arrays."""
    params = ctx.params(**{"test_ratio": test_ratio, "split.salt": salt, "split.image_size": image_size})
    with counting_bar("packing faces") as update:
        summary = run_split(params, progress=update)
    card = summary.card
    size = card["image_size"]
    click.echo(
        f"train {summary.faces('train')} faces, test {summary.faces('test')} faces "
        f"(test share {card['realized_test_ratio']:.3f}, target {card['test_ratio']}); {size}x{size} arrays in {summary.output}"
    )
    if card["skipped"]:
        click.echo("skipped: " + ", ".join(f"{v} {k}" for k, v in card["skipped"].items()))
