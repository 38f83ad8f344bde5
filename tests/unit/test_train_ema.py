"""The generator's moving average: a ramped decay, and weights that move towards the model's."""

import torch

from train.ema import EMA
from train.models import build_models


def test_decay_ramps_up_to_its_setting():
    generator, _ = build_models(8, 4, 4, 32, seed=0)
    ema = EMA(generator, decay=0.999)
    assert ema.decay_at(0) == 0.1
    assert ema.decay_at(100) < ema.decay_at(1000) <= 0.999
    assert ema.decay_at(100_000) == 0.999


def test_update_moves_the_average_towards_the_model_and_copies_buffers():
    generator, _ = build_models(8, 4, 4, 32, seed=0)
    ema = EMA(generator, decay=0.9)
    start = ema.model.main[0].weight.clone()
    with torch.no_grad():
        generator.main[0].weight.add_(1.0)
        generator.main[1].running_mean.fill_(3.0)
    ema.update(generator, iteration=1000)  # decay 0.9 here
    assert torch.allclose(ema.model.main[0].weight, start + 0.1, atol=1e-6)
    assert torch.equal(ema.model.main[1].running_mean, generator.main[1].running_mean)
    assert not ema.model.training
    assert not any(p.requires_grad for p in ema.model.parameters())
