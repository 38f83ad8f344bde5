"""DiffAugment: shapes kept, gradients pass, draws come only from the given generator."""

import pytest
import torch

from train.augment import color, cutout, diff_augment, translation


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_translation_moves_each_image_by_at_most_an_eighth_and_fills_with_zeros():
    x = torch.zeros(64, 1, 32, 32)
    x[:, :, 16, 16] = 1.0
    out = translation(x, gen())
    assert out.shape == x.shape
    assert torch.all(out.sum(dim=(1, 2, 3)) == 1.0)  # the dot stays inside and is moved, not copied
    ys, xs = (out[:, 0] == 1.0).nonzero()[:, 1], (out[:, 0] == 1.0).nonzero()[:, 2]
    assert (ys - 16).abs().max() <= 4 and (xs - 16).abs().max() <= 4
    assert len(set(zip(ys.tolist(), xs.tolist(), strict=True))) > 20  # shifts differ between images
    edge = translation(torch.ones(64, 1, 32, 32), gen())
    assert (edge == 0).any()  # uncovered borders are zero (mid-grey in [-1, 1])


def test_cutout_zeroes_one_square_of_half_the_side():
    x = torch.ones(32, 3, 16, 16)
    out = cutout(x, gen())
    zeroed = (out[:, 0] == 0).sum(dim=(1, 2))
    assert torch.all(zeroed <= 64) and torch.all(zeroed >= 16)  # 8x8, clipped at the border
    assert torch.all((out == 0).all(dim=1) == (out[:, 0] == 0))  # all channels alike


def test_color_changes_images_differently():
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    out = color(x, gen())
    assert out.shape == x.shape and not torch.allclose(out, x)
    assert not torch.allclose(out[0] - x[0], out[1] - x[1])


def test_gradients_reach_the_input_through_every_augmentation():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    diff_augment(x, ("color", "translation", "cutout"), gen()).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_the_same_generator_state_draws_the_same_augmentation():
    x = torch.rand(4, 3, 16, 16)
    policy = ("color", "translation", "cutout")
    assert torch.equal(diff_augment(x, policy, gen(3)), diff_augment(x, policy, gen(3)))
    assert not torch.equal(diff_augment(x, policy, gen(3)), diff_augment(x, policy, gen(4)))
    assert torch.equal(diff_augment(x, (), gen(3)), x)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_memory_format_does_not_change_the_result(fmt):
    x = torch.rand(4, 3, 16, 16)
    policy = ("color", "translation", "cutout")
    assert torch.allclose(diff_augment(x.contiguous(memory_format=fmt), policy, gen(1)), diff_augment(x, policy, gen(1)), atol=1e-6)
