"""Losses: ASL against its formula on hand-computed values; BCE/combined/pos_weight behaviour."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from affectlab.losses import AsymmetricLoss, ClassificationLoss, LossConfig, positive_weights


def asl_by_hand(logit, target, gamma_neg, gamma_pos, clip):
    p = 1 / (1 + math.exp(-logit))
    if target == 1:
        return -((1 - p) ** gamma_pos) * math.log(p)
    pm = max(p - clip, 0.0)
    return -(pm ** gamma_neg) * math.log(1 - pm)


def test_asl_hand_computed_values():
    # logit 0 positive: p=.5, (1-.5)^1*log(.5) = -0.346574
    # logit 2 negative: p=.880797, p_m=.830797, p_m^4*log(1-p_m) = .476413*-1.776612 = -0.846398
    loss = AsymmetricLoss(gamma_neg=4, gamma_pos=1, clip=0.05)(torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx((0.346574 + 0.846398) / 2, abs=1e-5)


@pytest.mark.parametrize("gamma_neg,gamma_pos,clip", [(4, 0, 0.05), (2, 1, 0.0), (0, 0, 0.0), (3, 2, 0.2)])
def test_asl_matches_formula_elementwise_mean(gamma_neg, gamma_pos, clip):
    torch.manual_seed(0)
    logits = torch.randn(5, 7) * 3
    targets = (torch.rand(5, 7) < 0.3).float()
    got = AsymmetricLoss(gamma_neg, gamma_pos, clip)(logits, targets).item()
    want = sum(asl_by_hand(l, t, gamma_neg, gamma_pos, clip)
               for l, t in zip(logits.flatten().tolist(), targets.flatten().tolist())) / logits.numel()
    assert got == pytest.approx(want, rel=1e-5)


def test_asl_without_focusing_or_clip_is_bce():
    logits, targets = torch.randn(4, 6), (torch.rand(4, 6) < 0.5).float()
    asl = AsymmetricLoss(gamma_neg=0, gamma_pos=0, clip=0)(logits, targets)
    assert asl.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, targets).item(), rel=1e-5)


def test_asl_gradient_is_finite_for_extreme_logits():
    logits = torch.tensor([[-60.0, 60.0, 0.0]], requires_grad=True)
    AsymmetricLoss()(logits, torch.tensor([[1.0, 0.0, 1.0]])).backward()
    assert torch.isfinite(logits.grad).all()


def test_combined_is_weighted_sum():
    logits, targets = torch.randn(3, 4), (torch.rand(3, 4) < 0.5).float()
    cfg = LossConfig(name="combined", gamma_neg=4, gamma_pos=0, clip=0.05, bce_weight=0.3)
    combined = ClassificationLoss(cfg)(logits, targets).item()
    bce = F.binary_cross_entropy_with_logits(logits, targets).item()
    asl = AsymmetricLoss(4, 0, 0.05)(logits, targets).item()
    assert combined == pytest.approx(0.3 * bce + 0.7 * asl, rel=1e-6)


def test_pos_weight_from_frequencies_and_bce_uses_it():
    y = torch.tensor([[1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 1, 0]], dtype=torch.float32)
    w = positive_weights(y, max_weight=10)
    assert w.tolist() == pytest.approx([3.0, 3.0, 1 / 3])
    logits = torch.zeros(4, 3)
    loss = ClassificationLoss(LossConfig("bce"), pos_weight=w)(logits, y).item()
    assert loss == pytest.approx(F.binary_cross_entropy_with_logits(logits, y, pos_weight=w).item())
    assert loss != pytest.approx(F.binary_cross_entropy_with_logits(logits, y).item())


def test_bad_loss_config_raises():
    with pytest.raises(ValueError, match="unknown loss"):
        ClassificationLoss(LossConfig("focal"))
    with pytest.raises(ValueError, match="gamma"):
        AsymmetricLoss(gamma_neg=-1)
