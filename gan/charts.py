"""Training curves as SVG line charts, from DVCLive's metric histories: for the report and for `dvc plots show` offline."""

from __future__ import annotations

import csv
import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

CURVES_FILE = "curves.svg"


def read_dvclive_series(live_dir: str | os.PathLike) -> dict[str, tuple[list[float], list[float]]]:
    """Each metric DVCLive logged in `live_dir` -> (steps, values), read from plots/metrics/**/*.tsv.

    A metric's name is its file path under plots/metrics without `.tsv` (e.g. `loss_D`). Rows
    without a number and a torn last line (no newline yet) are skipped; a missing folder gives no series.
    """
    root = Path(live_dir, "plots", "metrics")
    series: dict[str, tuple[list[float], list[float]]] = {}
    if not root.is_dir():
        return series
    for tsv in sorted(root.rglob("*.tsv")):
        name = tsv.relative_to(root).with_suffix("").as_posix()
        steps, values = [], []
        text = tsv.read_text(encoding="utf-8")
        lines = text.splitlines()
        if text and not text.endswith("\n"):
            lines = lines[:-1]  # a writer stopped mid-line: "30\t0." would read as a wrong number
        for row in csv.DictReader(lines, delimiter="\t"):
            try:
                step, value = float(row["step"]), float(row[tsv.stem])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(step) and math.isfinite(value):
                steps.append(step)
                values.append(value)
        if steps:
            series[name] = (steps, values)
    return series


def _nice(value: float) -> str:
    return f"{value:.4g}"


COLOURS = ("#3366cc", "#dc3912", "#109618", "#ff9900", "#990099", "#0099c6")

Series = tuple[Sequence[float], Sequence[float]]


def chart_groups(names: Sequence[str]) -> dict[str, list[str]]:
    """Metrics drawn on one chart share the word before their first `_` (loss_D with loss_G, D_x with D_G_z).

    A group of one is titled by the metric's full name.
    """
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(name.split("_", 1)[0], []).append(name)
    titled = {(members[0] if len(members) == 1 else word): members for word, members in groups.items()}
    return dict(sorted(titled.items(), key=lambda item: (not item[0].startswith("loss"), item[0].lower())))


def svg_line_chart(title: str, series: Mapping[str, Series], width: int = 340, height: int = 200) -> str:
    """Metric histories (name -> (steps, values)) as one inline SVG line chart, with axis ranges and a legend."""
    left, right, bottom = 52, 10, 28
    top = 24 if len(series) < 2 else 16 + 11 * len(series)  # room for the legend above the plot
    xs = [x for steps, _ in series.values() for x in steps]
    ys = [y for _, values in series.values() for y in values]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:  # a flat line: centre it
        pad = abs(y0) * 0.5 or 0.5
        y0, y1 = y0 - pad, y1 + pad
    plot_w, plot_h = width - left - right, height - top - bottom

    def point(x: float, y: float) -> str:
        px = left + (x - x0) / (x1 - x0) * plot_w
        py = top + (1 - (y - y0) / (y1 - y0)) * plot_h
        return f"{px:.1f},{py:.1f}"

    label = html.escape(title)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{label}">',
        f'<text x="{left}" y="15" font-size="13" font-weight="bold">{label}</text>',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
    ]
    for k, (name, (steps, values)) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        line = " ".join(point(x, y) for x, y in zip(steps, values))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{line}"><title>{html.escape(name)}</title></polyline>')
        if len(series) > 1:  # the legend: names in their line's colour, right of the title
            parts.append(
                f'<text x="{width - right}" y="{13 + 11 * k}" font-size="10" '
                f'text-anchor="end" fill="{colour}">{html.escape(name)}</text>'
            )
    parts += [
        f'<text x="{left - 4}" y="{top + 10}" font-size="10" text-anchor="end">{_nice(y1)}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="10" text-anchor="end">{_nice(y0)}</text>',
        f'<text x="{left}" y="{height - 10}" font-size="10">{_nice(x0)}</text>',
        f'<text x="{width - right}" y="{height - 10}" font-size="10" text-anchor="end">step {_nice(x1)}</text>',
        "</svg>",
    ]
    return "".join(parts)


def curves_svg(series: Mapping[str, Series], columns: int = 2, width: int = 340, height: int = 200) -> str | None:
    """Every chart of `chart_groups` in one standalone SVG document, `columns` charts a row; None without series."""
    charts = [svg_line_chart(title, {n: series[n] for n in members}, width, height) for title, members in chart_groups(list(series)).items()]
    if not charts:
        return None
    rows = -(-len(charts) // columns)
    total_w, total_h = width * min(columns, len(charts)), height * rows
    placed = [
        f'<g transform="translate({width * (k % columns)},{height * (k // columns)})">{chart}</g>' for k, chart in enumerate(charts)
    ]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" viewBox="0 0 {total_w} {total_h}">'
        f'<rect width="100%" height="100%" fill="white"/>{"".join(placed)}</svg>\n'
    )
