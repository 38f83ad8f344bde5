"""`anigan generate` and `anigan serve`: draw faces from a trained generator, as files or on a local page."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from anigan.command import AniganContext, pass_anigan
from anigan.local_server import LOOPBACK
from draw.generate import run_generate
from draw.serve import DEFAULT_MAX_COUNT, FaceMaker, check_host, face_server


@click.command("generate")
@click.option("--checkpoint", type=click.Path(), default=None, help="Checkpoint file or run folder [paths.train_run]/checkpoints/latest.pt.")
@click.option("--n", "count", type=int, default=64, show_default=True, help="How many faces.")
@click.option("--seed", type=int, default=0, show_default=True, help="Noise seed: the same seed gives the same faces.")
@click.option("--out", "grid", type=click.Path(dir_okay=False), default=None, help="Write one grid image here (*.png).")
@click.option("--out-dir", "folder", type=click.Path(file_okay=False), default=None, help="Write each face as its own PNG here.")
@click.option("--columns", type=int, default=None, help="Grid width in faces (default: square).")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu", "mps"]), default="auto", show_default=True)
@click.option("--no-ema", is_flag=True, help="Use the raw generator weights instead of their moving average.")
@click.option("--hair", default=None, metavar="COLOUR", help="ACGAN checkpoints: hair colour of every face, e.g. blue (default: drawn per face).")
@click.option("--eyes", default=None, metavar="COLOUR", help="ACGAN checkpoints: eye colour of every face, e.g. red (default: drawn per face).")
@pass_anigan
def generate_command(
    ctx: AniganContext,
    checkpoint: str | None,
    count: int,
    seed: int,
    grid: str | None,
    folder: str | None,
    columns: int | None,
    device: str,
    no_ema: bool,
    hair: str | None,
    eyes: str | None,
) -> None:
    """Draw faces from a trained generator: a grid PNG and/or a folder of single PNGs.

    An ACGAN checkpoint takes --hair and --eyes; an unknown colour stops with the list of
    colours the checkpoint knows.
    """
    if checkpoint is None:
        checkpoint = str(Path(ctx.params().paths.train_run) / "checkpoints")
    summary = run_generate(
        checkpoint, count=count, seed=seed, grid=grid, folder=folder, device=device, ema=not no_ema, columns=columns, hair=hair, eyes=eyes
    )
    where = " and ".join(x for x in (summary.grid, summary.folder and f"{summary.folder}/") if x)
    colours = ""
    if summary.model == "acgan":
        colours = f", {summary.hair or 'any'} hair, {summary.eyes or 'any'} eyes"
    click.echo(
        f"{summary.count} faces of {summary.image_size}x{summary.image_size} from {summary.checkpoint} "
        f"(iteration {summary.iteration}, {summary.weights} weights, seed {summary.seed}{colours}) -> {where}"
    )


@click.command("serve")
@click.option("--checkpoint", type=click.Path(), default=None, help="Checkpoint, checkpoints folder or run folder [default: <paths.train_run>/checkpoints].")
@click.option("--host", default=LOOPBACK, show_default=True, help="Address to listen on; loopback unless --allow-remote.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port; 0 picks a free one.")
@click.option("--allow-remote", is_flag=True, help="Allow a --host that is not loopback (the page then serves the network).")
@click.option("--max-count", type=click.IntRange(1, 1024), default=DEFAULT_MAX_COUNT, show_default=True, help="Most faces one request may ask for.")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu", "mps"]), default="auto", show_default=True, help="Where to run the generator.")
@pass_anigan
def serve_command(ctx: AniganContext, checkpoint: str | None, host: str, port: int, allow_remote: bool, max_count: int, device: str) -> None:
    """A local web page that draws faces: pick hair and eye colour (ACGAN), a seed and a count; Ctrl-C stops."""
    check_host(host, allow_remote)  # before loading a model the user would wait for in vain
    if checkpoint is None:
        checkpoint = str(Path(ctx.params().paths.train_run) / "checkpoints")
    maker = FaceMaker(checkpoint, device, max_count)
    server = face_server(maker, host, port, allow_remote)
    colours = "" if maker.conditions is None else f"; {len(maker.conditions['hair'])} hair and {len(maker.conditions['eyes'])} eye colours"
    click.echo(f"{server.url}/")
    click.echo(
        f"serving {maker.meta['model'].upper()} faces from {maker.checkpoint} (iteration {maker.meta['iteration']}{colours}) on {maker.device}; Ctrl-C stops",
        err=True,
    )
    # Ctrl-C (or SIGTERM) stops even in a process started with SIGINT ignored or blocked, as some
    # job runners and background shells start their children.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
