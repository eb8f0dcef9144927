"""Routing losses and per-query score normalisation.

Every loss takes the router's ``logits [B, k]`` (one per candidate) and the query's normalised candidate
scores ``scores [B, k]`` (higher is better) and returns a scalar averaged over the batch.

    CE         cross-entropy towards the best candidate; when several candidates tie for the best score
               the target is split evenly between them (= the usual one-hot CE when the best is unique).
    BCE        independent binary cross-entropy per candidate; label 1 when score >= bce_threshold x the
               query's best score (so scores are expected to be non-negative, e.g. min-max normalised).
    MSE        mean squared error between sigmoid(logits) and the scores. The sigmoid maps logits to
               [0, 1], the range of min-max normalised scores, so each candidate is regressed independently
               (a softmax would force the k predictions to sum to 1, which scores do not).
    KL         the paper's name for ForwardKL.
    ForwardKL  KL(target || softmax(logits)), mass-covering.
    ReverseKL  KL(softmax(logits) || target), mode-seeking.
               For the KLs, target = softmax(scores / kl_temperature).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SCORE_NORMALIZATIONS = ("none", "min-max", "softmax", "standardization")
LOSS_TYPES = ("CE", "BCE", "MSE", "KL", "ForwardKL", "ReverseKL")


def normalize_scores(scores: torch.Tensor, method: str) -> torch.Tensor:
    """Normalise each query's k scores (rows of ``scores [B, k]``).

    none: unchanged. min-max: (s - min) / (max - min), all zeros when every candidate scored the same.
    softmax: softmax over the k scores. standardization: (s - mean) / std (population std), zeros when std = 0.
    """
    if method == "none":
        return scores
    if method == "min-max":
        low = scores.min(dim=-1, keepdim=True).values
        spread = scores.max(dim=-1, keepdim=True).values - low
        return torch.where(spread > 0, (scores - low) / spread.clamp_min(1e-12), torch.zeros_like(scores))
    if method == "softmax":
        return scores.softmax(dim=-1)
    if method == "standardization":
        std = scores.std(dim=-1, unbiased=False, keepdim=True)
        centred = scores - scores.mean(dim=-1, keepdim=True)
        return torch.where(std > 0, centred / std.clamp_min(1e-12), torch.zeros_like(scores))
    raise ValueError(f"Unknown score normalisation {method!r}; choose one of {SCORE_NORMALIZATIONS}.")


def ce_loss(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """-log of the probability mass on the best candidate(s), ties sharing the target evenly."""
    is_best = scores == scores.max(dim=-1, keepdim=True).values
    target = is_best.float() / is_best.sum(dim=-1, keepdim=True)
    return -(target * logits.log_softmax(dim=-1)).sum(dim=-1).mean()


def bce_loss(logits: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    labels = (scores >= threshold * scores.max(dim=-1, keepdim=True).values).float()
    return F.binary_cross_entropy_with_logits(logits, labels)


def mse_loss(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(logits.sigmoid(), scores)


def forward_kl_loss(logits: torch.Tensor, scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(target || p) = sum target * (log target - log p), target = softmax(scores / temperature)."""
    log_target = (scores / temperature).log_softmax(dim=-1)
    log_p = logits.log_softmax(dim=-1)
    return (log_target.exp() * (log_target - log_p)).sum(dim=-1).mean()


def reverse_kl_loss(logits: torch.Tensor, scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(p || target) = sum p * (log p - log target), target = softmax(scores / temperature)."""
    log_target = (scores / temperature).log_softmax(dim=-1)
    log_p = logits.log_softmax(dim=-1)
    return (log_p.exp() * (log_p - log_target)).sum(dim=-1).mean()


def routing_loss(name: str, logits: torch.Tensor, scores: torch.Tensor, *, bce_threshold: float = 0.8,
                 kl_temperature: float = 0.1) -> torch.Tensor:
    """Dispatch to the routing loss called ``name`` (``--loss_type``, one of ``LOSS_TYPES``); computed in float32."""
    logits, scores = logits.float(), scores.float()
    if name == "CE":
        return ce_loss(logits, scores)
    if name == "BCE":
        return bce_loss(logits, scores, bce_threshold)
    if name == "MSE":
        return mse_loss(logits, scores)
    if name in ("KL", "ForwardKL"):
        return forward_kl_loss(logits, scores, kl_temperature)
    if name == "ReverseKL":
        return reverse_kl_loss(logits, scores, kl_temperature)
    raise ValueError(f"Unknown loss_type {name!r}; choose one of {LOSS_TYPES}.")
