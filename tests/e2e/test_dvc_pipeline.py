"""The whole pipeline through real DVC in a throwaway copy of the repo: repro, no-op repro, an lr sweep point."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
STAGES = ("crawl", "faces", "dedupe", "split", "train", "evaluate")
PIPELINE_OUTPUTS = {"data", "runs", "dvc_plots", "models"}

# Tiny but real: the demo booru, a few dozen posts, a few training steps at 32 px.
TINY = {
    "iterations": 12,
    # A few dozen faces: at the default 0.1 a hash-based split can leave the test side empty by chance.
    "test_ratio": 0.3,
    "demo": {"posts": 40},
    "crawl": {"limit": 40},
    "split": {"image_size": 32},
    "train": {"ngf": 8, "ndf": 8, "batch_size": 16, "sample_every": 6, "checkpoint_every": 6, "log_every": 3},
    "evaluate": {"num_samples": 16},
}

pytestmark = pytest.mark.slow


def sh(args: list[str], cwd: Path) -> str:
    """Run a command in the copy with the project's venv first on PATH; fail with its output."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GIT_AUTHOR_NAME", "anigan-test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@anigan.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "anigan-test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@anigan.invalid")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{out[-6000:]}"
    return out


def deep_update(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict):
            deep_update(base.setdefault(key, {}), value)
        else:
            base[key] = value
    return base


def stages_run(output: str) -> set[str]:
    return {s for s in STAGES if f"Running stage '{s}'" in output}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git repo holding the working tree's files (tracked and new, not ignored), with tiny params."""
    dest = tmp_path_factory.mktemp("anigan-e2e")
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        # outputs of a pipeline run in this checkout (no longer git-ignored wholesale) stay behind
        if rel.split("/", 1)[0] in PIPELINE_OUTPUTS:
            continue
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params_path = dest / "params.yaml"
    params = deep_update(yaml.safe_load(params_path.read_text()), TINY)
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    for lock in ("dvc.lock",):
        (dest / lock).unlink(missing_ok=True)
    sh(["git", "init", "-q"], dest)
    sh(["git", "add", "-A"], dest)
    sh(["git", "commit", "-qm", "e2e copy"], dest)
    return dest


@pytest.fixture(scope="module")
def first_repro(project: Path) -> str:
    out = sh(["dvc", "repro"], project)
    sh(["git", "add", "-A"], project)
    sh(["git", "commit", "-qm", "repro"], project)
    return out


def test_repro_runs_every_stage_and_writes_each_contract(project, first_repro):
    assert stages_run(first_repro) == set(STAGES)
    for rel in (
        "data/raw/manifest.jsonl",
        "data/faces/manifest.jsonl",
        "data/dedup/manifest.jsonl",
        "data/dataset/train.npy",
        "data/dataset/card.json",
        "runs/train/progress.gif",
        "runs/evaluate/metrics.json",
        "runs/evaluate/report.html",
    ):
        assert (project / rel).is_file(), rel
    metrics = json.loads((project / "runs/evaluate/metrics.json").read_text())
    assert metrics, "evaluate wrote no metrics"


def test_second_repro_does_nothing(project, first_repro):
    out = sh(["dvc", "repro"], project)
    assert stages_run(out) == set(), out


def stages_changed(project: Path) -> set[str]:
    """The stages `dvc status` says would rerun (their own deps changed)."""
    return set(json.loads(sh(["dvc", "status", "--json"], project) or "{}"))


@pytest.mark.parametrize(
    ("edited", "must_rerun"),
    [
        ("anigan/ids.py", {"crawl", "faces", "split", "train"}),  # the face ID and the split's hash fraction
        ("preprocess/boxes.py", {"faces", "dedupe"}),
        ("gan/models.py", {"train", "evaluate"}),
        ("draw/serve.py", set()),  # the page: no stage runs it
        ("anigan/doctor.py", set()),  # a command, not a stage
    ],
)
def test_editing_code_reruns_exactly_the_stages_that_run_it(project, first_repro, edited, must_rerun):
    path = project / edited
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\n# an edit\n")
        assert stages_changed(project) == must_rerun
    finally:
        path.write_bytes(original)
    assert stages_changed(project) == set()


def test_lr_sweep_point_reruns_only_train_and_evaluate_and_shows_in_exp_show(project, first_repro):
    out = sh(["dvc", "exp", "run", "-S", "lr=0.0001"], project)
    assert stages_run(out) == {"train", "evaluate"}, out
    table = json.loads(sh(["dvc", "exp", "show", "--json"], project))
    assert 0.0001 in swept_results(table), "the swept lr is not in dvc exp show with evaluate's metrics"


def test_queued_sweep_runs_with_queue_start_and_lists_params_beside_metrics(project, first_repro):
    for lr in ("0.0003", "0.0004"):
        sh(["dvc", "exp", "run", "--queue", "-S", f"lr={lr}"], project)
    sh(["dvc", "queue", "start"], project)
    # The queue's worker runs in the background: wait for it, as a user watching `dvc queue status` would.
    deadline = time.monotonic() + 1200
    while re.search(r"\b(Queued|Running)\b", status := sh(["dvc", "queue", "status"], project)):
        assert time.monotonic() < deadline, status
        time.sleep(1)
    assert "Failed" not in status, status
    results = swept_results(json.loads(sh(["dvc", "exp", "show", "--json"], project)))
    assert {0.0003, 0.0004} <= set(results), results


def swept_results(table) -> dict[float, dict]:
    """lr -> evaluate's metrics, for every commit and experiment in `dvc exp show --json` whose metrics were read."""
    found = {}
    for data in exp_data(table):
        metrics = (data.get("metrics", {}).get("runs/evaluate/metrics.json") or {}).get("data", {})
        if "face_rate" in metrics:
            found[params_of(data)["lr"]] = metrics
    return found


def exp_data(node):
    """Every experiment's `data` record in `dvc exp show --json` output, however deeply nested."""
    if isinstance(node, dict):
        if isinstance(node.get("data"), dict) and "params" in node["data"]:
            yield node["data"]
        for value in node.values():
            yield from exp_data(value)
    elif isinstance(node, list):
        for item in node:
            yield from exp_data(item)


def params_of(data: dict) -> dict:
    return (data.get("params", {}).get("params.yaml") or {}).get("data", {})


def test_switching_to_acgan_reruns_train_and_evaluate_with_the_conditional_model(project, first_repro):
    # Last in the module: it leaves train.model = acgan in the copy's params.yaml.
    from gan.checkpoint import read_checkpoint

    out = sh(["dvc", "exp", "run", "-S", "train.model=acgan", "-S", "train.min_color_count=1"], project)
    assert stages_run(out) == {"train", "evaluate"}, out
    meta = read_checkpoint(project / "runs/train/checkpoints/latest.pt")["meta"]
    assert meta["model"] == "acgan" and meta["iteration"] == TINY["iterations"] and len(meta["conditions"]["hair"]) >= 2
    assert "hair_accuracy_real" in json.loads((project / "runs/train/dvclive/metrics.json").read_text())
    assert json.loads((project / "runs/evaluate/metrics.json").read_text())["iteration"] == TINY["iterations"]
