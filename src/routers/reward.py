"""Routing by a reward model's score of each candidate's actual response.

This router needs every candidate's response, i.e. all candidates must have answered first; it is the
"generate everything, then pick" reference point. The reward model is loaded, rendered and scored by
``rewards.reward_model`` (the loader the ``reward_model`` scorer uses): any Hugging Face sequence-classification
model with a single output (``num_labels=1``); the (prompt, response) pair is rendered with the tokenizer's chat
template when it has one (user turn, assistant turn), else as ``"prompt\\n\\nresponse"``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from rewards.reward_model import reward_scores
from routers.base import Router


class RewardRouter(Router):
    """Scores each candidate's response with ``reward_model`` (batched, ``batch_size`` pairs per forward, each cut
    to ``max_length`` tokens)."""

    needs_responses = True

    def __init__(self, reward_model: str, batch_size: int = 8, max_length: int = 2048):
        self.reward_model = reward_model
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)

    def route(self, prompts: Sequence[str], responses: Sequence[Sequence[str]] | None = None,
              scores=None) -> np.ndarray:
        if responses is None or len(responses) != len(prompts):
            raise ValueError("The reward router scores the candidates' responses: pass responses=[[k strings] "
                             "per prompt] to route().")
        k = len(responses[0]) if responses else 0
        if any(len(per_query) != k for per_query in responses):
            raise ValueError(f"The reward router needs the same number of responses for every prompt; the first "
                             f"prompt has {k}.")
        pairs = [(prompt, response) for prompt, per_query in zip(prompts, responses) for response in per_query]
        rewards = reward_scores(self.reward_model, [p for p, _ in pairs], [r for _, r in pairs], self.batch_size,
                                self.max_length)
        return rewards.reshape(len(prompts), k)
