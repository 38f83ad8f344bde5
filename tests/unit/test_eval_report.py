"""report.html pieces: DVCLive histories, SVG charts, and a page that references nothing outside itself."""

import io
import re
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

from gan.charts import chart_groups, curves_svg, read_dvclive_series, svg_line_chart
from evaluate.report import NearestPair, ReportInputs, data_uri, render_report


def write_live_metrics(folder, history):
    """Log `history` (name -> values per step) with DVCLive itself, as the trainer does."""
    from dvclive import Live

    live = Live(str(folder), save_dvc_exp=False, dvcyaml=None, report=None, monitor_system=False)
    steps = len(next(iter(history.values())))
    for step in range(steps):
        live.step = step * 10
        for name, values in history.items():
            live.log_metric(name, values[step])
    live.end()


def test_dvclive_histories_are_read_back_per_metric(tmp_path):
    write_live_metrics(tmp_path / "dvclive", {"loss_D": [1.0, 0.8, 0.7], "loss_G": [0.5, 0.9, 1.1]})
    series = read_dvclive_series(tmp_path / "dvclive")
    assert series == {"loss_D": ([0.0, 10.0, 20.0], [1.0, 0.8, 0.7]), "loss_G": ([0.0, 10.0, 20.0], [0.5, 0.9, 1.1])}


def test_a_torn_last_row_is_skipped_and_a_missing_folder_gives_nothing(tmp_path):
    write_live_metrics(tmp_path / "dvclive", {"loss_D": [1.0, 0.8]})
    tsv = tmp_path / "dvclive" / "plots" / "metrics" / "loss_D.tsv"
    tsv.write_text(tsv.read_text() + "oops\tnot-a-number\n20\t0.")  # a bad row, then a row cut short
    assert read_dvclive_series(tmp_path / "dvclive")["loss_D"] == ([0.0, 10.0], [1.0, 0.8])
    assert read_dvclive_series(tmp_path / "nothing") == {}


def test_metrics_sharing_a_first_word_share_a_chart_and_losses_come_first():
    groups = chart_groups(["lr", "D_x", "loss_G", "D_G_z", "loss_D", "images_per_second"])
    assert list(groups) == ["loss", "D", "images_per_second", "lr"]
    assert groups["loss"] == ["loss_D", "loss_G"] and groups["D"] == ["D_G_z", "D_x"]


def test_curves_svg_is_one_standalone_svg_holding_every_chart():
    series = {"loss_D": ([0, 10], [1.0, 0.5]), "loss_G": ([0, 10], [2.0, 1.0]), "D_x": ([0, 10], [0.5, 0.7]), "lr": ([0, 10], [1e-4, 1e-4])}
    root = ET.fromstring(curves_svg(series, columns=2))
    charts = root.findall("{http://www.w3.org/2000/svg}g/{http://www.w3.org/2000/svg}svg")
    assert len(charts) == len(chart_groups(list(series))) == 3
    assert (root.get("width"), root.get("height")) == ("680", "400")  # two columns, two rows
    assert curves_svg({}) is None


def test_a_chart_is_valid_svg_with_one_line_per_series_and_one_point_per_step():
    svg = svg_line_chart("loss", {"loss_D": ([0, 10, 20], [1.0, 0.5, 0.7]), "loss_G": ([0, 10, 20], [2.0, 2.0, 2.0])})
    root = ET.fromstring(svg)
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 2 and all(len(line.get("points").split()) == 3 for line in lines)
    ys = [float(p.split(",")[1]) for p in lines[0].get("points").split()]
    assert ys[0] < ys[2] < ys[1]  # higher values are drawn higher up (smaller y)


def test_a_flat_or_single_point_series_still_draws():
    root = ET.fromstring(svg_line_chart("lr", {"lr": ([5], [0.0002])}))
    points = root.find("{http://www.w3.org/2000/svg}polyline").get("points")
    assert all(np.isfinite(float(v)) for p in points.split() for v in p.split(","))


