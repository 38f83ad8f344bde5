"""Training speed: anigan's trainer against a plain DCGAN loop in the canonical pytorch/examples style.

    uv run python bench/train_bench.py [--widths 64,32] [--steps 10] [--repeats 2] [--images 1024] [--compile] [--json FILE]

Both train the same networks (gan.models, 64x64, batch 64, Adam 2e-4, betas 0.5/0.999) on
the same drawn faces, on the same device, in the same process, one after the other
(reference, anigan, reference, anigan... so a busy machine slows both alike):

- reference: the style of pytorch/examples' dcgan/main.py. An ImageFolder of PNG files decoded
  by a DataLoader (2 workers, shuffle, Resize/CenterCrop/ToTensor/Normalize), the discriminator
  ending in a Sigmoid with nn.BCELoss, label tensors made each step, and `.item()` on the losses
  and D outputs every step.
- anigan: `train.loop.run_train` (uint8 array on the device, flips and scaling there,
  BCE-with-logits, stats read every 5 steps, channels-last, fused Adam on CUDA), with checkpoints
  and grids pushed past the timed steps; once doing the same work as the reference, and once as
  `anigan train` runs by default, with DiffAugment and the EMA generator on top.

Each measures images per second over `--steps` steps after 5 warm-up steps; the median of the
repeats is reported, with the ratio anigan / reference.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anigan.params import load_params  # noqa: E402
from tests.conftest import make_tiny_dataset  # noqa: E402
from train.loop import run_train  # noqa: E402
from gan.models import build_models  # noqa: E402
from gan.runtime import pick_device  # noqa: E402

WARMUP = 5
BATCH = 64
NZ = 100


def write_image_folder(images: np.ndarray, root: Path) -> Path:
    """The same faces as PNG files in ImageFolder's layout (root/<class>/<file>)."""
    folder = root / "faces"
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    return root


def reference_images_per_second(image_root: Path, width: int, steps: int, device: torch.device) -> float:
    """The canonical loop (pytorch/examples dcgan style); images/s over `steps` steps after warm-up."""
    import torchvision.datasets as dset
    import torchvision.transforms as transforms

    dataset = dset.ImageFolder(
        root=str(image_root),
        transform=transforms.Compose([
            transforms.Resize(64),
            transforms.CenterCrop(64),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]),
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=2, drop_last=True)
    net_g, discriminator = build_models(NZ, width, width, 64, seed=0)
    net_g = net_g.to(device)
    net_d = nn.Sequential(discriminator, nn.Sigmoid()).to(device)
    criterion = nn.BCELoss()
    optimizer_d = torch.optim.Adam(net_d.parameters(), lr=0.0002, betas=(0.5, 0.999))
    optimizer_g = torch.optim.Adam(net_g.parameters(), lr=0.0002, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0

    done, started = 0, None
    while done < WARMUP + steps:
        for data in loader:
            if done == WARMUP:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                started = time.perf_counter()
            net_d.zero_grad()
            real = data[0].to(device)
            batch_size = real.size(0)
            label = torch.full((batch_size,), real_label, dtype=torch.float, device=device)
            output = net_d(real).view(-1)
            err_d_real = criterion(output, label)
            err_d_real.backward()
            d_x = output.mean().item()
            noise = torch.randn(batch_size, NZ, 1, 1, device=device)
            fake = net_g(noise)
            label.fill_(fake_label)
            output = net_d(fake.detach()).view(-1)
            err_d_fake = criterion(output, label)
            err_d_fake.backward()
            d_g_z1 = output.mean().item()
            err_d = err_d_real + err_d_fake
            optimizer_d.step()
            net_g.zero_grad()
            label.fill_(real_label)
            output = net_d(fake).view(-1)
            err_g = criterion(output, label)
            err_g.backward()
            d_g_z2 = output.mean().item()
            optimizer_g.step()
            _ = (err_d.item(), err_g.item(), d_x, d_g_z1, d_g_z2)  # what the example prints each step
            done += 1
            if done == WARMUP + steps:
                break
    return steps * BATCH / (time.perf_counter() - started)


def anigan_images_per_second(
    dataset: Path, run_dir: Path, width: int, steps: int, device: str, extras: bool = True, compile_models: bool = False
) -> float:
    """`run_train` on the packed array; timed between the progress reports at warm-up and at the end.

    `extras=False` turns off DiffAugment and the EMA, which the reference loop does not do, for a
    like-for-like comparison of the loop itself.
    """
    params = load_params(None, {
        **({} if extras else {"train.augment": [], "train.ema": False}),
        "train.nz": NZ, "train.ngf": width, "train.ndf": width, "train.batch_size": BATCH, "train.device": device,
        "iterations": WARMUP + steps, "train.log_every": math.gcd(WARMUP, steps),
        "train.sample_every": 10**6, "train.checkpoint_every": 10**6, "train.compile": compile_models,
    })
    stamps: dict[int, float] = {}
    run_train(params, dataset_dir=dataset, run_dir=run_dir, fresh=True,
              on_progress=lambda p: stamps.setdefault(p.iteration, time.perf_counter()))
    return steps * BATCH / (stamps[WARMUP + steps] - stamps[WARMUP])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,32", help="ngf = ndf values to measure (64: the paper's)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--images", type=int, default=1024, help="training images (64x64 drawn faces)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile anigan's models (train.compile); the warm-up steps absorb the compiling")
    parser.add_argument("--json", type=Path, default=None, help="also write the medians here, one object per width")
    args = parser.parse_args()
    logging.disable(logging.WARNING)

    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_name()}, {torch.get_num_threads()} threads"
    print(f"device: {device} ({name}); torch {torch.__version__}; batch {BATCH}, 64x64, {args.images} images")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dataset = make_tiny_dataset(tmp / "dataset", train=args.images, test=1, size=64)
        image_root = write_image_folder(np.load(dataset / "train.npy"), tmp / "png")
        print("| ngf = ndf | reference (images/s) | anigan, same work (images/s) | ratio | anigan as `anigan train` runs (+ DiffAugment, EMA) | ratio |")
        print("| --- | --- | --- | --- | --- | --- |")
        rows = []
        for width in (int(w) for w in args.widths.split(",")):
            reference, plain, full = [], [], []
            for _ in range(args.repeats):
                reference.append(reference_images_per_second(image_root, width, args.steps, device))
                plain.append(anigan_images_per_second(dataset, tmp / "run", width, args.steps, device.type, False, args.compile))
                full.append(anigan_images_per_second(dataset, tmp / "run", width, args.steps, device.type, True, args.compile))
            ref, fast, fast_full = (statistics.median(v) for v in (reference, plain, full))
            print(f"| {width} | {ref:.0f} | {fast:.0f} | {fast / ref:.2f}x | {fast_full:.0f} | {fast_full / ref:.2f}x |", flush=True)
            rows.append({"width": width, "compile": args.compile, "reference": ref, "anigan_same_work": fast, "anigan_default": fast_full})
    if args.json is not None:
        args.json.write_text(json.dumps({"device": name, "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
