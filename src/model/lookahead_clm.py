"""Lookahead-CLM: a decoder reads the prompt, a model-ID token for candidate i, then candidate i's response.

Input layout (k sequences per query, right-padded; built by ``trainers.collators.CausalCollator``)::

    training:  <prompt as the chat template's user turn> <id_i> response_i <eos>     for i = 1 .. k
    routing:   <prompt as the chat template's user turn> <id_i>                       for i = 1 .. k

The routing logit of candidate i is a linear head (with dropout) on the final hidden state at ``<id_i>``.
Because attention is causal, that state depends only on the prompt and ``<id_i>``, so it is the same in
training and at routing time; training it jointly with the next-token loss on response_i (which flows
through the same state) teaches it to anticipate what candidate i would answer.

``model_id_positions`` are flat indices into the [rows x length] token grid, query-major (query b's
candidate i at ``b * k + i``), so a packed layout (several sequences per row) plugs in unchanged as long
as ``attention_mask``/``position_ids`` describe it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForCausalLM

from model.base import RouterModel, RouterModelConfig, RouterOutput


class LookaheadCLM(RouterModel):
    backbone_auto_class = AutoModelForCausalLM

    def __init__(self, config: RouterModelConfig, backbone=None):
        super().__init__(config, backbone)
        self.routing_head = nn.Linear(config.backbone_config.hidden_size, 1)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                model_id_positions: torch.Tensor, labels: torch.Tensor | None = None) -> RouterOutput:
        """input_ids/attention_mask/position_ids [R, T]; model_id_positions [B * k]; labels [R, T]: the token
        at each response position (-100 elsewhere), predicted from the previous position.

        The LM head runs only on the positions that predict a label; ``lm_loss`` is their mean cross-entropy.
        """
        hidden = self.backbone.base_model(input_ids=input_ids, attention_mask=attention_mask,
                                          position_ids=position_ids, use_cache=False).last_hidden_state
        id_states = hidden.flatten(0, 1)[model_id_positions]
        routing_logits = self.routing_head(self.dropout(id_states)).view(-1, self.config.num_candidates)
        lm_loss = None
        if labels is not None:
            targets = labels[:, 1:]
            predicted = targets != -100
            token_logits = self.backbone.get_output_embeddings()(hidden[:, :-1][predicted])
            lm_loss = F.cross_entropy(token_logits.float(), targets[predicted])
        return RouterOutput(routing_logits=routing_logits, lm_loss=lm_loss)
