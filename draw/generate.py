"""`anigan generate`: faces from a trained generator, as one grid PNG and/or a folder of single PNGs.

An ACGAN checkpoint also takes a hair and an eye colour; a colour left open is drawn per face.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from anigan.errors import UserError
from gan.checkpoint import load_generator, resolve_checkpoint
from gan.conditions import color_word
from gan.runtime import pick_device
from gan.samples import draw_faces, image_grid, write_png

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateSummary:
    checkpoint: str
    iteration: int
    weights: str  # "ema" or "generator"
    count: int
    image_size: int
    seed: int
    device: str
    grid: str | None
    folder: str | None
    model: str = "dcgan"
    hair: str | None = None  # the colour asked for (acgan), None when drawn or a DCGAN
    eyes: str | None = None


def run_generate(
    checkpoint: str | Path,
    *,
    count: int = 64,
    seed: int = 0,
    grid: str | Path | None = None,
    folder: str | Path | None = None,
    device: str = "auto",
    ema: bool = True,
    columns: int | None = None,
    hair: str | None = None,
    eyes: str | None = None,
) -> GenerateSummary:
    """Draw `count` faces from noise seeded by `seed`; write a grid PNG (`grid`) and/or single PNGs (`folder`).

    The noise is drawn on the CPU, so one seed gives the same faces on any device. Single files
    are named `<seed>_<index>.png`, so several seeds can share a folder. `hair` and `eyes` pick
    an ACGAN checkpoint's colours (see gan.conditions.encode_conditions); a DCGAN refuses them.
    """
    if grid is None and folder is None:
        raise UserError("nothing to write: give --out GRID.png, --out-dir FOLDER, or both")
    if count < 1:
        raise UserError(f"--n = {count}: must be at least 1")
    if grid is not None and Path(grid).suffix.lower() != ".png":
        raise UserError(f"--out {grid}: the grid is written as PNG; name it *.png (use --out-dir for a folder)")
    path = resolve_checkpoint(checkpoint)
    torch_device = pick_device(device)
    generator, meta = load_generator(path, torch_device, ema=ema)
    try:
        images = draw_faces(generator, meta, count, seed, torch_device, hair=hair, eyes=eyes)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    if grid is not None:
        write_png(grid, image_grid(images, columns))
    if folder is not None:
        folder = Path(folder)
        for i, image in enumerate(images):
            write_png(folder / f"{seed}_{i:04d}.png", image)
    log.info("%d faces from %s (iteration %d, %s weights)", count, path, meta["iteration"], meta["weights"])
    return GenerateSummary(
        checkpoint=str(path),
        iteration=meta["iteration"],
        weights=meta["weights"],
        count=count,
        image_size=meta["image_size"],
        seed=seed,
        device=str(torch_device),
        grid=str(grid) if grid is not None else None,
        folder=str(folder) if folder is not None else None,
        model=meta["model"],
        hair=color_word(hair) if hair is not None else None,
        eyes=color_word(eyes) if eyes is not None else None,
    )
