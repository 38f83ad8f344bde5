"""Checkpoints: atomic, weights_only-loadable, EMA preferred, bad files refused with one line."""

import pickle

import pytest
import torch

from anigan.errors import UserError
from gan import checkpoint as ckpt
from train.ema import EMA
from gan.models import Discriminator, Generator, build_models


def make_state(iteration=7, ema=True):
    generator, discriminator = build_models(nz=8, ngf=4, ndf=4, image_size=32, seed=0)
    averaged = EMA(generator, 0.9).model if ema else None
    if averaged is not None:
        with torch.no_grad():
            averaged.main[0].weight.fill_(0.5)  # tell the EMA weights apart from the raw ones
    return {
        "meta": {"nz": 8, "ngf": 4, "ndf": 4, "image_size": 32, "iteration": iteration, "loss": "bce", "ema": ema, "run": {"seed": 0}},
        "generator": generator.state_dict(),
        "generator_ema": averaged.state_dict() if averaged is not None else None,
        "discriminator": discriminator.state_dict(),
        "optimizer_g": torch.optim.Adam(generator.parameters()).state_dict(),
        "optimizer_d": torch.optim.Adam(discriminator.parameters()).state_dict(),
        "processes": [{"batches": {"generator": torch.Generator().get_state(), "order": torch.arange(3), "position": 1}}],
        "rng": {"torch": torch.get_rng_state()},
    }


def test_a_checkpoint_round_trips_through_weights_only_loading(tmp_path):
    path = tmp_path / "checkpoints" / "latest.pt"
    state = make_state()
    ckpt.save_checkpoint(path, state)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    loaded = torch.load(path, weights_only=True)
    assert loaded["meta"]["format"] == ckpt.FORMAT
    assert torch.equal(loaded["generator"]["main.0.weight"], state["generator"]["main.0.weight"])
    assert loaded["processes"][0]["batches"]["position"] == 1


def test_load_generator_prefers_ema_weights_and_returns_eval_mode(tmp_path):
    ckpt.save_checkpoint(tmp_path / "latest.pt", make_state())
    generator, meta = ckpt.load_generator(tmp_path / "latest.pt", "cpu")
    assert isinstance(generator, Generator) and not generator.training
    assert meta["weights"] == "ema" and meta["has_ema"]
    assert (meta["nz"], meta["image_size"], meta["ngf"], meta["iteration"]) == (8, 32, 4, 7)
    assert torch.all(generator.main[0].weight == 0.5)
    raw, meta = ckpt.load_generator(tmp_path / "latest.pt", "cpu", ema=False)
    assert meta["weights"] == "generator" and not torch.all(raw.main[0].weight == 0.5)


def test_load_generator_without_ema_uses_the_raw_weights(tmp_path):
    ckpt.save_checkpoint(tmp_path / "latest.pt", make_state(ema=False))
    _, meta = ckpt.load_generator(tmp_path, "cpu")
    assert meta["weights"] == "generator" and not meta["has_ema"]


def test_load_discriminator_gives_logits_in_eval_mode(tmp_path):
    ckpt.save_checkpoint(tmp_path / "latest.pt", make_state())
    discriminator, meta = ckpt.load_discriminator(tmp_path / "latest.pt")
    assert isinstance(discriminator, Discriminator) and not discriminator.training
    assert discriminator(torch.zeros(2, 3, 32, 32)).shape == (2,)
    assert meta["ndf"] == 4


def test_a_run_folder_or_checkpoints_folder_resolves_to_latest(tmp_path):
    ckpt.save_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt", make_state())
    assert ckpt.resolve_checkpoint(tmp_path / "run") == tmp_path / "run" / "checkpoints" / "latest.pt"
    assert ckpt.resolve_checkpoint(tmp_path / "run" / "checkpoints").name == "latest.pt"
    with pytest.raises(UserError, match="no checkpoint there"):
        ckpt.resolve_checkpoint(tmp_path / "elsewhere")


def test_broken_or_foreign_files_are_refused_in_one_line(tmp_path):
    truncated = tmp_path / "truncated.pt"
    ckpt.save_checkpoint(tmp_path / "good.pt", make_state())
    truncated.write_bytes((tmp_path / "good.pt").read_bytes()[:500])
    with pytest.raises(UserError, match="not a readable checkpoint"):
        ckpt.read_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(UserError, match="not an anigan checkpoint"):
        ckpt.read_checkpoint(foreign)


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"meta": Payload()}, protocol=2))
    with pytest.raises(UserError, match="not a readable checkpoint"):
        ckpt.read_checkpoint(evil)


def test_weights_that_do_not_fit_are_a_user_error(tmp_path):
    state = make_state()
    state["meta"]["ngf"] = 8  # meta says wider than the stored weights
    ckpt.save_checkpoint(tmp_path / "latest.pt", state)
    with pytest.raises(UserError, match="do not fit"):
        ckpt.load_generator(tmp_path / "latest.pt")


def test_snapshots_keep_the_newest_and_survive_later_writes_of_latest(tmp_path):
    for iteration in (10, 20, 30, 40):
        ckpt.save_checkpoint(tmp_path / "latest.pt", make_state(iteration))
        ckpt.save_snapshot(tmp_path, iteration, keep=2)
    assert [i for i, _ in ckpt.list_snapshots(tmp_path)] == [30, 40]
    assert ckpt.read_checkpoint(tmp_path / "step_000030.pt")["meta"]["iteration"] == 30
    ckpt.save_snapshot(tmp_path, 40, keep=0)
    assert ckpt.list_snapshots(tmp_path) == []
    assert (tmp_path / "latest.pt").is_file()
