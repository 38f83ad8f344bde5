"""The evaluate stage on a tiny trained run: metrics.json, report.html, determinism, FID plumbing, CLI, Chromium.

The run is trained once per module with tiny widths on 32 px drawn faces (a few seconds on a
2-core CPU); FID/KID run with a random-weights Inception file (the real one cannot be downloaded
here), so only their plumbing is checked, not their values.
"""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from anigan.cli import cli, main
from anigan.errors import UserError
from anigan.params import load_params
from tests.browser import chromium_command, needs_chromium
from tests.conftest import make_tiny_dataset
from evaluate.stage import run_evaluate
from train.loop import run_train
from evaluate.metrics.fid_kid import INCEPTION_WEIGHTS_URL

OFFLINE_METRICS = {
    "iteration", "num_samples", "num_train", "num_test",
    "face_rate", "face_rate_test", "face_rate_untrained", "msssim", "msssim_test",
    "nn_train_distance_mean", "nn_train_distance_min", "test_nn_train_distance_mean", "test_nn_train_distance_min",
    "memorized_share", "d_logit_train", "d_logit_test", "d_overfit_gap",
    "nn_train_references", "nn_test_images", "d_overfit_gap_stderr", "d_gap_train_images", "d_gap_test_images",
}  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(dataset folder, training run folder) of a 6-iteration run on 32 px faces."""
    root = tmp_path_factory.mktemp("evaluate")
    dataset = make_tiny_dataset(root / "dataset", train=32, test=6, size=32)
    params = load_params(
        None,
        {
            "paths.dataset": str(dataset),
            "paths.train_run": str(root / "run"),
            "train.nz": 8, "train.ngf": 4, "train.ndf": 4, "train.batch_size": 8,
            "train.log_every": 1, "train.sample_every": 3, "train.checkpoint_every": 3,
            "train.device": "cpu", "iterations": 6,
        },
    )  # fmt: skip
    run_train(params)
    return dataset, root / "run"


def evaluate_params(trained, out_dir, **overrides):
    dataset, run_dir = trained
    return load_params(
        None,
        {
            "paths.dataset": str(dataset),
            "paths.train_run": str(run_dir),
            "paths.evaluate_run": str(out_dir),
            "evaluate.num_samples": 16,
            "evaluate.msssim_pairs": 40,
            "evaluate.device": "cpu",
            "evaluate.inception_weights": "no-such-folder/no-such-weights.pth",
            **overrides,
        },
    )


@pytest.fixture(scope="module")
def evaluated(trained, tmp_path_factory):
    """One evaluation without Inception weights: (summary, output folder)."""
    out_dir = tmp_path_factory.mktemp("evaluated")
    return run_evaluate(evaluate_params(trained, out_dir)), out_dir


def test_offline_metrics_are_written_and_fid_is_skipped_with_one_line_naming_the_file(evaluated):
    summary, out_dir = evaluated
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics == summary.metrics and set(metrics) == OFFLINE_METRICS
    assert (metrics["iteration"], metrics["num_samples"], metrics["num_train"], metrics["num_test"]) == (6, 16, 32, 6)
    assert all(0 <= metrics[k] <= 1 for k in ("face_rate", "face_rate_test", "face_rate_untrained"))
    assert 0 < metrics["msssim"] <= 1 and 0 < metrics["msssim_test"] <= 1
    assert 0 <= metrics["memorized_share"] <= 1
    assert 0 <= metrics["test_nn_train_distance_min"] <= metrics["test_nn_train_distance_mean"]
    assert 0 <= metrics["nn_train_distance_min"] <= metrics["nn_train_distance_mean"]
    assert metrics["d_overfit_gap"] == pytest.approx(metrics["d_logit_train"] - metrics["d_logit_test"])
    assert summary.weights == "ema"
    [skipped] = summary.skipped
    assert "no-such-weights.pth" in skipped and INCEPTION_WEIGHTS_URL in skipped


def test_the_report_embeds_samples_progress_curves_and_pairs(evaluated):
    _, out_dir = evaluated
    page = (out_dir / "report.html").read_text()
    sources = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert sum(s.startswith("data:image/gif;base64,") for s in sources) == 1  # the training progress GIF
    assert sum(s.startswith("data:image/png;base64,") for s in sources) == 2 + 2 * 8  # two grids, eight pairs
    assert len(re.findall(r"<svg ", page)) >= 2  # loss curves from the run's DVCLive folder
    assert "loss_D" in page and "FID/KID skipped" in page


def test_small_splits_are_used_whole_and_the_report_says_so(evaluated):
    summary, out_dir = evaluated
    m = summary.metrics
    assert (m["nn_train_references"], m["nn_test_images"], m["d_gap_train_images"], m["d_gap_test_images"]) == (32, 6, 16, 6)
    page = (out_dir / "report.html").read_text()
    assert ">32 of 32<" in page and ">6 of 6<" in page


def test_capped_subsets_are_seeded_recorded_in_metrics_and_report(trained, evaluated, tmp_path):
    caps = {"evaluate.nn_train_references": 10, "evaluate.nn_test_images": 3, "evaluate.metrics": ["memorization", "overfitting"]}
    summary = run_evaluate(evaluate_params(trained, tmp_path / "capped", **caps))
    m = summary.metrics
    assert (m["nn_train_references"], m["nn_test_images"], m["num_train"]) == (10, 3, 32)
    # Fewer references can only leave each query as far as, or farther from, its nearest one.
    assert m["nn_train_distance_mean"] >= evaluated[0].metrics["nn_train_distance_mean"]
    assert ">10 of 32<" in (tmp_path / "capped" / "report.html").read_text()
    assert run_evaluate(evaluate_params(trained, tmp_path / "again", **caps)).metrics == m


def test_the_same_seed_gives_the_same_metrics_and_report_and_another_seed_other_samples(trained, evaluated, tmp_path):
    summary, out_dir = evaluated
    again = run_evaluate(evaluate_params(trained, tmp_path / "again"))
    assert again.metrics == summary.metrics
    assert (tmp_path / "again" / "report.html").read_bytes() == (out_dir / "report.html").read_bytes()
    other = run_evaluate(evaluate_params(trained, tmp_path / "other", **{"evaluate.seed": 1}))
    assert other.metrics["msssim"] != summary.metrics["msssim"]
    assert other.metrics["nn_train_distance_mean"] != summary.metrics["nn_train_distance_mean"]


@pytest.mark.slow  # FID's 2048x2048 eigenvalue problem alone takes 10-30 s on a 2-core CPU
def test_fid_and_kid_run_through_the_inception_weights_file(trained, random_inception_weights, tmp_path):
    # Inception takes about a second per image on a CPU: 2 samples against 2 test images.
    dataset = make_tiny_dataset(tmp_path / "dataset", train=8, test=2, size=32)
    params = evaluate_params(
        trained,
        tmp_path,
        **{
            "paths.dataset": str(dataset),
            "evaluate.num_samples": 2,
            "evaluate.inception_weights": str(random_inception_weights),
        },
    )
    summary = run_evaluate(params)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert summary.skipped == ()
    assert {"fid", "kid", "kid_std"} <= set(metrics)
    assert np.isfinite([metrics["fid"], metrics["kid"], metrics["kid_std"]]).all()
    assert metrics["fid"] > 0  # untrained samples vs drawn faces: clearly apart even in random features
    assert "<code>fid</code>" in (tmp_path / "report.html").read_text()


def test_a_single_test_image_skips_fid_and_test_diversity_with_reasons(trained, random_inception_weights, tmp_path):
    dataset = make_tiny_dataset(tmp_path / "dataset", train=8, test=1, size=32)
    overrides = {"paths.dataset": str(dataset), "evaluate.inception_weights": str(random_inception_weights)}
    summary = run_evaluate(evaluate_params(trained, tmp_path / "out", **overrides))
    assert "fid" not in summary.metrics and "msssim_test" not in summary.metrics
    assert any("at least 2 test images" in line for line in summary.skipped)
    assert any("msssim_test skipped" in line for line in summary.skipped)
    assert summary.metrics["num_test"] == 1 and 0 <= summary.metrics["memorized_share"] <= 1


def test_a_dataset_of_another_image_size_is_refused(trained, tmp_path):
    other = make_tiny_dataset(tmp_path / "dataset64", train=4, test=2, size=64)
    params = evaluate_params(trained, tmp_path / "out", **{"paths.dataset": str(other)})
    with pytest.raises(UserError, match="64 px but the generator makes 32 px"):
        run_evaluate(params)
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_the_command_prints_the_metrics_and_takes_a_checkpoint_option(trained, tmp_path):
    dataset, run_dir = trained
    args = [
        "-S", f"paths.dataset={dataset}", "-S", f"paths.evaluate_run={tmp_path}", "-S", "paths.train_run=nowhere",
        "-S", "evaluate.msssim_pairs=20", "-S", f"evaluate.inception_weights={tmp_path / 'none.pth'}",
        "evaluate", "--checkpoint", str(run_dir), "--num-samples", "8", "--device", "cpu",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "FID/KID skipped" in result.output and "face_rate" in result.output
    assert json.loads((tmp_path / "metrics.json").read_text())["num_samples"] == 8
    assert "image/gif" in (tmp_path / "report.html").read_text()  # the checkpoint's own run, not paths.train_run


def test_a_missing_checkpoint_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["-S", f"paths.train_run={tmp_path / 'run'}", "evaluate"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no checkpoint" in err and len(err.strip().splitlines()) == 1


@needs_chromium
def test_every_image_of_the_report_loads_in_headless_chromium(evaluated, tmp_path):
    _, out_dir = evaluated
    report = out_dir / "report.html"
    command = chromium_command(tmp_path / "profile", "--dump-dom", report.as_uri())
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    expected = len(re.findall(r"<img ", report.read_text()))
    assert expected == 19
    # The page's own script marks each image once the page has loaded.
    assert f'data-images-loaded="{expected}/{expected}"' in dom
    assert dom.count('data-loaded="yes"') == expected and 'data-loaded="no"' not in dom
