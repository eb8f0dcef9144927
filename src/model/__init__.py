"""Router models (one per training stage) and loading a trained router folder.

``ROUTER_MODELS`` (stage -> model class) is the one registry that loads a trained router: each model class also
owns its stage's token layout (``collator_for``, ``model.collators``) and says whether routing reads the
candidates' responses (``route_reads_responses``), so routing and serving need nothing from ``trainers``."""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer

from model.base import RouterModel, RouterModelConfig, RouterOutput
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


def router_stage(folder: str | Path) -> str | None:
    """The ``stage`` a trained router's ``config.json`` in ``folder`` records; None when there is no such file or it
    is not a router's (a backbone's config, a JSON list)."""
    config_file = Path(folder) / "config.json"
    config = read_json(config_file) if config_file.is_file() else None
    return config.get("stage") if isinstance(config, dict) else None


def load_router_model(path: str | Path) -> tuple[RouterModel, "AutoTokenizer"]:
    """The router model (in eval mode, float32) and its tokenizer saved in ``path`` by training. DataError when
    ``path`` holds no router (naming the folds when it is a cross-fit run) or a stage we do not know."""
    path = Path(path)
    stage = router_stage(path)
    if stage is None:
        folds = sorted(str(p) for p in path.glob("fold_*") if router_stage(p) is not None)
        if folds:
            raise DataError(f"{path} is a cross-fit run: each of {', '.join(folds)} holds a router trained "
                            f"without that fold of the benchmarks. Load one of them, e.g. {folds[0]}.")
        raise DataError(f"{path / 'config.json'} names no router stage: {path} is not a trained router folder "
                        f"(train one with `python src/train.py <stage> --output_dir {path}`).")
    if stage not in ROUTER_MODELS:
        raise DataError(f"{path / 'config.json'}: field 'stage' is {stage!r}; expected one of {sorted(ROUTER_MODELS)}.")
    model = ROUTER_MODELS[stage].from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path, config=model.config)  # not AutoConfig: it warns on our model_type
    return model.eval(), tokenizer


__all__ = ["ROUTER_MODELS", "RouterModel", "RouterModelConfig", "RouterOutput", "LookaheadMLM", "LookaheadCLM",
           "PromptClassifier", "ResponseScorer", "load_router_model", "router_stage"]
