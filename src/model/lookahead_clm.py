"""Lookahead-CLM: a decoder reads the prompt, a model-ID token for candidate i, then candidate i's response.

Input layout (one prefix-shared document per query; built by ``model.collators.CausalCollator``, see
``model.packing``)::

    training:  <prompt as the chat template's user turn> | <id_1> response_1 <eos> | ... | <id_k> response_k <eos>
    routing:   <prompt as the chat template's user turn> | <id_1> | <id_2> | ... | <id_k>

Each block (``|``) attends to the prompt and causally to itself, never to another block, and its position ids
continue from the prompt's; so block i computes exactly what ``prompt <id_i> response_i <eos>`` alone would,
while the prompt is read once instead of k times.

The routing logit of candidate i is a linear head (with dropout) on the final hidden state at ``<id_i>``.
Because attention is causal, that state depends only on the prompt and ``<id_i>``, so it is the same in
training and at routing time; training it jointly with the next-token loss on response_i (which flows
through the same state) teaches it to anticipate what candidate i would answer.

``model_id_positions`` are flat indices into the [rows x width] token grid, query-major (query b's
candidate i at ``b * k + i``). The response loss never builds the [tokens x vocabulary] logits
(``model.chunked_ce``).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModelForCausalLM

from model.base import RouterModel, RouterModelConfig, RouterOutput
from model.chunked_ce import linear_cross_entropy
from model.collators import CausalCollator
from model.packing import IGNORE_INDEX, packed_hidden_states, row_assignment


class LookaheadCLM(RouterModel):
    backbone_auto_class = AutoModelForCausalLM

    @classmethod
    def collator_for(cls, config: RouterModelConfig, tokenizer) -> CausalCollator:
        return CausalCollator(tokenizer, config.num_candidates, config.max_seq_length, config.max_prompt_length,
                              config.candidate_token_ids, config.max_positions, "right",
                              row_assignment(config.backbone_config._attn_implementation))

    def __init__(self, config: RouterModelConfig, backbone=None):
        super().__init__(config, backbone)
        self.routing_head = nn.Linear(config.backbone_config.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, document_ids: torch.Tensor,
                model_id_positions: torch.Tensor, block_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> RouterOutput:
        """A packed batch (``model.packing``: input_ids/position_ids/document_ids/block_ids [R, W]);
        model_id_positions [B * k]; labels [R, W]: the token at each response position (-100 elsewhere),
        predicted from the previous position.

        ``lm_loss`` is the mean next-token cross-entropy over the labelled positions.
        """
        hidden = packed_hidden_states(self.backbone.base_model, True, input_ids, position_ids, document_ids,
                                      block_ids, use_cache=False)
        id_states = hidden.flatten(0, 1)[model_id_positions]
        routing_logits = self.routing_head(self.dropout(id_states)).view(-1, self.config.num_candidates)
        lm_loss = None
        if labels is not None:
            targets = labels[:, 1:]
            predicted = targets != IGNORE_INDEX
            head = self.backbone.get_output_embeddings()
            lm_loss = linear_cross_entropy(hidden[:, :-1][predicted], head.weight, targets[predicted], head.bias)
        return RouterOutput(routing_logits=routing_logits, lm_loss=lm_loss)
