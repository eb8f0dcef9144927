"""Router trainers: one config dataclass + one Trainer subclass per stage."""
from __future__ import annotations

from trainers.base import RouterConfig, RouterTrainer
from trainers.causal import CausalConfig, CausalTrainer
from trainers.gt_responses import GTResponsesConfig, GTResponsesTrainer
from trainers.mask_concat import MaskConcatConfig, MaskConcatTrainer
from trainers.sc import SCConfig, SCTrainer

# stage -> (config class, trainer class)
STAGES: dict[str, tuple[type[RouterConfig], type[RouterTrainer]]] = {
    "mask_concat": (MaskConcatConfig, MaskConcatTrainer),
    "causal": (CausalConfig, CausalTrainer),
    "sc": (SCConfig, SCTrainer),
    "gt_responses": (GTResponsesConfig, GTResponsesTrainer),
}

__all__ = ["STAGES", "RouterConfig", "RouterTrainer", "MaskConcatConfig", "MaskConcatTrainer", "CausalConfig",
           "CausalTrainer", "SCConfig", "SCTrainer", "GTResponsesConfig", "GTResponsesTrainer"]
