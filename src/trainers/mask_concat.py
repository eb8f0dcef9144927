"""Stage ``mask_concat``: Lookahead-MLM (``model.lookahead_mlm``), one encoder pass per query.

Training: each candidate's block holds its response (cut to ``mask_length`` tokens); a part of every
block is replaced by the candidate's mask token and predicted by the MLM head (weight ``mlm_loss_weight``),
next to the routing loss on the [CLS] head. The masked share rises linearly from ``starting_mask_rate``
to 1 over the first ``mask_warmup_ratio`` of the training steps (read from ``state.global_step`` and
``state.max_steps``), so the router ends up trained on the routing-time input: every slot masked.
``mask_type`` picks which slots of a block are masked: the right-most ones (the response's end first),
the left-most, or random ones; ceil(rate x mask_length) slots, at least one, per block.
``--foresight actual`` trains the ceiling instead (``model.lookahead_mlm``): the actual responses in the slots, in
training and at routing time, nothing masked, routing loss only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from model import LookaheadMLM
from trainers.base import RouterConfig, RouterTrainer

MASK_TYPES = ("right", "random", "left")
ROUTING_HEADS = ("prediction", "linear")
FORESIGHTS = ("predicted", "actual")


@dataclass
class MaskConcatConfig(RouterConfig):
    """RouterConfig plus the masking options; defaults: the paper's Lookahead-MLM recipe (batch 32 x 2
    accumulation steps, 4 epochs, mask_length 64 masked from the right, MLM loss weight 0.2, the mask rate rising
    from 0.3 to 1 over the first 20% of the steps). Backbone: the packaged all-MiniLM-L6-v2 (offline); the paper
    uses answerdotai/ModernBERT-base."""

    backbone_name_or_path: str = field(default="packaged:all-minilm-l6-v2", metadata={
        "help": "Encoder backbone (BERT family or ModernBERT): a local HF folder, a hub id, or "
                "packaged:all-minilm-l6-v2. The paper: answerdotai/ModernBERT-base."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Queries per device and step."})
    gradient_accumulation_steps: int = field(default=2, metadata={"help": "Steps accumulated per update."})
    mask_length: int = field(default=64, metadata={"help": "Slots per candidate block."})
    mask_type: str = field(default="right", metadata={"help": "Which slots are masked first.",
                                                      "choices": list(MASK_TYPES)})
    starting_mask_rate: float = field(default=0.3, metadata={"help": "Share of masked slots at step 0."})
    mask_warmup_ratio: float = field(default=0.2, metadata={
        "help": "Fraction of the training steps over which the mask rate rises to 1 (0: always 1)."})
    mlm_loss_weight: float = field(default=0.2, metadata={"help": "Weight of the MLM loss on the masked slots."})
    response_truncation_side: str = field(default="right", metadata={
        "help": "Which end of a response is cut to fit mask_length: right keeps its start.",
        "choices": ["right", "left"]})
    routing_head: str = field(default="prediction", metadata={
        "help": "Head on [CLS]: prediction (dense -> activation -> layer norm -> dropout -> linear, the paper's) or "
                "linear (dropout -> linear).", "choices": list(ROUTING_HEADS)})
    foresight: str = field(default="predicted", metadata={
        "help": "predicted (the router: slots masked at routing time, responses foreseen) or actual (a ceiling, not a "
                "router: the slots hold the candidates' actual responses in training and at routing time, nothing "
                "masked, no MLM loss; routing needs the responses).", "choices": list(FORESIGHTS)})

    def __post_init__(self):
        if self.mask_type not in MASK_TYPES:
            raise ValueError(f"--mask_type {self.mask_type!r}: choose one of {MASK_TYPES}.")
        if not 0.0 <= self.starting_mask_rate <= 1.0:
            raise ValueError(f"--starting_mask_rate must lie in [0, 1], got {self.starting_mask_rate}.")
        if not 0.0 <= self.mask_warmup_ratio <= 1.0:
            raise ValueError(f"--mask_warmup_ratio must lie in [0, 1], got {self.mask_warmup_ratio}.")
        if self.routing_head not in ROUTING_HEADS:
            raise ValueError(f"--routing_head {self.routing_head!r}: choose one of {ROUTING_HEADS}.")
        if self.foresight not in FORESIGHTS:
            raise ValueError(f"--foresight {self.foresight!r}: choose one of {FORESIGHTS}.")
        if self.mask_length < 1:
            raise ValueError(f"--mask_length must be at least 1, got {self.mask_length}.")
        if self.foresight == "actual" and self.mask_length < 2:
            raise ValueError(f"--foresight actual needs --mask_length >= 2 (response tokens, then the candidate's mask "
                             f"token), got {self.mask_length}.")
        super().__post_init__()


def mask_rate(step: int, max_steps: int, starting_mask_rate: float, mask_warmup_ratio: float) -> float:
    """Share of masked slots at optimizer step ``step``: linear from starting_mask_rate to 1 over
    mask_warmup_ratio x max_steps steps, then 1."""
    warmup_steps = mask_warmup_ratio * max_steps
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, starting_mask_rate + (1.0 - starting_mask_rate) * step / warmup_steps)


def masked_slots(num_slots: int, rate: float, mask_type: str, shape: tuple[int, int]) -> torch.Tensor:
    """Boolean [B, k, num_slots]: which slots of each block to mask (ceil(rate x num_slots), at least 1)."""
    count = max(1, math.ceil(rate * num_slots - 1e-9))
    order = torch.arange(num_slots).expand(*shape, num_slots)
    if mask_type == "right":
        return order >= num_slots - count
    if mask_type == "left":
        return order < count
    ranks = torch.rand(*shape, num_slots).argsort(dim=-1).argsort(dim=-1)
    return ranks < count


def mask_slots(inputs: dict, rate: float, mask_type: str, mask_token_ids: list[int]) -> dict:
    """A copy of the training batch ``inputs`` where ``masked_slots(rate, mask_type)`` of each block's slots
    (``slot_positions [B, k, L]``, flat indices into the token grid) hold the candidate's mask token, and
    ``mlm_labels`` hold the tokens they replaced (-100 elsewhere)."""
    slot_positions = inputs["slot_positions"]
    batch_size, k, num_slots = slot_positions.shape
    chosen = masked_slots(num_slots, rate, mask_type, (batch_size, k)).to(slot_positions.device)
    mask_ids = torch.tensor(mask_token_ids, device=slot_positions.device)
    flat = slot_positions[chosen]
    input_ids = inputs["input_ids"].clone()
    mlm_labels = torch.full_like(input_ids, -100)
    mlm_labels.view(-1)[flat] = input_ids.view(-1)[flat]
    input_ids.view(-1)[flat] = mask_ids[:, None].expand(batch_size, k, num_slots)[chosen]
    masked = {name: value for name, value in inputs.items() if name != "slot_positions"}
    return {**masked, "input_ids": input_ids, "mlm_labels": mlm_labels}


class MaskConcatTrainer(RouterTrainer):
    stage = "mask_concat"
    model_class = LookaheadMLM

    @classmethod
    def model_config_fields(cls, args: MaskConcatConfig) -> dict:
        return {"mask_length": args.mask_length, "response_truncation_side": args.response_truncation_side,
                "routing_head": args.routing_head, "foresight": args.foresight}

    @classmethod
    def add_candidate_tokens(cls, model, tokenizer, args: MaskConcatConfig) -> None:
        """k new special tokens [MASK_1] .. [MASK_k], embeddings initialised from [MASK]."""
        if tokenizer.mask_token_id is None:
            raise ValueError("mask_concat needs a tokenizer with a [MASK] token (an MLM encoder).")
        tokens = [f"[MASK_{i + 1}]" for i in range(len(args.candidate_llms))]
        tokenizer.add_tokens(tokens, special_tokens=True)
        token_ids = tokenizer.convert_tokens_to_ids(tokens)
        model.add_candidate_tokens(token_ids, init_from=[tokenizer.mask_token_id] * len(tokens))
        model.config.candidate_tokens, model.config.candidate_token_ids = tokens, token_ids

    def mask_responses(self, inputs: dict) -> dict:
        """Replace the scheduled share of each block's slots by the candidate's mask token; their original
        tokens become ``mlm_labels``."""
        rate = mask_rate(self.state.global_step, self.state.max_steps, self.args.starting_mask_rate,
                         self.args.mask_warmup_ratio)
        self.record_metric("mask_rate", rate)
        return mask_slots(inputs, rate, self.args.mask_type, self.model.config.candidate_token_ids)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Routing loss + mlm_loss_weight x MLM loss on the masked slots (training batches)."""
        if "slot_positions" in inputs:
            inputs = self.mask_responses(inputs)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
        if outputs.lm_loss is not None:
            self.record_metric("mlm_loss", outputs.lm_loss)
            loss = loss + self.args.mlm_loss_weight * outputs.lm_loss
        return (loss, outputs) if return_outputs else loss
