"""The train stage with train.model: acgan on a tiny packed dataset with hair and eye colours.

Per-colour grids, checkpoint meta, class metrics, exact resume, restarts when the model or the
vocabularies change, `anigan generate --hair/--eyes`, and evaluation of an ACGAN checkpoint.
The dataset (tests/conftest.py, make_tiny_dataset with colors) has 4 hair and 3 eye colours.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from anigan.cli import cli, main
from anigan.params import load_params
from tests.conftest import TINY_EYES, TINY_HAIR, make_tiny_dataset
from tests.stages.test_train import TINY, assert_same_training_state, metric_steps, tiny_params
from gan.checkpoint import load_discriminator, load_generator, read_checkpoint
from evaluate.stage import run_evaluate
from train.loop import run_train

ACGAN = {"train.model": "acgan", "train.min_color_count": 5}
HAIR, EYES = sorted(TINY_HAIR), sorted(TINY_EYES)


def train(dataset, run_dir, **overrides):
    return run_train(tiny_params(**{**ACGAN, **overrides}), dataset_dir=dataset, run_dir=run_dir)


def grid_rows(path, size=32, padding=2):
    """The faces of a sample grid, as an array (rows, columns, size, size, 3)."""
    with Image.open(path) as im:
        grid = np.asarray(im.convert("RGB"))
    rows, columns = (grid.shape[0] - padding) // (size + padding), (grid.shape[1] - padding) // (size + padding)
    faces = [
        [grid[padding + r * (size + padding) :][:size, padding + c * (size + padding) :][:, :size] for c in range(columns)]
        for r in range(rows)
    ]
    return np.asarray(faces)


def test_acgan_trains_with_one_grid_row_per_hair_colour_and_logs_the_class_metrics(tiny_color_dataset, tmp_path):
    run_dir = tmp_path / "run"
    summary = train(tiny_color_dataset, run_dir)
    assert (summary.iteration, summary.train_images) == (6, 24)

    meta = read_checkpoint(run_dir / "checkpoints" / "latest.pt")["meta"]
    assert meta["model"] == "acgan" and meta["conditions"] == {"hair": HAIR, "eyes": EYES}
    assert meta["run"]["model"] == "acgan" and meta["run"]["conditions"] == meta["conditions"]

    # One row per hair colour, 8 faces a row; all rows share the noise, so the rows differ only by colour.
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step_000000.png", "step_000003.png", "step_000006.png"]
    with Image.open(run_dir / "samples" / "step_000006.png") as grid:
        assert grid.size == (8 * 34 + 2, len(HAIR) * 34 + 2)
    faces = grid_rows(run_dir / "samples" / "step_000006.png")
    assert faces.shape[:2] == (len(HAIR), 8)
    assert all(not np.array_equal(faces[0], faces[r]) for r in range(1, len(HAIR)))
    with Image.open(run_dir / "progress.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (8 * 34 + 2, len(HAIR) * 34 + 2 + 14)

    metrics = json.loads((run_dir / "dvclive" / "metrics.json").read_text())
    for name in ("loss_D", "loss_G", "D_x", "D_G_z", "class_loss_D", "class_loss_G", "hair_accuracy_real", "eyes_accuracy_real"):
        assert np.isfinite(metrics[name]), name
        assert metric_steps(run_dir, name) == [1, 2, 3, 4, 5, 6]
    assert 0 <= metrics["hair_accuracy_real"] <= 1 and metrics["class_loss_D"] > 0

    generator, meta = load_generator(run_dir, "cpu")
    discriminator, _ = load_discriminator(run_dir, "cpu")
    with torch.no_grad():
        images = generator(torch.randn(3, 8, 1, 1), torch.tensor([[0, 0], [1, 2], [3, 1]]))
        logits, hair, eyes = discriminator(images, classes=True)
    assert images.shape == (3, 3, 32, 32) and discriminator(images).shape == (3,)
    assert hair.shape == (3, len(HAIR)) and eyes.shape == (3, len(EYES))


def test_the_discriminator_learns_to_name_the_hair_colour_of_real_faces(tiny_color_dataset, tmp_path):
    # Drawn hair is a big flat patch of colour: within 40 steps D's hair head names it well above
    # chance (1 in 4) over the last 10 steps, even at these tiny widths.
    overrides = {"lr": 0.001, "train.log_every": 10, "train.sample_every": 40, "train.checkpoint_every": 40}
    summary = train(tiny_color_dataset, tmp_path / "run", iterations=40, **overrides)
    assert summary.metrics["hair_accuracy_real"] > 0.4


def test_a_crash_between_checkpoints_resumes_to_what_an_uninterrupted_acgan_run_gives(tiny_color_dataset, tmp_path):
    train(tiny_color_dataset, tmp_path / "straight", iterations=8)

    def crash_at_5(progress):
        if progress.iteration == 5:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        run_train(tiny_params(**ACGAN, iterations=8), dataset_dir=tiny_color_dataset, run_dir=tmp_path / "crashed", on_progress=crash_at_5)
    resumed = train(tiny_color_dataset, tmp_path / "crashed", iterations=8)
    assert resumed.resumed_from == 4
    assert_same_training_state(tmp_path / "straight" / "checkpoints" / "latest.pt", tmp_path / "crashed" / "checkpoints" / "latest.pt")
    assert metric_steps(tmp_path / "crashed", "hair_accuracy_real") == list(range(1, 9))
    for name in ("step_000006.png", "step_000008.png"):
        assert (tmp_path / "straight" / "samples" / name).read_bytes() == (tmp_path / "crashed" / "samples" / name).read_bytes()


@pytest.mark.slow
def test_switching_model_or_colour_vocabulary_starts_over_and_the_same_settings_resume(tiny_color_dataset, tmp_path):
    run_dir = tmp_path / "run"
    assert run_train(tiny_params(iterations=4), dataset_dir=tiny_color_dataset, run_dir=run_dir).resumed_from == 0  # dcgan
    assert train(tiny_color_dataset, run_dir, iterations=4).resumed_from == 0
    assert train(tiny_color_dataset, run_dir, iterations=6).resumed_from == 4
    assert train(tiny_color_dataset, run_dir, iterations=6, **{"train.class_weight": 0.5}).resumed_from == 0
    assert run_train(tiny_params(iterations=6), dataset_dir=tiny_color_dataset, run_dir=run_dir).resumed_from == 0
    meta = read_checkpoint(run_dir / "checkpoints" / "latest.pt")["meta"]
    assert meta["model"] == "dcgan" and "conditions" not in meta


def test_rare_hair_colours_fold_into_other_with_hinge_loss_too(tmp_path):
    # 26 faces: black and blonde hair 7 times each, blue and pink 6 times; eyes 9, 9, 8.
    dataset = make_tiny_dataset(tmp_path / "dataset", train=26, colors=True)
    run_dir = tmp_path / "run"
    train(dataset, run_dir, iterations=3, **{"train.min_color_count": 7, "train.loss": "hinge"})
    meta = read_checkpoint(run_dir / "checkpoints" / "latest.pt")["meta"]
    assert meta["conditions"] == {"hair": ["black", "blonde", "other"], "eyes": EYES}
    assert grid_rows(run_dir / "samples" / "step_000003.png").shape[:2] == (3, 8)


def test_with_more_eye_colours_than_columns_the_grid_widens_so_each_row_shows_every_eye_colour(tmp_path):
    dataset = make_tiny_dataset(tmp_path / "dataset", train=27, colors=True)
    index = dataset / "train.jsonl"
    many_eyes = [f"eyes{k}" for k in range(9)]
    rows = [json.loads(line) for line in index.read_text().splitlines()]
    index.write_text("".join(json.dumps({**r, "eye_color": many_eyes[i % 9]}) + "\n" for i, r in enumerate(rows)))
    run_dir = tmp_path / "run"
    train(dataset, run_dir, iterations=1, **{"train.min_color_count": 1})
    assert read_checkpoint(run_dir / "checkpoints" / "latest.pt")["meta"]["conditions"]["eyes"] == many_eyes
    assert grid_rows(run_dir / "samples" / "step_000001.png").shape[:2] == (len(HAIR), 9)


def test_acgan_on_a_dataset_without_colours_is_a_one_line_error(tiny_dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["-S", "train.model=acgan", "train", "--dataset", str(tiny_dataset), "--run-dir", "run"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "needs at least 2 hair colours with train.min_color_count = 10" in err and "unknown 24" in err
    assert err.count("\n") == 1 and not (tmp_path / "run" / "checkpoints").exists()


@pytest.fixture
def acgan_run(tiny_color_dataset, tmp_path):
    train(tiny_color_dataset, tmp_path / "run", iterations=3)
    return tmp_path / "run"


def test_generate_draws_the_asked_colours(acgan_run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def generate(*args):
        result = CliRunner().invoke(cli, ["generate", "--checkpoint", str(acgan_run), "--n", "4", "--device", "cpu", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert "seed 0, blue hair, red eyes) -> blue.png and faces/" in generate("--hair", "blue", "--eyes", "red", "--out", "blue.png", "--out-dir", "faces")
    assert sorted(p.name for p in (tmp_path / "faces").iterdir()) == [f"0_{i:04d}.png" for i in range(4)]
    generate("--hair", "Blue", "--eyes", "red", "--out", "again.png")
    generate("--hair", "pink", "--eyes", "red", "--out", "pink.png")
    assert "any hair, any eyes" in generate("--out", "any.png")
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "blue.png").read_bytes()
    assert (tmp_path / "pink.png").read_bytes() != (tmp_path / "blue.png").read_bytes()  # same noise, another colour

    help_text = CliRunner().invoke(cli, ["generate", "--help"]).output
    assert "--hair COLOUR" in help_text and "--eyes COLOUR" in help_text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hair", "green"], "hair colour 'green': this checkpoint knows black, blonde, blue, pink"),
        (["--eyes", "yellow"], "eyes colour 'yellow': this checkpoint knows blue, green, red"),
    ],
)
def test_an_unknown_colour_lists_the_colours_the_checkpoint_knows(acgan_run, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["generate", "--checkpoint", str(acgan_run), "--out", "g.png", *args])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "g.png").exists()


def test_a_dcgan_checkpoint_refuses_colours(tiny_dataset, tmp_path, monkeypatch, capsys):
    run_train(tiny_params(iterations=2), dataset_dir=tiny_dataset, run_dir=tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(["generate", "--checkpoint", "run", "--out", "g.png", "--hair", "blue"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "unconditional DCGAN: it takes no hair or eye colour" in err and err.count("\n") == 1


@pytest.mark.slow  # the face-rate detector over every sample set: about a minute on 2 CPU cores
def test_evaluate_scores_an_acgan_checkpoint(acgan_run, tiny_color_dataset, tmp_path):
    params = load_params(
        None,
        {
            "paths.dataset": str(tiny_color_dataset),
            "paths.train_run": str(acgan_run),
            "paths.evaluate_run": str(tmp_path / "evaluate"),
            "evaluate.num_samples": 16,
            "evaluate.msssim_pairs": 20,
            "evaluate.inception_weights": str(tmp_path / "no-weights.pth"),
            "evaluate.device": "cpu",
        },
    )
    summary = run_evaluate(params)
    assert summary.metrics["iteration"] == 3 and summary.metrics["num_samples"] == 16
    assert (tmp_path / "evaluate" / "report.html").is_file()


def test_the_cli_prints_the_class_metrics(tiny_color_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = [f"-S{k}={v}" for k, v in {**TINY, **ACGAN}.items()]
    result = CliRunner().invoke(cli, [*overrides, "train", "--dataset", str(tiny_color_dataset), "--run-dir", "run", "--iterations", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "colour classes: class_loss_D" in result.output and "D names real hair" in result.output
