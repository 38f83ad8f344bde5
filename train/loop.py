"""The training loop: `run_train(params) -> TrainSummary`.

Around the steps (`train.step`), `Trainer` handles resuming, DVCLive logging, sample grids,
checkpoints (their format and restore live in `gan.checkpoint`), NaN detection, signals and,
under torchrun, DistributedDataParallel. Step stats stay on the device and are read back only
every `log_every` steps, so the host never waits for the device in between.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from anigan.errors import UserError
from anigan.ids import file_sha256
from anigan.params import Params
from anigan.params.train import TrainParams
from gan import checkpoint as ckpt
from gan.conditions import ColorLabels, grid_conditions, load_color_labels
from gan.models import build_models
from gan.packed import TRAIN_FILE, load_images
from gan.runtime import derive_seed
from gan.samples import fixed_noise, generate, image_grid, write_gif, write_png
from train.augment import diff_augment
from train.data import BatchSource, fits_on_device
from train.distributed import ProcessGroup, StopRequest, deterministic_mode, process_group, stop_on_signals
from train.ema import EMA
from train.live import MetricsLog
from train.step import CLASS_METRICS, METRICS, Nets, StepLabels, train_step

log = logging.getLogger(__name__)

SAMPLE_GRID = 64  # fixed noise vectors in each DCGAN sample grid (8 x 8)
SAMPLE_COLUMNS = 8  # faces per row (more for an ACGAN with more eye colours); an ACGAN grid has one row per hair colour
SAMPLE_FILE = "step_{:06d}.png"
NORM_BATCHES = 4  # noise batches for the averaged generator's batch-norm statistics


class TrainingDiverged(UserError):
    """A loss or weight became NaN or infinite; the last good checkpoint is left untouched."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run after a checkpoint was written; running again resumes."""

    def __init__(self, signal_name: str, signum: int, iteration: int, checkpoint: Path) -> None:
        super().__init__(f"stopped by {signal_name} at iteration {iteration}; checkpoint {checkpoint}; run again to resume")
        self.signal_name, self.signum, self.iteration, self.checkpoint = signal_name, signum, iteration, checkpoint


@dataclass(frozen=True)
class Progress:
    """What the loop reports every `log_every` steps (to draw a progress bar)."""

    iteration: int
    iterations: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class TrainSummary:
    run_dir: str
    checkpoint: str
    device: str
    world_size: int
    rank: int  # of this process; only rank 0 wrote files
    train_images: int
    image_size: int
    resumed_from: int  # 0 for a fresh run
    iteration: int
    images_per_second: float  # over the steps this run took (all processes)
    metrics: dict[str, float]  # the last logged window
    samples_written: int
    gif: str | None


def _loggable(p: TrainParams) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(p).items()}


def run_identity(p: TrainParams, image_size: int, dataset_sha256: str, labels: ColorLabels | None = None) -> dict[str, Any]:
    """The settings that define a run: a checkpoint made with others is not resumed but started over.

    Speed-only settings (device, amp, compile, intervals) and `iterations` are left out, so a
    finished run can be extended by raising `iterations`. The model is in, and for the ACGAN its
    class weight, colour vocabularies and a digest of the labels, so switching model starts over.
    """
    keys = ("model", "nz", "ngf", "ndf", "lr", "beta1", "beta2", "batch_size", "loss", "augment", "seed", "ema", "ema_decay")
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in ((k, getattr(p, k)) for k in keys)}
    identity = {**settings, "image_size": image_size, "dataset_sha256": dataset_sha256}
    if labels is not None:
        identity.update(class_weight=p.class_weight, conditions=labels.conditions, labels_sha256=labels.sha256)
    return identity


def changed_settings(identity: dict[str, Any], trained: dict[str, Any]) -> list[str]:
    """The keys on which a checkpoint's run identity differs from this run's; runs from before
    ACGAN existed have no `model` and were DCGANs."""
    trained = {"model": "dcgan", **trained}
    return sorted(k for k in identity.keys() | trained.keys() if trained.get(k) != identity.get(k))


