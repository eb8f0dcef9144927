"""Router models (one per training stage) and loading a trained router folder.

``ROUTER_MODELS`` (stage -> model class) is the one registry that loads a trained router: each model class also
owns its stage's token layout (``collator_for``, ``model.collators``) and says whether routing reads the
candidates' responses (``route_reads_responses``), so routing and serving need nothing from ``trainers``."""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer

from model.base import ROUTER_CONFIG_NAME, RouterModel, RouterModelConfig, RouterOutput
from model.classifier import PromptClassifier, ResponseScorer
from model.lookahead_clm import LookaheadCLM
from model.lookahead_mlm import LookaheadMLM
from utils.io import DataError, read_json

ROUTER_MODELS: dict[str, type[RouterModel]] = {
    "mask_concat": LookaheadMLM,
    "causal": LookaheadCLM,
    "sc": PromptClassifier,
    "gt_responses": ResponseScorer,
}


def load_router_model(path: str | Path) -> tuple[RouterModel, "AutoTokenizer"]:
    """The router model (in eval mode, float32) and its tokenizer saved in ``path`` by training."""
    description_file = Path(path) / ROUTER_CONFIG_NAME
    if not description_file.exists():
        raise DataError(f"{description_file} not found: {path} is not a trained router folder (train one with "
                        f"`python src/train.py <stage> --output_dir {path}`).")
    stage = read_json(description_file).get("stage")
    if stage not in ROUTER_MODELS:
        raise DataError(f"{description_file}: field 'stage' is {stage!r}; expected one of {sorted(ROUTER_MODELS)}.")
    model = ROUTER_MODELS[stage].from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model.eval(), tokenizer


__all__ = ["ROUTER_MODELS", "RouterModel", "RouterModelConfig", "RouterOutput", "LookaheadMLM", "LookaheadCLM",
           "PromptClassifier", "ResponseScorer", "load_router_model"]
