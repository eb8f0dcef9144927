"""Stage ``sc``: a multi-label classifier on the prompt alone (``model.classifier.PromptClassifier``).

The baseline the Lookahead routers are compared with: one sequence per query, k outputs. Responses are
never read. Pooling is "cls" for encoders and "last" for decoders unless set.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from transformers import AutoConfig

from model import PromptClassifier
from model.backbones import resolve_backbone
from model.classifier import POOLINGS
from trainers.base import RouterConfig, RouterTrainer, is_encoder


@dataclass
class SCConfig(RouterConfig):
    """RouterConfig plus the pooling; defaults: the paper's MLC recipe (batch 8 x 8 accumulation steps, 4 epochs,
    BCE). Backbone: the packaged SmolLM2-135M-Instruct (offline); the paper uses HuggingFaceTB/SmolLM2-135M."""

    pooling: str | None = field(default=None, metadata={
        "help": "cls, mean or last; default cls for encoders, last (non-pad token) for decoders.",
        "choices": list(POOLINGS)})


class SCTrainer(RouterTrainer):
    stage = "sc"
    model_class = PromptClassifier
    train_reads_responses = False

    @classmethod
    def model_config_fields(cls, args: SCConfig) -> dict:
        pooling = args.pooling
        if pooling is None:
            backbone_config = AutoConfig.from_pretrained(resolve_backbone(args.backbone_name_or_path))
            pooling = "cls" if is_encoder(backbone_config) else "last"
        return {"pooling": pooling}
