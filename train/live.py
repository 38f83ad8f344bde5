"""Training metrics through DVCLive: one row per logged iteration, resumable without duplicate rows."""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from anigan.files import atomic_write_text
from gan.charts import CURVES_FILE, curves_svg, read_dvclive_series

log = logging.getLogger(__name__)


def trim_history(live_dir: str | os.PathLike, last_step: int) -> int:
    """Drop rows logged after `last_step` from DVCLive's metric histories; returns how many went.

    A run killed between two checkpoints logged steps it will redo after resuming; without this
    those steps would appear twice in the plots.
    """
    dropped = 0
    for tsv in Path(live_dir, "plots", "metrics").rglob("*.tsv"):
        with open(tsv, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t")
            fields = reader.fieldnames or []
            rows = list(reader)
        kept = [r for r in rows if r.get("step") not in (None, "") and int(r["step"]) <= last_step]
        if len(kept) == len(rows):
            continue
        dropped += len(rows) - len(kept)
        out = io.StringIO()
        writer = csv.DictWriter(out, fields, delimiter="\t", lineterminator=os.linesep)
        writer.writeheader()
        writer.writerows(kept)
        atomic_write_text(tsv, out.getvalue())
    return dropped


class MetricsLog:
    """A DVCLive `Live` in `live_dir` that uses the training iteration as its step.

    It never creates DVC experiments or edits dvc.yaml (the pipeline's dvc.yaml declares the
    metrics and plots); `resume_from` continues the histories of an interrupted run.
    """

    def __init__(self, live_dir: str | os.PathLike, resume_from: int | None, params: dict[str, Any]) -> None:
        from dvclive import Live  # imported here: it pulls in DVC, which the rest of anigan does not need

        if resume_from is not None:
            dropped = trim_history(live_dir, resume_from)
            if dropped:
                log.info("dropped %d metric rows logged after iteration %d", dropped, resume_from)
        self.live = Live(
            str(live_dir),
            resume=resume_from is not None,
            save_dvc_exp=False,
            dvcyaml=None,
            report=None,
            monitor_system=False,
        )
        self.live.log_params(params)

    def log_metrics(self, iteration: int, metrics: dict[str, float]) -> None:
        self.live.step = iteration
        for name, value in metrics.items():
            self.live.log_metric(name, float(value))
        self.live.make_summary()

    def log_image(self, iteration: int, name: str, image: np.ndarray) -> None:
        self.live.step = iteration
        self.live.log_image(name, image)
        self.write_curves()

    def write_curves(self) -> None:
        """The histories so far as plots/images/curves.svg: `dvc plots show` draws DVCLive's TSV plots with
        Vega from a CDN, so offline only image plots render; this one needs nothing from the network."""
        svg = curves_svg(read_dvclive_series(self.live.dir))
        if svg is not None:
            atomic_write_text(Path(self.live.plots_dir, "images", CURVES_FILE), svg)

    def close(self) -> None:
        self.live.end()
        self.write_curves()
