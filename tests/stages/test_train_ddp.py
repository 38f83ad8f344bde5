"""The trainer under DistributedDataParallel: two CPU processes with the gloo backend.

The processes are started with torch.multiprocessing and given the environment torchrun would
give them (RANK, WORLD_SIZE, MASTER_ADDR...), so the code path is the one `torchrun -m anigan train`
takes, without needing torchrun.
"""

from __future__ import annotations

import os
import socket
import sys

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from anigan.ids import file_sha256
from anigan.params import load_params
from gan.checkpoint import read_checkpoint
from gan.conditions import load_color_labels
from gan.packed import TRAIN_FILE, load_images
from train.distributed import deterministic_mode, process_group, stop_on_signals
from train.loop import Trainer, run_train

TINY = {
    "train.nz": 8,
    "train.ngf": 4,
    "train.ndf": 4,
    "train.batch_size": 8,
    "train.log_every": 1,
    "train.sample_every": 2,
    "train.checkpoint_every": 2,
    "train.deterministic": True,
    "train.device": "cpu",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, world_size, port, dataset, run_dir, iterations, weights_out, overrides):
    """One training process: join the group as torchrun would, train, save the weights it ended with."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size)
    )
    torch.set_num_threads(1)
    params = load_params(None, {**TINY, "iterations": iterations, **overrides})
    images = load_images(dataset)
    labels = load_color_labels(dataset, len(images), params.train.min_color_count) if params.train.model == "acgan" else None
    with process_group("cpu") as (group, device), deterministic_mode(True, device), stop_on_signals() as stop:
        trainer = Trainer(params.train, images, file_sha256(dataset / TRAIN_FILE), run_dir, group, device, stop, None, labels)
        summary = trainer.run(fresh=False)
        assert summary.world_size == world_size
        torch.save(
            {"generator": trainer.nets.generator.state_dict(), "discriminator": trainer.nets.discriminator.state_dict()},
            weights_out / f"rank{rank}.pt",
        )


def launch(dataset, run_dir, iterations, weights_out, **overrides):
    weights_out.mkdir(exist_ok=True)
    # On Linux, fork: the children inherit the imported modules instead of importing torch again.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    args = (2, free_port(), dataset, run_dir, iterations, weights_out, overrides)
    mp.start_processes(worker, args=args, nprocs=2, start_method=method)
    return [torch.load(weights_out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def parameters_only(state_dict):
    # Batch-norm running statistics are each process's own; the trained weights must agree.
    return {k: v for k, v in state_dict.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}


@pytest.mark.slow
def test_two_processes_train_in_step_and_resume_exactly(tiny_dataset, tmp_path):
    ranks = launch(tiny_dataset, tmp_path / "ddp", 4, tmp_path / "w4")
    for net in ("generator", "discriminator"):
        a, b = parameters_only(ranks[0][net]), parameters_only(ranks[1][net])
        assert all(torch.equal(a[k], b[k]) for k in a), f"{net} weights differ between the processes"

    state = read_checkpoint(tmp_path / "ddp" / "checkpoints" / "latest.pt")
    assert state["meta"]["world_size"] == 2 and len(state["processes"]) == 2
    # The two processes drew different batches...
    orders = [p["batches"]["order"] for p in state["processes"]]
    assert not torch.equal(orders[0], orders[1])
    # ...and averaged their gradients: the result is not what process 0 alone would have learned.
    single = run_train(load_params(None, {**TINY, "iterations": 4}), dataset_dir=tiny_dataset, run_dir=tmp_path / "single")
    assert single.world_size == 1
    alone = read_checkpoint(tmp_path / "single" / "checkpoints" / "latest.pt")["discriminator"]
    assert not torch.equal(alone["main.0.weight"], ranks[0]["discriminator"]["main.0.weight"])
    for key, tensor in parameters_only(state["discriminator"]).items():
        assert torch.equal(tensor, ranks[0]["discriminator"][key])

    # Resuming the 2-process run to 6 steps gives what a straight 6-step run gives.
    resumed = launch(tiny_dataset, tmp_path / "ddp", 6, tmp_path / "w6")
    straight = launch(tiny_dataset, tmp_path / "straight", 6, tmp_path / "w6s")
    for net in ("generator", "discriminator"):
        for key, tensor in parameters_only(straight[0][net]).items():
            assert torch.equal(tensor, resumed[0][net][key]), f"{net}.{key}"
    assert sorted(p.name for p in (tmp_path / "ddp" / "samples").iterdir()) == [f"step_00000{i}.png" for i in (0, 2, 4, 6)]
    assert np.isfinite(read_checkpoint(tmp_path / "ddp" / "checkpoints" / "latest.pt")["meta"]["iteration"])


def test_acgan_processes_train_their_class_heads_in_step_and_resume_exactly(tiny_color_dataset, tmp_path):
    acgan = {"train.model": "acgan", "train.min_color_count": 5}
    ranks = launch(tiny_color_dataset, tmp_path / "ddp", 2, tmp_path / "w2", **acgan)
    for net in ("generator", "discriminator"):
        a, b = parameters_only(ranks[0][net]), parameters_only(ranks[1][net])
        assert all(torch.equal(a[k], b[k]) for k in a), f"{net} weights differ between the processes"
    assert "hair_head.weight" in ranks[0]["discriminator"]
    state = read_checkpoint(tmp_path / "ddp" / "checkpoints" / "latest.pt")
    assert state["meta"]["model"] == "acgan" and len(state["processes"]) == 2

    resumed = launch(tiny_color_dataset, tmp_path / "ddp", 4, tmp_path / "w4", **acgan)
    straight = launch(tiny_color_dataset, tmp_path / "straight", 4, tmp_path / "w4s", **acgan)
    for net in ("generator", "discriminator"):
        for key, tensor in parameters_only(straight[0][net]).items():
            assert torch.equal(tensor, resumed[0][net][key]), f"{net}.{key}"
