"""The untrained baseline of the evaluation: the same network, freshly initialised from a seed."""

import torch

from evaluate.metrics.face_rate import untrained_copy
from gan.models import build_models


def _weights(model):
    return torch.cat([t.detach().flatten().float() for t in model.state_dict().values()])


def test_untrained_copy_is_a_fresh_seeded_network_and_leaves_the_trained_one_alone():
    trained, _ = build_models(nz=8, ngf=4, ndf=4, image_size=32, seed=1)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)  # stands for training: far from any fresh init
    before = _weights(trained).clone()

    first, again, other = untrained_copy(trained, 0), untrained_copy(trained, 0), untrained_copy(trained, 5)

    assert torch.equal(_weights(trained), before)
    assert torch.equal(_weights(first), _weights(again))
    assert not torch.equal(_weights(first), _weights(other))
    # the paper's init: conv weights near N(0, 0.02), not the trained values
    conv = first.main[0].weight
    assert abs(conv.mean().item()) < 0.01 and 0.01 < conv.std().item() < 0.03
    assert not first.training
