"""Stage ``causal``: Lookahead-CLM (``model.lookahead_clm``), one prefix-shared decoder document per query.

Training: ``prompt <id_i> response_i <eos>`` for each candidate i; loss = routing loss on the k logits read
at the model-ID tokens + ``sft_loss_weight`` x the next-token loss on the response tokens (and EOS).
Routing: ``prompt <id_i>`` only.

Model-ID tokens (``model_id_type``): ``special`` adds k new special tokens <|model_1|> .. <|model_k|>
(embeddings initialised to the mean of the existing ones); ``letter`` / ``number`` reuse existing single
tokens " A", " B", ... / " 1", " 2", ... (without the leading space when the tokenizer splits it off, as
SmolLM2 does for digits; an error when neither form is a single token).
"""
from __future__ import annotations

import string
from dataclasses import dataclass, field

from model import LookaheadCLM
from trainers.base import RouterConfig, RouterTrainer

MODEL_ID_TYPES = ("special", "letter", "number")


@dataclass
class CausalConfig(RouterConfig):
    """RouterConfig plus the model-ID tokens, the SFT weight and the prompt cap; defaults: the paper's
    Lookahead-CLM recipe (batch 2 x 32 accumulation steps, 2 epochs, SFT loss weight 0.5, special model-ID
    tokens, evaluation every 50 steps). Backbone: the packaged SmolLM2-135M-Instruct (offline); the paper uses
    HuggingFaceTB/SmolLM2-135M."""

    model_id_type: str = field(default="special", metadata={"help": "Model-ID tokens.",
                                                            "choices": list(MODEL_ID_TYPES)})
    sft_loss_weight: float = field(default=0.5, metadata={"help": "Weight of the next-token loss on responses."})
    max_prompt_length: int = field(default=1024, metadata={
        "help": "Prompt tokens kept at most (its start); each prompt <id_i> response_i <eos> fits --max_length, "
                "the response taking what the prompt leaves."})
    num_train_epochs: float = field(default=2.0, metadata={"help": "Training epochs."})
    per_device_train_batch_size: int = field(default=2, metadata={"help": "Queries per device and step."})
    gradient_accumulation_steps: int = field(default=32, metadata={"help": "Steps accumulated per update."})
    eval_steps: float | None = field(default=50, metadata={
        "help": "Steps between evaluations (a float < 1 is a fraction of the total steps)."})
    save_steps: float = field(default=50, metadata={
        "help": "Steps between checkpoints (a float < 1 is a fraction of the total steps)."})

    def __post_init__(self):
        if self.model_id_type not in MODEL_ID_TYPES:
            raise ValueError(f"--model_id_type {self.model_id_type!r}: choose one of {MODEL_ID_TYPES}.")
        super().__post_init__()


def existing_single_tokens(tokenizer, texts: list[str]) -> tuple[list[str], list[int]]:
    """Token strings and ids of ``texts`` (e.g. " A"), each of which must be one token, with or without its
    leading space."""
    tokens, ids = [], []
    for text in texts:
        for candidate in (text, text.lstrip()):
            encoded = tokenizer(candidate, add_special_tokens=False)["input_ids"]
            if len(encoded) == 1:
                tokens.append(candidate)
                ids.append(encoded[0])
                break
        else:
            raise ValueError(f"{text!r} is not a single token for this tokenizer; use --model_id_type special.")
    return tokens, ids


class CausalTrainer(RouterTrainer):
    stage = "causal"
    model_class = LookaheadCLM

    @classmethod
    def model_config_fields(cls, args: CausalConfig) -> dict:
        return {"model_id_type": args.model_id_type, "max_prompt_length": args.max_prompt_length}

    @classmethod
    def add_candidate_tokens(cls, model, tokenizer, args: CausalConfig) -> None:
        k = len(args.candidate_llms)
        if args.model_id_type == "special":
            tokens = [f"<|model_{i + 1}|>" for i in range(k)]
            tokenizer.add_tokens(tokens, special_tokens=True)
            token_ids = tokenizer.convert_tokens_to_ids(tokens)
            model.add_candidate_tokens(token_ids, init_from=None)
        elif args.model_id_type == "letter":
            if k > 26:
                raise ValueError(f"--model_id_type letter has 26 tokens; there are {k} candidates.")
            tokens, token_ids = existing_single_tokens(tokenizer, [f" {c}" for c in string.ascii_uppercase[:k]])
        else:
            tokens, token_ids = existing_single_tokens(tokenizer, [f" {i + 1}" for i in range(k)])
        model.config.candidate_tokens, model.config.candidate_token_ids = tokens, token_ids

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Routing loss + sft_loss_weight x next-token loss on the responses (training batches)."""
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
        if outputs.lm_loss is not None:
            self.record_metric("sft_loss", outputs.lm_loss)
            loss = loss + self.args.sft_loss_weight * outputs.lm_loss
        return (loss, outputs) if return_outputs else loss
