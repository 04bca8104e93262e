"""Losses for classification heads: BCE, asymmetric loss (ASL), their weighted combination, CE.

ASL (Ridnik et al., ICCV 2021), per element with p = sigmoid(logit):
    positives:  L+ = (1 - p)^gamma_pos * log(p)
    negatives:  p_m = max(p - clip, 0);  L- = p_m^gamma_neg * log(1 - p_m)
    loss = -mean(y * L+ + (1 - y) * L-)          (mean over examples and labels)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOSSES = ("bce", "asl", "combined", "ce")


class AsymmetricLoss(torch.nn.Module):
    def __init__(self, gamma_neg: float = 4.0, gamma_pos: float = 0.0, clip: float = 0.05, eps: float = 1e-8):
        super().__init__()
        if gamma_neg < 0 or gamma_pos < 0 or not 0 <= clip < 1:
            raise ValueError(f"ASL needs gamma_neg, gamma_pos >= 0 and 0 <= clip < 1 (got {gamma_neg}, {gamma_pos}, {clip})")
        self.gamma_neg, self.gamma_pos, self.clip, self.eps = gamma_neg, gamma_pos, clip, eps

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        targets = targets.to(logits.dtype)
        p = torch.sigmoid(logits)
        log_p = F.logsigmoid(logits)
        p_neg = (p - self.clip).clamp(min=0) if self.clip > 0 else p
        log_1m_p_neg = torch.log((1 - p_neg).clamp(min=self.eps))
        loss_pos = targets * log_p
        loss_neg = (1 - targets) * log_1m_p_neg
        if self.gamma_pos > 0:
            loss_pos = loss_pos * (1 - p).pow(self.gamma_pos)
        if self.gamma_neg > 0:
            loss_neg = loss_neg * p_neg.pow(self.gamma_neg)
        return -(loss_pos + loss_neg).mean()


@dataclass
class LossConfig:
    name: str = "bce"
    gamma_neg: float = 4.0
    gamma_pos: float = 0.0
    clip: float = 0.05
    bce_weight: float = 0.5       # combined = bce_weight * BCE + (1 - bce_weight) * ASL


class ClassificationLoss(torch.nn.Module):
    """One callable for every head: `loss(logits, labels)`; optional per-label positive weights for BCE."""

    def __init__(self, config: LossConfig, pos_weight: torch.Tensor | None = None):
        super().__init__()
        if config.name not in LOSSES:
            raise ValueError(f"unknown loss {config.name!r}; choose one of {LOSSES}")
        if not 0.0 <= config.bce_weight <= 1.0:
            raise ValueError(f"bce_weight must be in [0, 1], got {config.bce_weight}")
        self.config = config
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else None, persistent=False)
        self.asl = AsymmetricLoss(config.gamma_neg, config.gamma_pos, config.clip)

    def bce(self, logits, targets):
        pw = self.pos_weight.to(logits.device) if self.pos_weight is not None else None
        return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), pos_weight=pw)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        name = self.config.name
        if name == "ce":
            return F.cross_entropy(logits.float(), labels.long())
        if name == "bce":
            return self.bce(logits, labels)
        if name == "asl":
            return self.asl(logits, labels)
        w = self.config.bce_weight
        return w * self.bce(logits, labels) + (1 - w) * self.asl(logits, labels)


def positive_weights(multi_hot, max_weight: float = 10.0) -> torch.Tensor:
    """BCE `pos_weight` per label = negatives / positives in train, clamped to [1/max_weight, max_weight]."""
    y = torch.as_tensor(multi_hot, dtype=torch.float64)
    pos = y.sum(0)
    neg = y.shape[0] - pos
    w = torch.where(pos > 0, neg / pos.clamp(min=1), torch.ones_like(pos))
    return w.clamp(min=1.0 / max_weight, max=max_weight).float()
