"""The `anigan` command: a click group whose stage commands live in their own rooms.

Commands are listed here as "module:attribute" and imported only when run, so `anigan --help`
stays fast (no torch, no scrapy) and the core imports nothing from the stage folders.
"""

from __future__ import annotations

import importlib
import sys

import click

from anigan import __version__
from anigan.command import AniganContext
from anigan.errors import UserError
from anigan.logs import setup_logging
from anigan.params import DEFAULT_PATH, parse_override

# name -> (import path, one-line help shown by `anigan --help` without importing the module)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("anigan.doctor:doctor_command", "Check the installation: versions, device, detector, DVC."),
    "demo-site": ("crawler.demo.cli:demo_site", "The demo booru: generate it or serve it on loopback."),
    "crawl": ("crawler.cli:crawl_command", "Crawl a booru (the demo booru by default) into the raw folder; resumable."),
    "dedupe": ("preprocess.dedupe.cli:dedupe_command", "Group exact and near-duplicate faces; keep one per group."),
    "faces": ("preprocess.faces.cli:faces_command", "Detect, crop and describe anime faces in the raw images."),
    "split": ("preprocess.split.cli:split_command", "Split kept faces into train/test without leaks and pack them as arrays."),
    "train": ("train.cli:train_command", "Train the GAN (DCGAN, or ACGAN on hair and eye colour) on the packed faces; resumes."),
    "generate": ("draw.cli:generate_command", "Draw faces from a trained generator: a grid PNG and/or single PNGs."),
    "evaluate": ("evaluate.cli:evaluate_command", "Score the generator on the test split: metrics.json and report.html."),
    "serve": ("draw.cli:serve_command", "A local web page that draws faces, with hair and eye colour picked (ACGAN)."),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, _, attr = COMMANDS[name][0].partition(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="anigan")
@click.option("-v", "--verbose", count=True, help="More log output: -v info, -vv debug.")
@click.option(
    "--params",
    "params_path",
    default=DEFAULT_PATH,
    show_default=True,
    metavar="PATH",
    help="Params file; missing default means built-in defaults.",
)
@click.option(
    "-S",
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a param for this run, as with `dvc exp run -S`: -S lr=0.0001 -S crawl.limit=50.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, params_path: str, overrides: tuple[str, ...]) -> None:
    """anigan: from booru images to a trained anime-face generator, reproducibly.

    Each pipeline stage is one command; `dvc repro` runs them all in order.
    """
    setup_logging(verbose)
    try:
        parsed = dict(parse_override(o) for o in overrides)
    except UserError as e:
        raise click.UsageError(str(e)) from None
    ctx.obj = AniganContext(params_path, parsed)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        cli.main(args=argv, prog_name="anigan", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except UserError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
