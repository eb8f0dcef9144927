"""Pooled classifiers: the prompt-only router (stage ``sc``) and the response-aware upper bound (``gt_responses``).

PromptClassifier (sc): one document per query (the prompt alone) -> k outputs, one logit per candidate,
trained as a multi-label classifier.

ResponseScorer (gt_responses): k documents per query, the prompt followed by candidate i's actual
response -> one output each, reshaped to the k logits. It reads the responses, so it also needs them at
routing time: an upper bound on what foreseeing the responses can give, not a deployable router.

Documents are packed several to a row (``model.packing``). The backbone is an encoder or a decoder
(``AutoModel``); pooling of each document's last hidden states: ``cls`` (its first token, encoders),
``mean`` (over its tokens) or ``last`` (its last token, decoders).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel

from model.base import RouterModel, RouterModelConfig, RouterOutput
from model.collators import PromptCollator, ResponseCollator
from model.packing import attends_causally, document_bounds, packed_hidden_states, row_assignment

POOLINGS = ("cls", "mean", "last")


def pool(hidden: torch.Tensor, document_ids: torch.Tensor, pooling: str) -> torch.Tensor:
    """hidden [R, W, d], document_ids [R, W] (a packed batch) -> [D, d], one vector per document."""
    flat = hidden.flatten(0, 1)
    if pooling in ("cls", "last"):
        first, last = document_bounds(document_ids)
        return flat[first if pooling == "cls" else last]
    if pooling == "mean":
        documents = document_ids.flatten()
        real = documents >= 0
        count = int(documents.max()) + 1
        sums = flat.new_zeros(count, flat.shape[-1]).index_add(0, documents[real], flat[real])
        return sums / torch.bincount(documents[real], minlength=count).clamp_min(1)[:, None].to(flat.dtype)
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
        self.causal = attends_causally(self.backbone)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, document_ids: torch.Tensor) -> RouterOutput:
        """A packed batch (``model.packing``: input_ids/position_ids/document_ids [R, W])."""
        hidden = packed_hidden_states(self.backbone, self.causal, input_ids, position_ids, document_ids)
        pooled = pool(hidden, document_ids, self.config.pooling)
        logits = self.routing_head(self.dropout(pooled))
        return RouterOutput(routing_logits=logits.view(-1, self.config.num_candidates))

    @classmethod
    def collator_for(cls, config: RouterModelConfig, tokenizer) -> PromptCollator:
        return PromptCollator(tokenizer, config.num_candidates, config.max_seq_length, config.max_positions,
                              assign_rows=row_assignment(config.backbone_config._attn_implementation))


class ResponseScorer(PromptClassifier):
    """One score per (prompt, response_i) document; the documents of a query are consecutive (query-major)."""

    one_sequence_per_candidate = True
    route_reads_responses = True

    @classmethod
    def collator_for(cls, config: RouterModelConfig, tokenizer) -> ResponseCollator:
        return ResponseCollator(tokenizer, config.num_candidates, config.max_seq_length, config.max_prompt_length,
                                config.max_positions, "right",
                                row_assignment(config.backbone_config._attn_implementation))
