"""The ``reward_model`` scorer: a Hugging Face sequence-classification reward model's score of
(prompt, response), rendered with the reward model's chat template (the paper used
Skywork-Reward-Gemma-2-27B-v0.2). Batched, bf16 on GPU, float32 on CPU; the score is the model's
single output logit.
"""
from __future__ import annotations


class RewardModelScorer:
    """Scores responses with the reward model at ``model_path``, ``batch_size`` conversations at a time;
    conversations longer than ``max_length`` tokens are cut at the end."""

    def __init__(self, model_path: str, batch_size: int = 8, max_length: int = 4096):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.torch = torch
        self.batch_size, self.max_length = batch_size, max_length
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        if not self.tokenizer.chat_template:
            raise ValueError(f"{model_path}: the tokenizer has no chat template to render (prompt, response). "
                             f"Add a chat_template to its tokenizer_config.json.")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForSequenceClassification.from_pretrained(model_path, dtype=dtype)
        if self.model.config.num_labels != 1:
            raise ValueError(f"{model_path}: a reward model has one output, this one has "
                             f"{self.model.config.num_labels} labels.")
        self.model.config.pad_token_id = self.tokenizer.pad_token_id  # the model pools the last non-pad token
        self.model.to(self.device).eval()

    def rewards(self, prompts: list[str], responses: list[str]) -> list[float]:
        texts = self.tokenizer.apply_chat_template(
            [[{"role": "user", "content": p}, {"role": "assistant", "content": r}]
             for p, r in zip(prompts, responses)], tokenize=False)
        scores = []
        for first in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[first:first + self.batch_size], return_tensors="pt", padding=True,
                                   truncation=True, max_length=self.max_length, add_special_tokens=False)
            with self.torch.inference_mode():
                logits = self.model(**batch.to(self.device)).logits
            scores.extend(logits[:, 0].float().tolist())
        return scores

    def score(self, instructions: list[dict], responses: list[str]) -> list[dict]:
        rewards = self.rewards([row["prompt"] for row in instructions], responses)
        return [{"score": reward} for reward in rewards]
