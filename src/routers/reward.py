"""Routing by a reward model's score of each candidate's actual response.

This router needs every candidate's response, i.e. all candidates must have answered first; it is the
"generate everything, then pick" reference point. Any local Hugging Face sequence-classification model with
a single output (``num_labels=1``) works. The (prompt, response) pair is rendered with the tokenizer's chat
template when it has one (user turn, assistant turn), else as ``"prompt\\n\\nresponse"``.
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from model.backbones import resolve_backbone
from routers.base import Router


@functools.lru_cache(maxsize=1)
def _load_reward_model(model_dir: str, device: str):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # on a GPU the checkpoint's own dtype (reward models usually ship in bf16); on a CPU float32
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, dtype="auto" if device == "cuda" else torch.float32)
    if model.config.num_labels != 1:
        raise ValueError(f"Reward model {model_dir} has num_labels={model.config.num_labels}; the reward router "
                         f"needs a single-score model (num_labels=1).")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model.to(device).eval()


class RewardRouter(Router):
    """Scores each candidate's response with ``reward_model`` (batched, ``batch_size`` pairs per forward)."""

    needs_responses = True

    def __init__(self, reward_model: str, batch_size: int = 8, max_length: int = 2048):
        self.reward_model = reward_model
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)

    def render(self, tokenizer, prompt: str, response: str) -> str:
        if tokenizer.chat_template:
            return tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}],
                tokenize=False)
        return f"{prompt}\n\n{response}"

    def route(self, prompts: Sequence[str], responses: Sequence[Sequence[str]] | None = None,
              scores=None) -> np.ndarray:
        import torch

        if responses is None or len(responses) != len(prompts):
            raise ValueError("The reward router scores the candidates' responses: pass responses=[[k strings] "
                             "per prompt] to route().")
        k = len(responses[0]) if responses else 0
        if any(len(per_query) != k for per_query in responses):
            raise ValueError(f"The reward router needs the same number of responses for every prompt; the first "
                             f"prompt has {k}.")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        tokenizer, model = _load_reward_model(resolve_backbone(self.reward_model), device)
        # a chat template already inserts the special tokens it wants
        add_special_tokens = not tokenizer.chat_template
        texts = [self.render(tokenizer, prompt, response)
                 for prompt, per_query in zip(prompts, responses) for response in per_query]
        rewards = np.zeros(len(texts))
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start:start + self.batch_size]
                batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                  max_length=self.max_length, add_special_tokens=add_special_tokens,
                                  return_tensors="pt").to(device)
                rewards[rows] = model(**batch).logits[:, 0].float().cpu().numpy()
        return rewards.reshape(len(prompts), k)
