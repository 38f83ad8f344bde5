"""Progress bars for the CLI layer: drawn on a terminal, silent in logs, CI and `dvc repro` output."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def progress_bar(*columns: Any):
    """A rich Progress with these columns that clears itself when done and draws only when stderr is a terminal."""
    from rich.progress import Progress  # imported here: only commands that draw a bar pay for rich

    return Progress(*columns, transient=True, disable=not sys.stderr.isatty())


@contextmanager
def counting_bar(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A 'label [bar] done/total eta' bar; yields update(done, total) for a stage's progress callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    with progress_bar(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
