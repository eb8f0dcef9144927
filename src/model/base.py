"""What every router model shares: a configuration that describes the router, and a PreTrainedModel base.

A router model is a Hugging Face ``PreTrainedModel`` that wraps a backbone (``self.backbone``) and adds a
small routing head, so Trainer's checkpointing, ``load_best_model_at_end``, ``resume_from_checkpoint``,
DeepSpeed and gradient checkpointing work unchanged, and tied backbone weights (e.g. SmolLM2's LM head)
are saved once. A saved router folder holds:

    config.json          RouterModelConfig: the backbone's config plus the router's fields (stage, backbone,
                         candidates, loss_type, normalisation, the added candidate tokens, the input lengths);
                         ``model.load_router_model`` reads its ``stage``
    model.safetensors    the weights
    tokenizer files      the tokenizer, with the added candidate tokens
    README.md            the model card (trainers.model_card)

Every forward returns ``RouterOutput(routing_logits [B, k], lm_loss)``; higher logit = better candidate.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import CONFIG_MAPPING, AutoConfig, PreTrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from model.backbones import resolve_backbone
from model.collators import RoutingCollator



class RouterModelConfig(PreTrainedConfig):
    """The backbone's configuration plus what the router needs to rebuild its inputs at routing time.

    stage                     mask_concat | causal | sc | gt_responses
    backbone_name_or_path     the backbone it was built on (``--backbone_name_or_path``)
    candidate_llms            the k candidates, in output order
    head_dropout              dropout before the routing head's output layer
    pooling                   sc's sequence representation: cls | mean | last (non-pad token)
    model_id_type             causal's model-ID tokens: special | letter | number (``--model_id_type``)
    score_normalization       the per-query normalisation of the training scores (after per-source min-max)
    candidate_tokens/_ids     the k added tokens: mask tokens (mask_concat) or model-ID tokens (causal)
    max_seq_length            the longest sequence the stage builds (``--max_length``; ``model.collators``;
                              not ``max_length``, which transformers reserves for generation)
    max_prompt_length         the most prompt tokens kept (causal, gt_responses; other stages: what max_length
                              leaves)
    mask_length               slots per candidate block (mask_concat)
    response_truncation_side  which end of a response is cut to fit mask_length (mask_concat): right keeps its start
    routing_head              mask_concat's head on [CLS]: "prediction" (the paper's) or "linear"
    foresight                 mask_concat's slots: "predicted" (the router: masked at routing time) or "actual" (the
                              candidates' actual responses at routing time too: a ceiling, not a router)
    loss_type                 the routing loss trained with (how to read the logits as quality estimates)
    """

    model_type = "lookahead_router"
    sub_configs = {"backbone_config": AutoConfig}

    def __init__(self, backbone_config=None, stage: str | None = None, backbone_name_or_path: str | None = None,
                 candidate_llms: list[str] | None = None, head_dropout: float = 0.1, pooling: str | None = None,
                 candidate_tokens: list[str] | None = None, candidate_token_ids: list[int] | None = None,
                 model_id_type: str | None = None, score_normalization: str | None = None,
                 max_seq_length: int | None = None, max_prompt_length: int | None = None,
                 mask_length: int | None = None, response_truncation_side: str | None = None,
                 loss_type: str | None = None, routing_head: str | None = None, foresight: str | None = None,
                 **kwargs):
        if isinstance(backbone_config, dict):
            backbone_config = CONFIG_MAPPING[backbone_config["model_type"]](**backbone_config)
        self.backbone_config = backbone_config
        self.stage = stage
        self.backbone_name_or_path = backbone_name_or_path
        self.loss_type = loss_type
        self.routing_head = routing_head
        self.foresight = foresight
        self.candidate_llms = list(candidate_llms or [])
        self.head_dropout = head_dropout
        self.pooling = pooling
        self.candidate_tokens = list(candidate_tokens or [])
        self.candidate_token_ids = list(candidate_token_ids or [])
        self.model_id_type = model_id_type
        self.score_normalization = score_normalization
        self.max_seq_length = max_seq_length
        self.max_prompt_length = max_prompt_length
        self.mask_length = mask_length
        self.response_truncation_side = response_truncation_side
        super().__init__(**kwargs)

    @property
    def num_candidates(self) -> int:
        return len(self.candidate_llms)

    @property
    def max_positions(self) -> int | None:
        """The backbone's position limit (None when it has none)."""
        return getattr(self.backbone_config, "max_position_embeddings", None)


