"""Lookahead-MLM: an encoder reads the prompt next to k blocks of per-candidate mask slots.

Input layout (one document per query, packed several to a row; built by ``model.collators.MaskConcatCollator``,
see ``model.packing``)::

    [CLS] prompt [SEP] | m_1 .. m_1 [SEP] | m_2 .. m_2 [SEP] | ... | m_k .. m_k [SEP]
    positions 0 .. n+1 | n+2 .. n+2+L      | n+2 .. n+2+L      | ... (every block restarts at n+2)

``m_i`` is candidate i's own mask token and each block holds ``mask_length`` (L) slots. Because every block
starts at the same position, the k blocks look the same to the encoder except for their mask token. A query
attends to all of its own tokens and to no other query's. At routing time every slot is a mask token; in
training a slot holds candidate i's response token and the masked ones are predicted by the MLM head
("foreseeing" the response). The routing head (``RoutingPredictionHead``) reads each query's [CLS].

``foresight="actual"`` (a ceiling, not a router): the slots hold candidate i's actual response (its first
L - 1 tokens, then m_i in the last slot so that the block still names its candidate) in training *and* at
routing time, nothing is masked and there is no MLM loss: what perfectly foreseen L-token responses give this
router.

Works with BERT-family encoders (absolute position embeddings, ``position_ids`` passed explicitly) and
ModernBERT (rotary positions from ``position_ids``; its local-attention layers see a window of token
indices, so with long inputs a block attends only to nearby blocks in those layers).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForMaskedLM
from transformers.activations import ACT2FN

from model.base import RouterModel, RouterModelConfig, RouterOutput
from model.collators import MaskConcatCollator
from model.packing import IGNORE_INDEX, document_bounds, packed_hidden_states, row_assignment


class RoutingPredictionHead(nn.Module):
    """[CLS] state [N, d] -> k routing logits [N, k]: dense (d -> d) -> the backbone's activation -> layer norm
    (a BERT-style prediction-head transform), then dropout (``head_dropout``) and a linear layer with k outputs,
    as in the paper's Lookahead-MLM."""

    def __init__(self, config: RouterModelConfig):
        super().__init__()
        backbone = config.backbone_config
        hidden = backbone.hidden_size
        activation = getattr(backbone, "hidden_act", None) or getattr(backbone, "hidden_activation", None) or "gelu"
        self.dense = nn.Linear(hidden, hidden)
        self.activation = ACT2FN[activation]
        eps = getattr(backbone, "layer_norm_eps", None) or getattr(backbone, "norm_eps", None) or 1e-12
        self.layer_norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(config.head_dropout)
        self.out = nn.Linear(hidden, config.num_candidates)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.layer_norm(self.activation(self.dense(states)))))


class LookaheadMLM(RouterModel):
    backbone_auto_class = AutoModelForMaskedLM

    @classmethod
    def collator_for(cls, config: RouterModelConfig, tokenizer) -> MaskConcatCollator:
        return MaskConcatCollator(tokenizer, config.num_candidates, config.max_seq_length, config.candidate_token_ids,
                                  config.mask_length, config.max_positions, config.response_truncation_side,
                                  row_assignment(config.backbone_config._attn_implementation),
                                  actual_responses=config.foresight == "actual")

    @property
    def route_reads_responses(self) -> bool:
        return self.config.foresight == "actual"

    def __init__(self, config: RouterModelConfig, backbone=None):
        super().__init__(config, backbone)
        if not any(hasattr(self.backbone, name) for name in ("cls", "lm_head", "decoder")):
            raise ValueError(f"Lookahead-MLM does not know the masked-LM head of {type(self.backbone).__name__}; "
                             f"use a BERT-family or ModernBERT encoder.")
        if config.routing_head == "linear":  # an ablation: dropout + one linear layer on [CLS]
            self.routing_head = nn.Sequential(nn.Dropout(config.head_dropout),
                                              nn.Linear(config.backbone_config.hidden_size, config.num_candidates))
        else:
            self.routing_head = RoutingPredictionHead(config)
        self.post_init()

    def masked_lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits for the hidden states ``hidden [N, d]`` (only the positions to predict)."""
        if hasattr(self.backbone, "cls"):  # BERT, DeBERTa-v2
            return self.backbone.cls(hidden)
        if hasattr(self.backbone, "lm_head"):  # RoBERTa, XLM-R
            return self.backbone.lm_head(hidden)
        return self.backbone.decoder(self.backbone.head(hidden))  # ModernBERT

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, document_ids: torch.Tensor,
                mlm_labels: torch.Tensor | None = None) -> RouterOutput:
        """A packed batch (``model.packing``: input_ids/position_ids/document_ids [R, W]); mlm_labels [R, W]: the
        token to predict, -100 elsewhere.

        The MLM head runs only on the labelled positions; ``lm_loss`` is their mean cross-entropy.
        """
        hidden = packed_hidden_states(self.backbone.base_model, False, input_ids, position_ids, document_ids)
        first_tokens, _ = document_bounds(document_ids)
        routing_logits = self.routing_head(hidden.flatten(0, 1)[first_tokens])
        lm_loss = None
        if mlm_labels is not None:
            predicted = mlm_labels != IGNORE_INDEX
            token_logits = self.masked_lm_logits(hidden[predicted])
            lm_loss = F.cross_entropy(token_logits.float(), mlm_labels[predicted])
        return RouterOutput(routing_logits=routing_logits, lm_loss=lm_loss)
