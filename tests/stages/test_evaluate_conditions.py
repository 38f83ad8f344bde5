"""Condition accuracy in the evaluate stage: written for ACGAN checkpoints, absent (with the reason) for DCGANs,
and, for an ACGAN really trained on demo faces, above chance.
"""

from __future__ import annotations

import json
import re

import pytest

from anigan.params import load_params
from tests.conftest import make_tiny_dataset
from tests.stages.test_train import tiny_params
from train.evaluate import run_evaluate
from train.loop import run_train

PARTS = ("hair", "eyes", "both")
CONDITION_METRICS = {
    f"{name}_{part}"
    for name in ("condition_accuracy", "condition_chance", "colour_classifier_test", "colour_classifier_majority")
    for part in PARTS
}


def evaluate(dataset, run_dir, out_dir, **overrides):
    params = load_params(
        None,
        {
            "paths.dataset": str(dataset),
            "paths.train_run": str(run_dir),
            "paths.evaluate_run": str(out_dir),
            "evaluate.num_samples": 16,
            "evaluate.msssim_pairs": 20,
            "evaluate.nn_pairs": 0,
            "evaluate.classifier_steps": 10,
            "evaluate.device": "cpu",
            "evaluate.inception_weights": str(out_dir / "no-weights.pth"),
            **overrides,
        },
    )
    return run_evaluate(params)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(dataset, {"acgan": run, "dcgan": run}): two iterations each on the tiny colour dataset."""
    root = tmp_path_factory.mktemp("evaluate_conditions")
    dataset = make_tiny_dataset(root / "dataset", train=48, test=16, colors=True)
    trained = {}
    for model, extra in (("acgan", {"train.min_color_count": 5}), ("dcgan", {})):
        trained[model] = root / model
        run_train(tiny_params(**{"train.model": model, "iterations": 2, **extra}), dataset_dir=dataset, run_dir=trained[model])
    return dataset, trained


def test_an_acgan_checkpoint_gets_condition_accuracy_beside_its_chance_levels(runs, tmp_path):
    dataset, trained = runs
    summary = evaluate(dataset, trained["acgan"], tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == summary.metrics and CONDITION_METRICS <= set(metrics)
    assert all(0 <= metrics[k] <= 1 for k in CONDITION_METRICS)
    assert (metrics["condition_chance_hair"], metrics["condition_chance_eyes"]) == (1 / 4, 1 / 3)  # 4 hair, 3 eye colours
    page = (tmp_path / "report.html").read_text()
    table = re.search(r'<table class="metrics" id="condition-accuracy">(.*?)</table>', page, re.S).group(1)
    assert table.count("<tr>") == 5 and "25.0%" in table  # a header and four rows; hair chance 1/4


def test_a_dcgan_checkpoint_has_no_condition_keys_and_the_report_says_why(runs, tmp_path):
    dataset, trained = runs
    summary = evaluate(dataset, trained["dcgan"], tmp_path)
    assert not CONDITION_METRICS & set(summary.metrics)
    page = (tmp_path / "report.html").read_text()
    assert 'id="condition-accuracy"' not in page and "unconditional DCGAN" in page


@pytest.mark.slow  # trains an ACGAN for real: a minute or two on a 2-core CPU
def test_an_acgan_trained_on_flat_coloured_faces_draws_the_colours_asked_for_above_chance(tmp_path):
    # Flat hair caps and irises in the faces stage's reference colours (4 hair, 3 eye colours). On
    # the demo booru's faces (10 hair, 8 eye colours) 300 steps reach only about 0.14-0.23 hair
    # accuracy against a chance of 0.10: above chance, but too close to assert without flakiness.
    dataset = make_tiny_dataset(tmp_path / "dataset", train=256, test=64, colors=True)
    run_dir = tmp_path / "run"
    train = {
        "train.model": "acgan", "train.min_color_count": 5, "train.class_weight": 2.0,
        "train.nz": 32, "train.ngf": 16, "train.ndf": 16, "train.batch_size": 32, "train.lr": 0.0008,
        "train.augment": "translation", "train.ema": False, "train.device": "cpu",
        "train.sample_every": 1000, "train.checkpoint_every": 1000, "train.log_every": 50, "iterations": 150,
    }  # fmt: skip
    run_train(load_params(None, train), dataset_dir=dataset, run_dir=run_dir)
    metrics = evaluate(dataset, run_dir, tmp_path / "evaluate", **{"evaluate.num_samples": 128, "evaluate.classifier_steps": 200}).metrics
    # The classifier is trustworthy: far above always naming the commonest colour.
    assert metrics["colour_classifier_test_hair"] >= metrics["colour_classifier_majority_hair"] + 0.5
    # 128 requests: chance is 1/4 with a standard error near 0.04, so this margin is no accident
    # (measured: 0.77 after 150 steps).
    assert metrics["condition_accuracy_hair"] >= metrics["condition_chance_hair"] + 0.25
    assert metrics["condition_accuracy_both"] >= metrics["condition_chance_both"] + 0.1