def run_train(
    params: Params,
    *,
    dataset_dir: str | Path | None = None,
    run_dir: str | Path | None = None,
    fresh: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
) -> TrainSummary:
    """Train the DCGAN on `<dataset_dir>/train.npy`, writing checkpoints, samples, GIF and DVCLive logs to `run_dir`.

    Resumes from `run_dir/checkpoints/latest.pt` when it was made by the same run settings
    (see `run_identity`), unless `fresh`. Under torchrun (WORLD_SIZE > 1) each process joins the
    process group and trains its share; only rank 0 writes files and calls `on_progress`.
    Raises TrainingDiverged on a NaN/inf loss, TrainingInterrupted after SIGINT/SIGTERM.
    """
    dataset_dir = Path(dataset_dir if dataset_dir is not None else params.paths.dataset)
    run_dir = Path(run_dir if run_dir is not None else params.paths.train_run)
    images = load_images(dataset_dir)
    dataset_sha256 = file_sha256(dataset_dir / TRAIN_FILE)
    labels = load_color_labels(dataset_dir, len(images), params.train.min_color_count) if params.train.model == "acgan" else None
    if labels is not None:
        log.info("colour conditions: hair %s; eyes %s", ", ".join(labels.conditions["hair"]), ", ".join(labels.conditions["eyes"]))
    with process_group(params.train.device) as (group, device), deterministic_mode(params.train.deterministic, device), stop_on_signals() as stop:
        trainer = Trainer(params.train, images, dataset_sha256, run_dir, group, device, stop, on_progress, labels)
        return trainer.run(fresh)


