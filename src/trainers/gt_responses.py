"""Stage ``gt_responses``: the response-aware upper bound (``model.classifier.ResponseScorer``).

Reads the prompt followed by each candidate's actual response (k sequences per query) and gives one
score per sequence -> k logits. It needs the responses at routing time too, so it is not a deployable
router: it bounds what perfectly foreseen responses can give. Same options as ``sc`` (pooling) plus
``max_prompt_length``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from model import ResponseScorer
from trainers.sc import SCConfig, SCTrainer


@dataclass
class GTResponsesConfig(SCConfig):
    """SCConfig plus the prompt cap (each ``prompt response_i <end>`` fits --max_length)."""

    max_prompt_length: int = field(default=1024, metadata={
        "help": "Prompt tokens kept at most (its start); the response takes what the prompt leaves of --max_length."})


class GTResponsesTrainer(SCTrainer):
    stage = "gt_responses"
    model_class = ResponseScorer
    train_reads_responses = True

    @classmethod
    def model_config_fields(cls, args: GTResponsesConfig) -> dict:
        return {**super().model_config_fields(args), "max_prompt_length": args.max_prompt_length}
