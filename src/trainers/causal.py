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

from model import LookaheadCLM, RouterModelConfig
from model.packing import row_assignment
from trainers.base import RouterConfig, RouterTrainer
from trainers.collators import CausalCollator

MODEL_ID_TYPES = ("special", "letter", "number")


@dataclass
class CausalConfig(RouterConfig):
    """RouterConfig plus the model-ID tokens and the SFT weight. Default that differs: the backbone is
    packaged:smollm2-135m-instruct."""

    backbone_name_or_path: str = field(default="packaged:smollm2-135m-instruct", metadata={
        "help": "Decoder backbone: a local HF folder, a hub id, or packaged:smollm2-135m-instruct."})
    model_id_type: str = field(default="special", metadata={"help": "Model-ID tokens.",
                                                            "choices": list(MODEL_ID_TYPES)})
    sft_loss_weight: float = field(default=1.0, metadata={"help": "Weight of the next-token loss on responses."})

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
        return {"model_id_type": args.model_id_type, "max_response_length": args.max_response_length}

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

    @classmethod
    def collator_for(cls, config: RouterModelConfig, tokenizer) -> CausalCollator:
        return CausalCollator(tokenizer, config.num_candidates, config.max_prompt_length,
                              config.max_response_length, config.candidate_token_ids,
                              row_assignment(config.backbone_config._attn_implementation))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Routing loss + sft_loss_weight x next-token loss on the responses (training batches)."""
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
        if outputs.lm_loss is not None:
            self.record_metric("sft_loss", outputs.lm_loss)
            loss = loss + self.args.sft_loss_weight * outputs.lm_loss
        return (loss, outputs) if return_outputs else loss
