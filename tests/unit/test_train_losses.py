"""GAN losses on logits: the same values as the textbook forms, and finite where those overflow."""

import pytest
import torch
import torch.nn.functional as F

from train.losses import fake_loss, generator_loss, real_loss

LOGITS = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0])


def test_bce_losses_equal_sigmoid_plus_bce():
    probs = torch.sigmoid(LOGITS)
    ones, zeros = torch.ones_like(probs), torch.zeros_like(probs)
    assert real_loss(LOGITS, "bce").item() == pytest.approx(F.binary_cross_entropy(probs, ones).item(), rel=1e-5)
    assert fake_loss(LOGITS, "bce").item() == pytest.approx(F.binary_cross_entropy(probs, zeros).item(), rel=1e-5)
    assert generator_loss(LOGITS, "bce").item() == pytest.approx(F.binary_cross_entropy(probs, ones).item(), rel=1e-5)


def test_bce_on_logits_stays_exact_where_sigmoid_saturates():
    confident_and_wrong = torch.tensor([-200.0])
    # Sigmoid + BCELoss clamps log(0) to -100; the logits form gives the true loss of 200.
    assert real_loss(confident_and_wrong, "bce").item() == pytest.approx(200.0)
    assert F.binary_cross_entropy(torch.sigmoid(confident_and_wrong), torch.ones(1)).item() == pytest.approx(100.0)


def test_hinge_losses():
    assert real_loss(LOGITS, "hinge").item() == pytest.approx(torch.relu(1 - LOGITS).mean().item())
    assert fake_loss(LOGITS, "hinge").item() == pytest.approx(torch.relu(1 + LOGITS).mean().item())
    assert generator_loss(LOGITS, "hinge").item() == pytest.approx(-LOGITS.mean().item())


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="bce"):
        real_loss(LOGITS, "wasserstein")


def test_bf16_logits_give_float32_losses():
    assert real_loss(LOGITS.bfloat16(), "bce").dtype == torch.float32


def test_the_class_loss_sums_the_hair_and_eye_cross_entropies():
    from train.losses import class_loss

    labels = torch.tensor([[0, 2], [1, 0]])
    hair, eyes = torch.randn(2, 3), torch.randn(2, 4)
    expected = torch.nn.functional.cross_entropy(hair, labels[:, 0]) + torch.nn.functional.cross_entropy(eyes, labels[:, 1])
    assert torch.allclose(class_loss(hair, eyes, labels), expected)
    sure = class_loss(torch.tensor([[20.0, 0, 0], [0, 20.0, 0]]), torch.tensor([[0, 0, 20.0, 0], [20.0, 0, 0, 0]]), labels)
    assert sure < 1e-6  # confident and right: no loss
    assert class_loss(hair.bfloat16(), eyes.bfloat16(), labels).dtype == torch.float32  # computed in float under autocast
