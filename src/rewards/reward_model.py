"""Reward models: the one loader and scorer of (prompt, response) pairs, used by the ``reward_model`` scorer
(``compute_rewards.py``) and the ``reward`` router (``routers.reward``).

A reward model is any Hugging Face sequence-classification model with a single output (``num_labels=1``; the
paper used Skywork-Reward-Gemma-2-27B-v0.2); its score of a pair is that output logit. Loading: a local folder,
a hub id or a ``packaged:`` name (``model.backbones.resolve_backbone``); bf16 on a GPU, float32 on a CPU;
padding on the right with the tokenizer's pad token (its EOS when it has none), which the model is told, since
it pools the last non-pad token. Rendering: the tokenizer's chat template (a user turn, an assistant turn) when
it has one, then tokenised without special tokens (the template inserts those it wants); otherwise
``"prompt\\n\\nresponse"`` tokenised with the tokenizer's special tokens. Pairs are scored in batches of
``batch_size``, shortest first (less padding), each cut to ``max_length`` tokens at the end.
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from model.backbones import resolve_backbone


@functools.lru_cache(maxsize=1)
def load_reward_model(model_name_or_path: str):
    """(tokenizer, model in eval mode on the default device) of the reward model; ValueError when it has more than
    one output."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = resolve_backbone(model_name_or_path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    if model.config.num_labels != 1:
        raise ValueError(f"{model_name_or_path}: a reward model has one output, this one has "
                         f"{model.config.num_labels} labels.")
    model.config.pad_token_id = tokenizer.pad_token_id  # the model pools the last non-pad token
    return tokenizer, model.to(device).eval()


def render_conversation(tokenizer, prompt: str, response: str) -> str:
    """The text the reward model reads for (``prompt``, ``response``); see the module docstring."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}], tokenize=False)
    return f"{prompt}\n\n{response}"


def reward_scores(model_name_or_path: str, prompts: Sequence[str], responses: Sequence[str], batch_size: int = 8,
                  max_length: int = 4096) -> np.ndarray:
    """The reward model's score [n] (float64) of each pair (``prompts[i]``, ``responses[i]``)."""
    import torch

    tokenizer, model = load_reward_model(model_name_or_path)
    texts = [render_conversation(tokenizer, prompt, response) for prompt, response in zip(prompts, responses)]
    rewards = np.zeros(len(texts))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=max_length,
                              add_special_tokens=not tokenizer.chat_template, return_tensors="pt")
            rewards[rows] = model(**batch.to(model.device)).logits[:, 0].float().cpu().numpy()
    return rewards


class RewardModelScorer:
    """The ``reward_model`` scorer: ``score(instructions, responses)`` -> ``[{"score": reward}]`` with the reward
    model at ``model_path``, ``batch_size`` conversations at a time, each cut to ``max_length`` tokens."""

    def __init__(self, model_path: str, batch_size: int = 8, max_length: int = 4096):
        self.model_path, self.batch_size, self.max_length = model_path, batch_size, max_length
        self.tokenizer, self.model = load_reward_model(model_path)  # loaded (and checked) before any scoring

    def rewards(self, prompts: list[str], responses: list[str]) -> list[float]:
        return reward_scores(self.model_path, prompts, responses, self.batch_size, self.max_length).tolist()

    def score(self, instructions: list[dict], responses: list[str]) -> list[dict]:
        rewards = self.rewards([row["prompt"] for row in instructions], responses)
        return [{"score": reward} for reward in rewards]