@dataclass
class RouterOutput(ModelOutput):
    """routing_logits [B, k]; lm_loss: the auxiliary (masked or next-token) LM loss when labels were given."""

    routing_logits: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None


class RouterModel(PreTrainedModel):
    """Base of the router models: a ``backbone`` built with ``backbone_auto_class`` plus a routing head.

    Subclasses set ``backbone_auto_class``, build their head in ``__init__`` (after calling this one) and end
    with ``self.post_init()``. Build a fresh router from pretrained backbone weights with ``from_backbone``;
    reload a trained one with ``from_pretrained`` (or ``model.load_router_model``).
    """

    config_class = RouterModelConfig
    base_model_prefix = "router"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    backbone_auto_class: type = None
    route_reads_responses = False  # routing features carry the candidates' responses (gt_responses; mask_concat
    # with foresight "actual"): read it from the model, not the class

    def __init__(self, config: RouterModelConfig, backbone: PreTrainedModel | None = None):
        super().__init__(config)
        if backbone is None:
            backbone = self.backbone_auto_class.from_config(config.backbone_config)
        self.backbone = backbone
        self.dropout = nn.Dropout(config.head_dropout)

    @classmethod
    def from_backbone(cls, config: RouterModelConfig, attn_implementation: str | None = None) -> "RouterModel":
        """A new router whose backbone holds the pretrained weights of ``config.backbone_name_or_path``."""
        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        backbone = cls.backbone_auto_class.from_pretrained(
            resolve_backbone(config.backbone_name_or_path), dtype=torch.float32, **kwargs)
        config.backbone_config = backbone.config
        return cls(config, backbone=backbone)

    @classmethod
    def collator_for(cls, config: RouterModelConfig, tokenizer) -> "RoutingCollator":
        """The stage's token layout (``model.collators``) for a router described by ``config``, the same in
        training and at routing time."""
        raise NotImplementedError

    def _init_weights(self, module: nn.Module) -> None:
        """Initialise the router's own layers (the backbone's layers use the backbone's initialiser)."""
        if isinstance(module, nn.Linear):
            std = getattr(self.config.backbone_config, "initializer_range", 0.02)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.get_input_embeddings()

    def add_candidate_tokens(self, token_ids: list[int], init_from: list[int] | None) -> None:
        """Grow the vocabulary to cover the newly added ``token_ids`` (the last rows of the tokenizer).

        Their input (and untied output) embeddings copy the rows ``init_from`` (one source row per new
        token), or the mean of all existing rows when ``init_from`` is None.
        """
        old_size = self.get_input_embeddings().weight.shape[0]
        new_size = max(old_size, max(token_ids) + 1)
        if new_size != old_size:
            self.backbone.resize_token_embeddings(new_size, mean_resizing=False)
            self.config.backbone_config.vocab_size = new_size
        with torch.no_grad():
            matrices = [self.backbone.get_input_embeddings().weight]
            output = self.backbone.get_output_embeddings()
            if output is not None and output.weight is not matrices[0]:
                matrices.append(output.weight)
            for weight in matrices:
                if init_from is None:
                    keep = torch.ones(weight.shape[0], dtype=torch.bool, device=weight.device)
                    keep[token_ids] = False
                    sources = weight[keep].mean(dim=0, keepdim=True).expand(len(token_ids), -1)
                else:
                    sources = weight[init_from]
                weight[token_ids] = sources.clone()

