"""The train stage on a tiny packed dataset: every image size, outputs, resume, NaN, signals, generate.

Tiny widths and 32 px keep each run to about a second on a 2-core CPU; deterministic mode makes
"resumed equals uninterrupted" an exact comparison.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from click.testing import CliRunner
from PIL import Image

from anigan.cli import cli, main
from anigan.params import load_params
from tests.conftest import make_tiny_dataset
from gan.checkpoint import load_discriminator, load_generator, read_checkpoint
from train.loop import TrainingDiverged, TrainingInterrupted, run_train

TINY = {
    "train.nz": 8,
    "train.ngf": 4,
    "train.ndf": 4,
    "train.batch_size": 8,
    "train.log_every": 1,
    "train.sample_every": 3,
    "train.checkpoint_every": 2,
    "train.deterministic": True,
    "iterations": 6,
}


def tiny_params(**overrides):
    return load_params(None, {**TINY, **overrides})


def train(dataset, run_dir, **overrides):
    return run_train(tiny_params(**overrides), dataset_dir=dataset, run_dir=run_dir)


def assert_same_training_state(path_a, path_b):
    a, b = read_checkpoint(path_a), read_checkpoint(path_b)
    assert a["meta"]["iteration"] == b["meta"]["iteration"]
    for key in ("generator", "generator_ema", "discriminator"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs"
    for key in ("optimizer_g", "optimizer_d"):
        for param_id, state in a[key]["state"].items():
            for name, tensor in state.items():
                assert torch.equal(tensor, b[key]["state"][param_id][name]), f"{key} {param_id}.{name} differs"


def metric_steps(run_dir, name="loss_D"):
    lines = (run_dir / "dvclive" / "plots" / "metrics" / f"{name}.tsv").read_text().split("\n")[1:]
    return [int(line.split("\t")[0]) for line in lines if line.strip()]


@pytest.mark.parametrize("size", [32, 64, pytest.param(128, marks=pytest.mark.slow)])
def test_each_image_size_trains_and_writes_checkpoint_samples_gif_and_dvclive(tmp_path, size):
    dataset = make_tiny_dataset(tmp_path / "dataset", train=12, test=4, size=size)
    run_dir = tmp_path / "run"
    summary = train(dataset, run_dir)

    assert (summary.iteration, summary.image_size, summary.train_images, summary.resumed_from) == (6, size, 12, 0)
    state = read_checkpoint(run_dir / "checkpoints" / "latest.pt")
    assert state["meta"]["iteration"] == 6 and state["meta"]["image_size"] == size
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("step_*.pt")) == ["step_000004.pt", "step_000006.pt"]  # keep_checkpoints: 2

    samples = sorted(p.name for p in (run_dir / "samples").iterdir())
    assert samples == ["step_000000.png", "step_000003.png", "step_000006.png"]
    with Image.open(run_dir / "samples" / "step_000006.png") as grid:
        assert grid.size == (8 * (size + 2) + 2,) * 2  # 8 x 8 faces with 2 px padding
        final = np.asarray(grid.convert("RGB"))
    with Image.open(run_dir / "samples" / "step_000000.png") as grid:
        assert not np.array_equal(np.asarray(grid.convert("RGB")), final)  # the generator changed
    with Image.open(run_dir / "progress.gif") as gif:
        assert gif.n_frames == 3

    metrics = json.loads((run_dir / "dvclive" / "metrics.json").read_text())
    assert metrics["step"] == 6
    for name in ("loss_D", "loss_G", "D_x", "D_G_z", "images_per_second", "lr"):
        assert np.isfinite(metrics[name]), name
        assert metric_steps(run_dir, name) == [1, 2, 3, 4, 5, 6]
    assert 0 < metrics["D_x"] < 1 and metrics["lr"] == pytest.approx(0.0002)
    assert (run_dir / "dvclive" / "plots" / "images" / "samples.png").is_file()


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_and_the_resumed_run_equals_an_uninterrupted_one(tiny_dataset, tmp_path):
    train(tiny_dataset, tmp_path / "straight", iterations=8)

    def send_sigterm_at_3(progress):
        if progress.iteration == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted) as stopped:
        run_train(tiny_params(iterations=8), dataset_dir=tiny_dataset, run_dir=tmp_path / "stopped", on_progress=send_sigterm_at_3)
    # The signal lands during step 3's logging; the loop stops after the next step, checkpointed.
    assert stopped.value.signal_name == "SIGTERM" and stopped.value.iteration == 4
    assert read_checkpoint(tmp_path / "stopped" / "checkpoints" / "latest.pt")["meta"]["iteration"] == 4
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is gone again

    resumed = train(tiny_dataset, tmp_path / "stopped", iterations=8)
    assert resumed.resumed_from == 4 and resumed.iteration == 8
    assert_same_training_state(tmp_path / "straight" / "checkpoints" / "latest.pt", tmp_path / "stopped" / "checkpoints" / "latest.pt")
    assert metric_steps(tmp_path / "stopped") == list(range(1, 9))


@pytest.mark.slow
def test_a_crash_between_checkpoints_resumes_from_the_last_one_without_duplicate_log_rows(tiny_dataset, tmp_path):
    train(tiny_dataset, tmp_path / "straight", iterations=8)

    def crash_at_5(progress):
        if progress.iteration == 5:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        run_train(tiny_params(iterations=8), dataset_dir=tiny_dataset, run_dir=tmp_path / "crashed", on_progress=crash_at_5)
    assert read_checkpoint(tmp_path / "crashed" / "checkpoints" / "latest.pt")["meta"]["iteration"] == 4

    resumed = train(tiny_dataset, tmp_path / "crashed", iterations=8)
    assert resumed.resumed_from == 4
    assert_same_training_state(tmp_path / "straight" / "checkpoints" / "latest.pt", tmp_path / "crashed" / "checkpoints" / "latest.pt")
    assert metric_steps(tmp_path / "crashed") == list(range(1, 9))  # steps 5 was logged twice, kept once
    assert sorted(p.name for p in (tmp_path / "crashed" / "samples").iterdir()) == sorted(
        p.name for p in (tmp_path / "straight" / "samples").iterdir()
    )


@pytest.mark.slow
def test_raising_iterations_extends_a_finished_run_and_other_settings_start_over(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_dataset, run_dir, iterations=4)
    assert train(tiny_dataset, run_dir, iterations=6).resumed_from == 4
    again = train(tiny_dataset, run_dir, iterations=6)
    assert (again.resumed_from, again.iteration) == (6, 6)  # nothing left to do

    changed = train(tiny_dataset, run_dir, iterations=4, lr=0.001)
    assert changed.resumed_from == 0
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step_000000.png", "step_000003.png", "step_000004.png"]
    assert metric_steps(run_dir) == [1, 2, 3, 4]

    make_tiny_dataset(tiny_dataset, seed=1)  # new training images: a new run
    assert train(tiny_dataset, run_dir, iterations=6, lr=0.001).resumed_from == 0


def test_an_absurd_learning_rate_stops_with_a_clear_error_and_writes_no_bad_checkpoint(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as diverged:
        train(tiny_dataset, run_dir, lr=1e15, iterations=20, **{"train.checkpoint_every": 1})
    message = str(diverged.value)
    assert message.startswith("training diverged:") and "Lower the learning rate (lr = 1e+15)" in message
    latest = run_dir / "checkpoints" / "latest.pt"
    if latest.exists():  # whatever was written before the blow-up holds only finite weights
        kept = read_checkpoint(latest)
        assert f"iteration {kept['meta']['iteration']}" in message
        assert all(torch.isfinite(t).all() for key in ("generator", "discriminator") for t in kept[key].values())


def test_a_nan_loss_keeps_the_last_good_checkpoint_untouched(tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    train(tiny_dataset, run_dir, iterations=4)
    latest = run_dir / "checkpoints" / "latest.pt"
    # Inject a NaN into the discriminator's Adam state: its next update poisons D's weights and
    # the losses of that very step.
    state = torch.load(latest, weights_only=True)
    state["optimizer_d"]["state"][0]["exp_avg"].fill_(float("nan"))
    torch.save(state, latest)
    good = latest.read_bytes()

    with pytest.raises(TrainingDiverged) as diverged:
        train(tiny_dataset, run_dir, iterations=8)
    message = str(diverged.value)
    assert "became nan between iterations 5 and 5" in message
    assert f"the last good checkpoint is {latest} (iteration 4), left as it was" in message
    assert latest.read_bytes() == good
    assert metric_steps(run_dir) == [1, 2, 3, 4]  # the bad window is not logged


def test_hinge_loss_and_no_ema_train_too(tiny_dataset, tmp_path):
    train(tiny_dataset, tmp_path / "run", **{"train.loss": "hinge", "train.ema": False, "iterations": 3})
    generator, meta = load_generator(tmp_path / "run", "cpu")
    assert meta["weights"] == "generator" and meta["loss"] == "hinge" and meta["iteration"] == 3


def test_the_trained_networks_load_for_evaluation(tiny_dataset, tmp_path):
    train(tiny_dataset, tmp_path / "run")
    generator, meta = load_generator(tmp_path / "run" / "checkpoints" / "latest.pt", "cpu")
    assert meta["weights"] == "ema" and (meta["nz"], meta["ngf"], meta["image_size"], meta["iteration"]) == (8, 4, 32, 6)
    with torch.no_grad():
        images = generator(torch.randn(5, meta["nz"], 1, 1))
        logits = load_discriminator(tmp_path / "run", "cpu")[0](images)
    assert images.shape == (5, 3, 32, 32) and logits.shape == (5,)


def test_train_and_generate_commands(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = [f"-S{k}={v}" for k, v in TINY.items()]
    result = CliRunner().invoke(cli, [*overrides, "train", "--dataset", str(tiny_dataset), "--run-dir", "run", "--iterations", "4"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "trained to iteration 4 (fresh start) on 24 faces of 32x32" in result.output

    def generate(*args):
        result = CliRunner().invoke(cli, ["generate", "--checkpoint", "run", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    output = generate("--n", "5", "--seed", "1", "--out", "grid.png", "--out-dir", "faces", "--device", "cpu")
    assert "5 faces of 32x32" in output and "iteration 4, ema weights, seed 1" in output
    singles = sorted((tmp_path / "faces").iterdir())
    assert [p.name for p in singles] == [f"1_{i:04d}.png" for i in range(5)]
    with Image.open(singles[0]) as face:
        assert face.size == (32, 32) and face.mode == "RGB"
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.size == (3 * 34 + 2, 2 * 34 + 2)  # 5 faces in a 3-wide grid
    generate("--n", "5", "--seed", "1", "--out", "again.png")
    generate("--n", "5", "--seed", "2", "--out", "other.png")
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "grid.png").read_bytes()
    assert (tmp_path / "other.png").read_bytes() != (tmp_path / "grid.png").read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--dataset", "nowhere"], "run the split stage first"),
        (["generate", "--checkpoint", "nowhere", "--out", "g.png"], "no checkpoint there"),
        (["generate", "--checkpoint", "nowhere"], "nothing to write"),
        (["-S", "lr=0", "train"], "train.lr = 0: must be a number > 0"),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.slow
def test_ctrl_c_on_a_real_process_saves_a_checkpoint_and_exits_130(tiny_dataset, tmp_path):
    overrides = [f"-S{k}={v}" for k, v in TINY.items()]
    command = [sys.executable, "-m", "anigan", "-v", *overrides, "train", "--dataset", str(tiny_dataset), "--run-dir", "run", "--iterations", "100000"]
    proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # wait for training to be under way, by its own log lines
        seen.append(line)
        if "iteration 3:" in line:
            break
    else:
        proc.wait()
        pytest.fail("training never reached iteration 3:\n" + "".join(seen))
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, rest
    stopped_at = read_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["meta"]["iteration"]
    assert 3 <= stopped_at < 100000
    assert f"stopped by SIGINT at iteration {stopped_at}" in rest and "run again to resume" in rest


@pytest.mark.slow
def test_compiled_models_train_and_checkpoint_the_plain_weights(tiny_dataset, tmp_path):
    train(tiny_dataset, tmp_path / "run", iterations=4, **{"train.compile": True, "train.deterministic": False})
    generator, meta = load_generator(tmp_path / "run", "cpu")  # no "_orig_mod." prefixes in the keys
    assert meta["iteration"] == 4 and generator(torch.randn(2, 8, 1, 1)).shape == (2, 3, 32, 32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_training_on_cuda_finishes(tiny_dataset, tmp_path):
    # On an H200 with torch 2.11 the compiled backward stopped on a stride assertion (pytorch/pytorch#171622):
    # the run must still finish, compiled or not.
    summary = train(tiny_dataset, tmp_path / "run", iterations=4, **{"train.compile": True, "train.deterministic": False, "train.device": "cuda"})
    assert summary.device.startswith("cuda") and summary.iteration == 4
    assert all(np.isfinite(value) for value in summary.metrics.values())


class CompiledThatFailsAtThirdCall(nn.Module):
    """Stands in for torch.compile's module where compiling fails: the real module runs (so weights,
    batch-norm statistics and optimizer moments have moved, as they had when the real failure came),
    then its third call raises. D is called three times in a step, after its optimizer's step."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self._orig_mod = module
        self.calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 3:
            raise AssertionError("expected size 16==16, stride 16==1 at dim=1 (a compiled backward)")
        return self._orig_mod(*args, **kwargs)


def test_models_that_fail_to_compile_train_as_if_never_compiled(tiny_dataset, tmp_path, monkeypatch, caplog):
    plain = train(tiny_dataset, tmp_path / "plain", iterations=4)
    monkeypatch.setattr(torch, "compile", CompiledThatFailsAtThirdCall)
    with caplog.at_level("WARNING"):
        fallen_back = train(tiny_dataset, tmp_path / "fallen-back", iterations=4, **{"train.compile": True})
    assert "failed at their first step" in caplog.text and "goes on without torch.compile" in caplog.text
    for name in ("loss_D", "loss_G", "D_x", "D_G_z"):
        assert fallen_back.metrics[name] == plain.metrics[name]
    assert_same_training_state(tmp_path / "plain" / "checkpoints" / "latest.pt", tmp_path / "fallen-back" / "checkpoints" / "latest.pt")
