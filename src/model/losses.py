"""Routing losses and per-query score normalisation.

Every loss takes the router's ``logits [B, k]`` (one per candidate) and the query's normalised candidate
scores ``scores [B, k]`` (higher is better) and returns a scalar averaged over the batch. Any leading
dimensions count as rows: ``[..., k]`` gives the loss of the flattened ``[-1, k]`` (the same holds for
``normalize_per_query``, row by row).

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

``ROUTING_LOSSES`` is the one registry: each entry holds the loss and its *score kind*, how a router trained
with it reads its logits as quality estimates in [0, 1] (``routers.policy.quality_estimates``): ``softmax``
for the distribution losses (the probability that a candidate is the best), ``sigmoid`` for the independent
per-candidate ones. Adding a loss is one function and one entry: ``--loss_type``, the trainers and serving
read the registry.
The module lives beside the models (not the trainers) because serving reads the score kinds and never imports
training code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

SCORE_NORMALIZATIONS = ("none", "min-max", "softmax", "standardization")


def normalize_per_query(scores: torch.Tensor, method: str) -> torch.Tensor:
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


def bce_labels(scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """The BCE targets [B, k]: 1 where a candidate's (normalised) score is >= ``threshold`` x its query's best,
    else 0 (a query whose normalised scores are all 0, e.g. all tied under min-max, is all 1s)."""
    return (scores >= threshold * scores.max(dim=-1, keepdim=True).values).float()


def bce_loss(logits: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, bce_labels(scores, threshold))


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


@dataclass(frozen=True)
class RoutingLoss:
    """A routing loss: ``compute(logits [B, k], scores [B, k], bce_threshold, kl_temperature)`` -> scalar, and the
    score kind of a router trained with it (``softmax`` | ``sigmoid``, see the module docstring)."""

    compute: Callable[[torch.Tensor, torch.Tensor, float, float], torch.Tensor]
    score_kind: str


ROUTING_LOSSES: dict[str, RoutingLoss] = {
    "CE": RoutingLoss(lambda logits, scores, threshold, temperature: ce_loss(logits, scores), "softmax"),
    "BCE": RoutingLoss(lambda logits, scores, threshold, temperature: bce_loss(logits, scores, threshold), "sigmoid"),
    "MSE": RoutingLoss(lambda logits, scores, threshold, temperature: mse_loss(logits, scores), "sigmoid"),
    "KL": RoutingLoss(lambda logits, scores, threshold, temperature: forward_kl_loss(logits, scores, temperature),
                      "softmax"),
    "ForwardKL": RoutingLoss(lambda logits, scores, threshold, temperature:
                             forward_kl_loss(logits, scores, temperature), "softmax"),
    "ReverseKL": RoutingLoss(lambda logits, scores, threshold, temperature:
                             reverse_kl_loss(logits, scores, temperature), "softmax"),
}


def routing_loss(name: str, logits: torch.Tensor, scores: torch.Tensor, *, bce_threshold: float = 0.8,
                 kl_temperature: float = 0.1) -> torch.Tensor:
    """The routing loss called ``name`` (``--loss_type``, a key of ``ROUTING_LOSSES``), computed in float32;
    ValueError for an unknown name."""
    if name not in ROUTING_LOSSES:
        raise ValueError(f"Unknown loss_type {name!r}; choose one of {', '.join(ROUTING_LOSSES)}.")
    return ROUTING_LOSSES[name].compute(logits.float(), scores.float(), bce_threshold, kl_temperature)
