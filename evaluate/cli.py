"""`anigan evaluate`: parse options, call run_evaluate, print the metrics."""

from __future__ import annotations

import click

from anigan.command import AniganContext, pass_anigan
from evaluate.stage import run_evaluate


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
