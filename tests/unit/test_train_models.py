"""The DCGAN networks: shapes for every image size, the paper's init, seeded construction."""

import pytest
import torch

from gan.models import Discriminator, Generator, build_models, depth_for


@pytest.mark.parametrize("size", [32, 64, 128])
def test_generator_and_discriminator_fit_each_image_size(size):
    generator, discriminator = build_models(nz=8, ngf=4, ndf=4, image_size=size, seed=0)
    images = generator(torch.randn(3, 8, 1, 1))
    assert images.shape == (3, 3, size, size)
    assert images.min() >= -1 and images.max() <= 1  # Tanh output
    assert discriminator(images).shape == (3,)  # one raw logit per image


def test_depth_follows_the_paper_at_64_and_adds_or_drops_blocks():
    assert [depth_for(s) for s in (32, 64, 128)] == [3, 4, 5]
    with pytest.raises(ValueError, match="32, 64, 128"):
        depth_for(48)


def test_64px_networks_have_the_paper_layer_widths():
    generator = Generator(nz=100, ngf=64, image_size=64)
    convs = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 3]
    discriminator = Discriminator(ndf=64, image_size=64)
    convs = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    # No batch norm on the discriminator's first layer, as in the paper.
    assert not isinstance(discriminator.main[1], torch.nn.BatchNorm2d)


def test_weights_start_from_the_papers_normal_distribution():
    generator, _ = build_models(nz=100, ngf=64, ndf=64, image_size=64, seed=0)
    weights = torch.cat([m.weight.flatten() for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)])
    assert abs(weights.mean().item()) < 1e-3
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)


def test_same_seed_same_weights_and_the_global_rng_is_left_alone():
    before = torch.random.get_rng_state()
    g1, d1 = build_models(8, 4, 4, 32, seed=5)
    after = torch.random.get_rng_state()
    g2, _ = build_models(8, 4, 4, 32, seed=5)
    g3, _ = build_models(8, 4, 4, 32, seed=6)
    assert torch.equal(before, after)
    assert all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values(), strict=True))
    assert not torch.equal(g1.main[0].weight, g3.main[0].weight)
