"""Router trainers: one config dataclass + one Trainer subclass per stage (``STAGES``), and
``save_untrained_router``, which writes a router folder with the stage's fresh (untrained) head on a given
backbone: for smoke tests of serving and for load tests, without training."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from transformers import set_seed

from trainers.base import RouterConfig, RouterTrainer
from trainers.causal import CausalConfig, CausalTrainer
from trainers.gt_responses import GTResponsesConfig, GTResponsesTrainer
from trainers.mask_concat import MaskConcatConfig, MaskConcatTrainer
from trainers.sc import SCConfig, SCTrainer
from utils.io import write_json

# stage -> (config class, trainer class)
STAGES: dict[str, tuple[type[RouterConfig], type[RouterTrainer]]] = {
    "mask_concat": (MaskConcatConfig, MaskConcatTrainer),
    "causal": (CausalConfig, CausalTrainer),
    "sc": (SCConfig, SCTrainer),
    "gt_responses": (GTResponsesConfig, GTResponsesTrainer),
}


def save_untrained_router(folder: str | Path, stage: str, backbone_name_or_path: str, candidates: Sequence[str],
                          seed: int = 0, **options) -> Path:
    """Write to ``folder`` a ``stage`` router on ``backbone_name_or_path`` with a fresh routing head (seeded), as
    ``src/train.py`` would before its first step; ``options`` are the stage's config fields (e.g.
    ``max_length=64``, ``loss_type="BCE"``). Also writes run_args.json, like training does."""
    if stage not in STAGES:
        raise ValueError(f"Unknown stage {stage!r}; choose one of {', '.join(STAGES)}.")
    config_class, trainer_class = STAGES[stage]
    args = config_class(output_dir=str(folder), backbone_name_or_path=backbone_name_or_path,
                        candidate_llms=list(candidates), report_to="none", **options)
    set_seed(seed)
    model, tokenizer = trainer_class.new_router(args)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    write_json(Path(folder) / "run_args.json", {"stage": stage, **json.loads(args.to_json_string())})
    return Path(folder)


__all__ = ["STAGES", "save_untrained_router", "RouterConfig", "RouterTrainer", "MaskConcatConfig",
           "MaskConcatTrainer", "CausalConfig", "CausalTrainer", "SCConfig", "SCTrainer", "GTResponsesConfig",
           "GTResponsesTrainer"]
