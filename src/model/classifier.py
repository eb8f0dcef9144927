"""Pooled classifiers: the prompt-only router (stage ``sc``) and the response-aware upper bound (``gt_responses``).

PromptClassifier (sc): one sequence per query (the prompt alone) -> k outputs, one logit per candidate,
trained as a multi-label classifier.

ResponseScorer (gt_responses): k sequences per query, the prompt followed by candidate i's actual
response -> one output each, reshaped to the k logits. It reads the responses, so it also needs them at
routing time: an upper bound on what foreseeing the responses can give, not a deployable router.

The backbone is an encoder or a decoder (``AutoModel``); pooling of the last hidden states:
``cls`` (first token, encoders), ``mean`` (over non-pad tokens) or ``last`` (last non-pad token, decoders;
inputs are right-padded).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel

from model.base import RouterModel, RouterModelConfig, RouterOutput

POOLINGS = ("cls", "mean", "last")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """hidden [B, T, d], attention_mask [B, T] (right-padded) -> [B, d]."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1)
    if pooling == "last":
        last = attention_mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"Unknown pooling {pooling!r}; choose one of {POOLINGS}.")


class PromptClassifier(RouterModel):
    backbone_auto_class = AutoModel
    one_sequence_per_candidate = False

    def __init__(self, config: RouterModelConfig, backbone=None):
        super().__init__(config, backbone)
        if getattr(self.backbone, "pooler", None) is not None:
            self.backbone.pooler = None  # BERT's pooler is not used (and would leave parameters without grads)
        self.backbone.config.use_cache = False  # decoders: no key/value cache in a single forward
        num_outputs = 1 if self.one_sequence_per_candidate else config.num_candidates
        self.routing_head = nn.Linear(config.backbone_config.hidden_size, num_outputs)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> RouterOutput:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = pool(hidden, attention_mask, self.config.pooling)
        logits = self.routing_head(self.dropout(pooled))
        return RouterOutput(routing_logits=logits.view(-1, self.config.num_candidates))


class ResponseScorer(PromptClassifier):
    """One score per (prompt, response_i) sequence; rows of a query are consecutive (query-major)."""

    one_sequence_per_candidate = True
