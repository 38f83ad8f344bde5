"""How a training process runs: its place among torchrun's processes, deterministic kernels, stop signals."""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gan.runtime import pick_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place among the training processes; a single process is rank 0 of 1."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1  # processes on this machine: they share its host memory

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes checkpoints, samples and logs."""
        return self.rank == 0


@contextlib.contextmanager
def process_group(device_name: str) -> Iterator[tuple[ProcessGroup, torch.device]]:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE...), if any.

    Yields this process's ProcessGroup and device; gloo on the CPU, nccl on CUDA. Without
    WORLD_SIZE > 1 it is a plain single process and nothing is initialised.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield ProcessGroup(), pick_device(device_name)
        return
    group = ProcessGroup(
        rank=int(os.environ.get("RANK", "0")),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0"))),
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size))),
    )
    device = pick_device(device_name, group.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns_group = not dist.is_initialized()
    if owns_group:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
        log.info("rank %d of %d joined the %s process group on %s", group.rank, world_size, backend, device)
    try:
        yield group, device
    finally:
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()


@contextlib.contextmanager
def deterministic_mode(enabled: bool, device: torch.device) -> Iterator[None]:
    """Bit-reproducible kernels while `enabled` (slower); cuDNN autotuning otherwise on CUDA.

    These switches are process-wide, so the previous settings are restored on the way out.
    """
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    )
    if enabled:
        if device.type == "cuda" and previous[3] is None:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"  # cuBLAS needs it for deterministic matmuls
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick the fastest kernels
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.benchmark = previous[1]
        torch.backends.cudnn.deterministic = previous[2]
        if previous[3] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)


class StopRequest:
    """Set by a signal handler; the training loop checks it between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Turn SIGINT and SIGTERM into a polite request to stop after the current step.

    The loop then writes a checkpoint and leaves. A second Ctrl-C stops at once (without a
    checkpoint), for when the first one is not enough. Handlers can only be installed from the
    main thread; elsewhere the request simply never fires.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: object) -> None:
        if request.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        request.signum = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
