"""`anigan train`: parse options, call run_train, print the summary."""

from __future__ import annotations

import sys

import click

from anigan.command import AniganContext, pass_anigan
from anigan.progress import progress_bar


@click.command("train")
@click.option("--iterations", type=int, default=None, help="Training steps [iterations].")
@click.option("--lr", type=float, default=None, help="Adam learning rate [lr].")
@click.option("--batch-size", type=int, default=None, help="Images per step on each process [train.batch_size].")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu", "mps"]), default=None, help="Where to train [train.device].")
@click.option("--dataset", "dataset_dir", type=click.Path(file_okay=False), default=None, help="Folder with train.npy [paths.dataset].")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None, help="Output folder [paths.train_run].")
@click.option("--fresh", is_flag=True, help="Start over even if a checkpoint of this run exists.")
@pass_anigan
def train_command(
    ctx: AniganContext,
    iterations: int | None,
    lr: float | None,
    batch_size: int | None,
    device: str | None,
    dataset_dir: str | None,
    run_dir: str | None,
    fresh: bool,
) -> None:
    """Train the GAN (train.model: dcgan, or acgan on hair and eye colour) on the packed faces;
    resumes from the last checkpoint of the same run.

    Under `torchrun --nproc-per-node N -m anigan train` each process trains on its own batches
    with DistributedDataParallel. Ctrl-C (or SIGTERM) writes a checkpoint and stops.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from train.loop import TrainingInterrupted, run_train

    params = ctx.params(
        **{"train.iterations": iterations, "lr": lr, "train.batch_size": batch_size, "train.device": device}
    )
    columns = (TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeRemainingColumn())
    with progress_bar(*columns) as bar:
        task = bar.add_task("train", total=params.train.iterations, status="")

        def show(progress):
            m = progress.metrics
            status = f"loss_D {m['loss_D']:.3f} loss_G {m['loss_G']:.3f} {m['images_per_second']:.0f} img/s"
            bar.update(task, completed=progress.iteration, status=status)

        try:
            summary = run_train(params, dataset_dir=dataset_dir, run_dir=run_dir, fresh=fresh, on_progress=show)
        except TrainingInterrupted as stopped:
            bar.stop()
            click.echo(str(stopped), err=True)
            sys.exit(128 + stopped.signum if stopped.signum else 1)
    if summary.rank != 0:
        return  # under torchrun, one report is enough
    started = f"resumed from iteration {summary.resumed_from}" if summary.resumed_from else "fresh start"
    m = summary.metrics
    click.echo(
        f"trained to iteration {summary.iteration} ({started}) on {summary.train_images} faces of "
        f"{summary.image_size}x{summary.image_size}, {summary.device} x{summary.world_size}, "
        f"{summary.images_per_second:.0f} images/s"
    )
    if m:
        click.echo(f"last losses: loss_D {m['loss_D']:.3f}, loss_G {m['loss_G']:.3f}, D(x) {m['D_x']:.3f}, D(G(z)) {m['D_G_z']:.3f}")
    if "hair_accuracy_real" in m:
        click.echo(
            f"colour classes: class_loss_D {m['class_loss_D']:.3f}, class_loss_G {m['class_loss_G']:.3f}, "
            f"D names real hair {m['hair_accuracy_real']:.0%} and eyes {m['eyes_accuracy_real']:.0%} right"
        )
    click.echo(f"checkpoint {summary.checkpoint}; samples and progress GIF in {summary.run_dir}")
