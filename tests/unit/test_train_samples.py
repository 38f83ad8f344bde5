"""Sample images: seeded noise, uint8 conversion, grids and the captioned progress GIF."""

import numpy as np
import torch
from PIL import Image

from gan.samples import fixed_noise, image_grid, to_uint8, write_gif, write_png


def test_fixed_noise_depends_only_on_the_seed():
    assert torch.equal(fixed_noise(4, 8, seed=3), fixed_noise(4, 8, seed=3))
    assert not torch.equal(fixed_noise(4, 8, seed=3), fixed_noise(4, 8, seed=4))
    assert fixed_noise(4, 8, seed=3).shape == (4, 8, 1, 1)


def test_to_uint8_maps_minus_one_one_to_0_255_channels_last():
    images = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    out = to_uint8(images)
    assert out.shape == (1, 1, 4, 3) and out.dtype == np.uint8
    assert out[0, 0, :, 0].tolist() == [0, 128, 255, 255]


def test_image_grid_places_images_in_rows_with_padding():
    images = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 30)])
    grid = image_grid(images, columns=2, padding=1)
    assert grid.shape == (1 + 2 * 5, 1 + 2 * 5, 3)
    assert grid[1, 1, 0] == 10 and grid[1, 6, 0] == 20 and grid[6, 1, 0] == 30
    assert grid[6, 6, 0] == 0 and grid[0, 0, 0] == 0  # the empty cell and the padding stay black


def test_gif_has_one_frame_per_grid_and_thins_long_runs(tmp_path):
    frames = []
    for step in range(5):
        path = tmp_path / f"step_{step:06d}.png"
        write_png(path, np.full((8, 8, 3), step * 40, np.uint8))
        frames.append((f"step {step}", path))
    assert write_gif(tmp_path / "all.gif", frames) == 5
    with Image.open(tmp_path / "all.gif") as gif:
        assert gif.n_frames == 5 and gif.size == (8, 8 + 14)
    assert write_gif(tmp_path / "thin.gif", frames, max_frames=3) == 3
    assert write_gif(tmp_path / "none.gif", []) == 0 and not (tmp_path / "none.gif").exists()