def tiny_inputs(**changes):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    inputs = dict(
        title="iteration 40",
        subtitle="checkpoint <latest.pt> & friends",
        seed=3,
        metrics={"face_rate": 0.25, "iteration": 40, "custom_metric": 1.5},
        samples=images,
        test_images=images[:4],
        pairs=[NearestPair(images[0], images[1], 0.125)],
        threshold=0.2,
        progress_gif=None,
        curves={"loss_D": ([0, 10], [1.0, 0.5])},
        notes=["FID/KID skipped: no Inception weights at models/w.pth; download https://example.invalid/w.pth there"],
    )
    inputs.update(changes)
    return ReportInputs(**inputs)


def test_the_report_embeds_every_image_and_loads_nothing_from_elsewhere():
    page = render_report(tiny_inputs())
    sources = re.findall(r'\bsrc="([^"]*)"', page)
    assert len(sources) == 4  # samples grid, test grid, one pair
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'\b(href|src)="(https?:)?//', page) and "<link" not in page
    assert "$" not in re.sub(r"<script>.*?</script>", "", page, flags=re.S)  # every placeholder filled


def test_the_report_shows_metrics_notes_and_escapes_text():
    page = render_report(tiny_inputs())
    assert "<code>face_rate</code>" in page and "0.2500" in page and ">40<" in page and "custom_metric" in page
    assert "FID/KID skipped" in page and "&lt;latest.pt&gt; &amp; friends" in page
    assert "distance 0.1250" in page


def gif_bytes(side):
    frames = [Image.new("RGB", (side, side), colour) for colour in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def test_the_progress_gif_is_embedded_small_ones_at_twice_their_size():
    small, large = gif_bytes(100), gif_bytes(500)
    page = render_report(tiny_inputs(progress_gif=small))
    assert f'width="200" src="{data_uri(small, "image/gif")}"' in page
    assert f'width="500" src="{data_uri(large, "image/gif")}"' in render_report(tiny_inputs(progress_gif=large))


def test_a_missing_or_broken_progress_gif_becomes_a_note():
    assert "No progress.gif" in render_report(tiny_inputs())
    page = render_report(tiny_inputs(progress_gif=b"GIF89a then garbage"))
    assert "progress.gif could not be read" in page and "image/gif" not in page


def test_condition_accuracy_is_shown_beside_its_chance_levels_for_an_acgan():
    from evaluate.metrics.condition_accuracy import ConditionAccuracy

    accuracy = ConditionAccuracy(
        classifier_test={"hair": 0.95, "eyes": 0.8, "both": 0.76},
        classifier_majority={"hair": 0.2, "eyes": 0.25, "both": 0.05},
        condition={"hair": 0.9, "eyes": 0.5, "both": 0.45},
        condition_chance={"hair": 0.25, "eyes": 1 / 3, "both": 1 / 12},
    )
    page = render_report(tiny_inputs(model="acgan", condition_accuracy=accuracy, metrics=accuracy.metrics()))
    table = re.search(r'<table class="metrics" id="condition-accuracy">(.*?)</table>', page, re.S).group(1)
    cells = [re.findall(r'<td class="value">([^<]*)</td>', row) for row in table.split("</tr>") if "<td" in row]
    assert cells == [["90.0%", "50.0%", "45.0%"], ["25.0%", "33.3%", "8.3%"], ["95.0%", "80.0%", "76.0%"], ["20.0%", "25.0%", "5.0%"]]
    assert "<code>condition_accuracy_hair</code>" in page and "<code>colour_classifier_majority_both</code>" in page


def test_a_dcgan_report_says_why_it_has_no_condition_accuracy():
    page = render_report(tiny_inputs())
    assert 'id="condition-accuracy"' not in page
    assert "unconditional DCGAN" in page and "train.model: acgan" in page
