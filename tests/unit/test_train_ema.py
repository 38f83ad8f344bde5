"""The generator's moving average: a ramped decay, and weights that move towards the model's."""

import torch

from train.ema import EMA
from gan.models import build_models


def test_decay_ramps_up_to_its_setting():
    generator, _ = build_models(8, 4, 4, 32, seed=0)
    ema = EMA(generator, decay=0.999)
    assert ema.decay_at(0) == 0.1
    assert ema.decay_at(100) < ema.decay_at(1000) <= 0.999
    assert ema.decay_at(100_000) == 0.999


def test_update_moves_the_average_towards_the_model():
    generator, _ = build_models(8, 4, 4, 32, seed=0)
    ema = EMA(generator, decay=0.9)
    start = ema.model.main[0].weight.clone()
    with torch.no_grad():
        generator.main[0].weight.add_(1.0)
    ema.update(generator, iteration=1000)  # decay 0.9 here
    assert torch.allclose(ema.model.main[0].weight, start + 0.1, atol=1e-6)
    assert not ema.model.training
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_batch_norm_statistics_are_measured_on_the_averaged_weights():
    generator, _ = build_models(8, 4, 4, 32, seed=0)
    ema = EMA(generator, decay=0.9)
    noise = [torch.randn(16, 8, 1, 1) for _ in range(3)]
    ema.recompute_batch_norm(noise)
    first_norm = ema.model.main[1]
    # The statistic is the plain mean over the batches of the first layer's outputs.
    with torch.no_grad():
        means = torch.stack([ema.model.main[0](z).mean(dim=(0, 2, 3)) for z in noise]).mean(0)
    assert torch.allclose(first_norm.running_mean, means, atol=1e-6)
    assert first_norm.momentum == 0.1 and not ema.model.training
    # Measuring again on the same noise gives the same statistics.
    before = first_norm.running_var.clone()
    ema.recompute_batch_norm(noise)
    assert torch.equal(first_norm.running_var, before)