class Trainer:
    """The state of one training run around `train_step`; `run_train` is the way to use it."""

    def __init__(
        self,
        p: TrainParams,
        images: np.ndarray,
        dataset_sha256: str,
        run_dir: Path,
        group: ProcessGroup,
        device: torch.device,
        stop: StopRequest,
        on_progress: Callable[[Progress], None] | None,
        labels: ColorLabels | None = None,
    ) -> None:
        if (p.model == "acgan") != (labels is not None):
            raise ValueError(f"train.model = {p.model} needs colour labels exactly when it is acgan")
        self.p, self.group, self.device, self.stop, self.on_progress = p, group, device, stop, on_progress
        self.image_size = images.shape[1]
        self.train_images = len(images)
        self.conditions = labels.conditions if labels is not None else None
        self.metric_names = METRICS + (CLASS_METRICS if labels is not None else ())
        self.identity = run_identity(p, self.image_size, dataset_sha256, labels)
        self.run_dir = run_dir
        self.checkpoint_dir = run_dir / "checkpoints"
        self.samples_dir = run_dir / "samples"
        self.latest = self.checkpoint_dir / ckpt.LATEST
        self.amp = p.amp and device.type == "cuda"

        self.nets = self._build_nets()
        self.compile_unproven = p.compile
        # Ranks on the CPU each hold their copy in the one host memory; on GPUs each has its own device.
        copies = group.local_world_size if device.type == "cpu" else 1
        on_device = fits_on_device(images.nbytes, device, p.data_on_device, copies)
        self.batches = BatchSource(
            images, p.batch_size, device, derive_seed(p.seed, "batches", group.rank), p.channels_last, on_device,
            labels.labels if labels is not None else None,
        )
        self.noise = torch.Generator(device=device)
        self.noise.manual_seed(derive_seed(p.seed, "noise", group.rank))
        self.augment_rng = torch.Generator(device=device)
        self.augment_rng.manual_seed(derive_seed(p.seed, "augment", group.rank))
        self.augment = (lambda x: diff_augment(x, p.augment, self.augment_rng)) if p.augment else None
        if self.conditions is None:
            self.sample_columns = SAMPLE_COLUMNS
            self.sample_noise = fixed_noise(SAMPLE_GRID, p.nz, derive_seed(p.seed, "samples"))
            self.sample_labels = None
        else:
            # One row per hair colour, each row the same noise: only the condition changes down a column.
            # Wide enough for every eye colour to appear in each row.
            rows, self.sample_columns = len(self.conditions["hair"]), max(SAMPLE_COLUMNS, len(self.conditions["eyes"]))
            self.sample_noise = fixed_noise(self.sample_columns, p.nz, derive_seed(p.seed, "samples")).repeat(rows, 1, 1, 1)
            self.sample_labels = grid_conditions(self.conditions, self.sample_columns)
        # Inputs on which the averaged generator's batch-norm statistics are measured (see EMA);
        # an ACGAN's also carry labels drawn as often as the training set has them.
        norm_noise = fixed_noise(NORM_BATCHES * p.batch_size, p.nz, derive_seed(p.seed, "ema-norm")).to(device).split(p.batch_size)
        if labels is None:
            self.norm_inputs: list[Any] = list(norm_noise)
        else:
            picks = torch.Generator().manual_seed(derive_seed(p.seed, "ema-norm-labels"))
            drawn = torch.from_numpy(labels.labels)[torch.randint(len(labels.labels), (NORM_BATCHES * p.batch_size,), generator=picks)]
            self.norm_inputs = list(zip(norm_noise, drawn.to(device).split(p.batch_size), strict=True))
        self.norm_fresh_at: int | None = None

        self.iteration = 0
        self.window = torch.zeros(len(self.metric_names), device=device)
        self.window_steps = 0
        self.last_metrics: dict[str, float] = {}
        self.last_good: int | None = None  # iteration of the newest checkpoint on disk
        self.samples_written = 0
        self.live: MetricsLog | None = None

    # -- set-up ---------------------------------------------------------------------------

    def _build_nets(self) -> Nets:
        p, device = self.p, self.device
        generator, discriminator = build_models(p.nz, p.ngf, p.ndf, self.image_size, derive_seed(p.seed, "weights"), self.conditions)
        memory_format = torch.channels_last if p.channels_last else torch.contiguous_format
        generator = generator.to(device, memory_format=memory_format)
        discriminator = discriminator.to(device, memory_format=memory_format)
        generator_step: nn.Module = generator
        discriminator_step: nn.Module = discriminator
        if self.group.distributed:
            ids = [device.index] if device.type == "cuda" else None
            generator_step = DistributedDataParallel(generator, device_ids=ids)
            discriminator_step = DistributedDataParallel(discriminator, device_ids=ids)
        if p.compile:
            generator_step = torch.compile(generator_step)
            discriminator_step = torch.compile(discriminator_step)
        # Fused Adam is one kernel per step on CUDA; elsewhere the default implementation.
        fused = True if device.type == "cuda" else None
        optimizer_g = torch.optim.Adam(generator.parameters(), lr=p.lr, betas=(p.beta1, p.beta2), fused=fused)
        optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=p.lr, betas=(p.beta1, p.beta2), fused=fused)
        ema = EMA(generator, p.ema_decay) if p.ema else None
        return Nets(generator, discriminator, generator_step, discriminator_step, optimizer_g, optimizer_d, ema)

    def _resumable_state(self, fresh: bool) -> dict[str, Any] | None:
        """The checkpoint to resume from, or None to start over (and why, in the log)."""
        if fresh or not self.latest.is_file():
            return None
        try:
            state = ckpt.read_checkpoint(self.latest)
        except UserError as e:
            raise UserError(f"{e}; remove it or train with --fresh to start over") from None
        meta = state["meta"]
        changed = changed_settings(self.identity, meta.get("run", {}))
        if changed:
            log.warning("%s was trained with other settings (%s); starting over", self.latest, ", ".join(changed))
            return None
        if meta["iteration"] > self.p.iterations:
            log.warning("%s is at iteration %d, past iterations = %d; starting over", self.latest, meta["iteration"], self.p.iterations)
            return None
        return state

    def _clear_outputs(self) -> None:
        """A fresh start removes what an earlier run left: its checkpoints, sample grids and GIF."""
        for path in [self.latest, *(p for _, p in ckpt.list_snapshots(self.checkpoint_dir)), self.run_dir / "progress.gif"]:
            path.unlink(missing_ok=True)
        if self.samples_dir.is_dir():
            for sample in self.samples_dir.glob("step_*.png"):
                sample.unlink()

    def _restore(self, state: dict[str, Any]) -> None:
        processes = ckpt.restore_training(state, self._saved_nets(), self.device)
        if len(processes) == self.group.world_size:
            mine = processes[self.group.rank]
            self.batches.load_state_dict(mine["batches"])
            self.noise.set_state(mine["noise"])
            self.augment_rng.set_state(mine["augment"])
        else:
            # Another number of processes trained so far: continue with fresh streams for this one.
            iteration = state["meta"]["iteration"]
            log.warning("resuming with %d processes where %d trained; batches will differ from an uninterrupted run", self.group.world_size, len(processes))
            self.batches.generator.manual_seed(derive_seed(self.p.seed, f"batches@{iteration}", self.group.rank))
            self.noise.manual_seed(derive_seed(self.p.seed, f"noise@{iteration}", self.group.rank))
            self.augment_rng.manual_seed(derive_seed(self.p.seed, f"augment@{iteration}", self.group.rank))
        self.iteration = self.last_good = state["meta"]["iteration"]

    def _saved_nets(self) -> ckpt.TrainingNets:
        nets = self.nets
        ema = nets.ema.model if nets.ema is not None else None
        return ckpt.TrainingNets(nets.generator, nets.discriminator, nets.optimizer_g, nets.optimizer_d, ema)

    def _drop_samples_after(self, iteration: int) -> None:
        if self.samples_dir.is_dir():
            for sample in self.samples_dir.glob("step_*.png"):
                if int(sample.stem.split("_")[1]) > iteration:
                    sample.unlink()

    # -- the run --------------------------------------------------------------------------

    def run(self, fresh: bool) -> TrainSummary:
        state = self._resumable_state(fresh)
        if self.group.distributed:
            dist.barrier()  # every process has read latest.pt before rank 0 may clear it
        if state is not None:
            self._restore(state)
            log.info("resuming %s from iteration %d", self.run_dir, self.iteration)
        resumed_from = self.iteration
        if self.group.is_main:
            if state is None:
                self._clear_outputs()
            else:
                self._drop_samples_after(self.iteration)
            self.live = MetricsLog(self.run_dir / "dvclive", resume_from=self.iteration if state is not None else None, params=_loggable(self.p))
        if self.group.distributed:
            dist.barrier()
        try:
            if state is None:
                self._sample()  # iteration 0: what the untrained generator draws
            started = time.perf_counter()
            self._train()
            elapsed = time.perf_counter() - started
            self._finish()
        finally:
            if self.live is not None:
                self.live.close()
        trained = (self.iteration - resumed_from) * self.p.batch_size * self.group.world_size
        gif = self.run_dir / "progress.gif"
        return TrainSummary(
            run_dir=str(self.run_dir),
            checkpoint=str(self.latest),
            device=str(self.device),
            world_size=self.group.world_size,
            rank=self.group.rank,
            train_images=self.train_images,
            image_size=self.image_size,
            resumed_from=resumed_from,
            iteration=self.iteration,
            images_per_second=trained / elapsed if trained and elapsed > 0 else 0.0,
            metrics=dict(self.last_metrics),
            samples_written=self.samples_written,
            gif=str(gif) if gif.is_file() else None,
        )

    def _train(self) -> None:
        p = self.p
        window_started, window_from = time.perf_counter(), self.iteration
        while self.iteration < p.iterations:
            self.iteration += 1
            it = self.iteration
            real, real_labels = self.batches.next_with_labels() if self.conditions is not None else (self.batches.next(), None)
            z = torch.randn(p.batch_size, p.nz, 1, 1, device=self.device, generator=self.noise)
            labels = None
            if real_labels is not None:
                # The generator is asked for colours as often as the training set has them.
                labels = StepLabels(real_labels, self.batches.random_labels(p.batch_size, self.noise), p.class_weight)
            self.window += self._step(real, z, labels)
            if self.nets.ema is not None:
                self.nets.ema.update(self.nets.generator, it)
            self.window_steps += 1

            checkpoint_due = it % p.checkpoint_every == 0 or it == p.iterations
            # Single process: a signal is seen at once. Several: only at log points, where all agree.
            local_stop = self.stop.requested and not self.group.distributed
            read = it % p.log_every == 0 or checkpoint_due or local_stop
            if read and self._read_window(window_from, window_started):
                self._checkpoint()
                raise TrainingInterrupted(self.stop.name or "a signal", self.stop.signum or 0, it, self.latest)
            if it % p.sample_every == 0:
                self._sample()
            if checkpoint_due:
                self._checkpoint()
            if read:  # the next window's speed counts training only, not this sample or checkpoint
                window_started, window_from = time.perf_counter(), it

    def _step(self, real: torch.Tensor, z: torch.Tensor, labels: StepLabels | None) -> torch.Tensor:
        def step() -> torch.Tensor:
            return train_step(self.nets, real, z, self.p.loss, self.amp, self.group.distributed, self.augment, labels)

        if not self.compile_unproven:
            return step()
        # The first step through torch.compile is where compiling happens and where it fails: on CUDA
        # (an H200, torch 2.11) the compiled backward stops on a stride assertion in inductor
        # (pytorch/pytorch#171622). Then the step is redone without compiling, from the state before it.
        self.compile_unproven = False
        # what the step changes: weights, batch-norm statistics, optimizer moments, augmentation draws
        before = copy.deepcopy(ckpt.training_state({}, self._saved_nets(), None, self.device))
        augment_before = self.augment_rng.get_state()
        try:
            return step()
        except Exception as error:  # noqa: BLE001 - any failure of the compiled models; a real bug fails again below
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            log.warning("train.compile: the compiled models failed at their first step on %s (%s); training goes on without torch.compile", self.device.type, reason[:200])
            ckpt.restore_training(before, self._saved_nets(), self.device)
            self.augment_rng.set_state(augment_before)
            for net in (self.nets.generator, self.nets.discriminator):
                net.zero_grad(set_to_none=True)
            self.nets = dataclasses.replace(
                self.nets,
                generator_step=getattr(self.nets.generator_step, "_orig_mod", self.nets.generator_step),
                discriminator_step=getattr(self.nets.discriminator_step, "_orig_mod", self.nets.discriminator_step),
            )
            return step()

    def _read_window(self, window_from: int, window_started: float) -> bool:
        """Read the summed stats back (the only host sync), check them, log them; returns 'stop now'."""
        totals = torch.cat([self.window, torch.tensor([1.0 if self.stop.requested else 0.0], device=self.device)])
        if self.group.distributed:
            dist.all_reduce(totals)  # every process sees the same means, so all decide alike
        values = totals.tolist()
        steps = self.window_steps * self.group.world_size
        means = {name: values[i] / steps for i, name in enumerate(self.metric_names)}
        self.window.zero_()
        self.window_steps = 0
        bad = [name for name, v in means.items() if not math.isfinite(v)]
        if bad:
            self._diverged(f"{', '.join(bad)} became {means[bad[0]]} between iterations {window_from + 1} and {self.iteration}")
        elapsed = time.perf_counter() - window_started
        images = (self.iteration - window_from) * self.p.batch_size * self.group.world_size
        metrics = {
            **means,
            "images_per_second": images / elapsed if elapsed > 0 else 0.0,
            "lr": self.nets.optimizer_g.param_groups[0]["lr"],
        }
        self.last_metrics = metrics
        if self.live is not None:
            self.live.log_metrics(self.iteration, metrics)
        if self.on_progress is not None and self.group.is_main:
            self.on_progress(Progress(self.iteration, self.p.iterations, metrics))
        log.info("iteration %d: %s", self.iteration, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        return values[len(self.metric_names)] > 0

    def _diverged(self, what: str) -> None:
        if self.last_good is not None:
            kept = f"the last good checkpoint is {self.latest} (iteration {self.last_good}), left as it was"
        else:
            kept = "no checkpoint had been written yet"
        raise TrainingDiverged(
            f"training diverged: {what}; {kept}. Lower the learning rate (lr = {self.p.lr:g}) or try loss: hinge"
        )

    def _weights_finite(self) -> bool:
        """Whether every weight and batch-norm statistic is finite, in every process."""
        models = [self.nets.generator, self.nets.discriminator] + ([self.nets.ema.model] if self.nets.ema else [])
        tensors = [t for m in models for t in m.state_dict().values() if t.is_floating_point()]
        finite = torch.stack([t.isfinite().all() for t in tensors]).all().float()
        if self.group.distributed:
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)  # batch-norm statistics are per process
        return bool(finite)

    def _checkpoint(self) -> None:
        """Write latest.pt (rank 0) with every process's sampler and noise state; never a non-finite one."""
        if self.last_good == self.iteration and self.latest.is_file():
            return
        self._refresh_ema()
        if not self._weights_finite():
            self._diverged(f"a weight became NaN or infinite by iteration {self.iteration}")
        mine = {"batches": self.batches.state_dict(), "noise": self.noise.get_state(), "augment": self.augment_rng.get_state()}
        if self.group.distributed:
            gathered: list[Any] | None = [None] * self.group.world_size if self.group.is_main else None
            dist.gather_object(mine, gathered, dst=0)
            processes = gathered
        else:
            processes = [mine]
        if self.group.is_main:
            ckpt.save_checkpoint(self.latest, self._state(processes))
            ckpt.save_snapshot(self.checkpoint_dir, self.iteration, self.p.keep_checkpoints)
            log.info("checkpoint at iteration %d: %s", self.iteration, self.latest)
        self.last_good = self.iteration
        if self.group.distributed:
            dist.barrier()

    def _state(self, processes: list[Any] | None) -> dict[str, Any]:
        p = self.p
        meta = {
            "model": p.model,
            **({"conditions": self.conditions, "class_weight": p.class_weight} if self.conditions is not None else {}),
            "nz": p.nz,
            "ngf": p.ngf,
            "ndf": p.ndf,
            "image_size": self.image_size,
            "iteration": self.iteration,
            "loss": p.loss,
            "ema": self.nets.ema is not None,
            "train_images": self.train_images,
            "world_size": self.group.world_size,
            "run": self.identity,
        }
        return ckpt.training_state(meta, self._saved_nets(), processes, self.device)

    def _refresh_ema(self) -> None:
        """Measure the averaged generator's batch-norm statistics before it is sampled or saved."""
        if self.nets.ema is not None and self.norm_fresh_at != self.iteration:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                self.nets.ema.recompute_batch_norm(self.norm_inputs)
            self.norm_fresh_at = self.iteration

    def _sample_model(self) -> nn.Module:
        if self.nets.ema is None:
            return self.nets.generator
        self._refresh_ema()
        return self.nets.ema.model

    def _sample(self) -> None:
        """Save the grid of the fixed noise at this iteration (rank 0); the models stay as they were."""
        if not self.group.is_main:
            return
        model = self._sample_model()
        was_training = model.training
        model.eval()
        try:
            images = generate(model, self.sample_noise, self.device, amp=self.amp, labels=self.sample_labels)
        finally:
            model.train(was_training)
        grid = image_grid(images, columns=self.sample_columns)
        write_png(self.samples_dir / SAMPLE_FILE.format(self.iteration), grid)
        self.samples_written += 1
        if self.live is not None:
            self.live.log_image(self.iteration, "samples.png", grid)

    def _finish(self) -> None:
        """The end of the run: a last grid and checkpoint if the intervals missed them, then the GIF."""
        if self.group.is_main and not (self.samples_dir / SAMPLE_FILE.format(self.iteration)).is_file():
            self._sample()
        self._checkpoint()
        if self.group.is_main:
            frames = sorted(self.samples_dir.glob("step_*.png"))
            captioned = [(f"step {int(f.stem.split('_')[1])}", f) for f in frames]
            write_gif(self.run_dir / "progress.gif", captioned)
