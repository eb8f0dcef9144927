"""Route with a trained router folder: ``PretrainedRouter.from_pretrained(path)``.

    from routers.pretrained import PretrainedRouter

    router = PretrainedRouter.from_pretrained("output/quality/mask_concat_minilm/fold_0")
    router.route(["Write a function that merges two sorted lists."])     # [n, k] routing logits
    decision = router.decide(["Write a function that merges two sorted lists."])
    decision.chosen()                                                    # ["Qwen2.5-Coder-7B-Instruct"]

A trained router folder (written by ``src/train.py``; a cross-fit run holds one per ``fold_<f>/``) describes
itself: its config.json names the stage, backbone, candidates, routing loss, normalisation and input lengths,
next to the weights, the tokenizer and the model card. Any stage loads (``model.ROUTER_MODELS``: mask_concat, causal, sc, gt_responses;
gt_responses reads the candidates' responses, so it needs them at routing time). Inputs are laid out by the
stage's own collator (the model class's ``collator_for``), exactly as in training; prompts are routed in batches
of ``batch_size``, on CPU by default. Nothing here imports the training code.

Routing reads at most the first ``max_prompt_length`` tokens of a prompt (what the stage's collator keeps of
``max_length``), so each prompt is first cut to ``MAX_CHARS_PER_TOKEN`` characters per such token: a prompt of
megabytes costs what its start costs. On the 12,459 benchmark and Self-OSS-Instruct prompts, the first 64, 128
or 512 tokens span at most 6.7 characters per token (MiniLM and SmolLM2 tokenizers) and the cut leaves every one
of those token lists unchanged; only text with long runs of whitespace or words of tens of characters before
its first ``max_prompt_length`` tokens is routed on fewer tokens than training read.

``precision``: ``fp32``, ``bf16`` (the weights cast to bfloat16), or ``auto`` (the default: bf16 on a CPU that
computes it natively, with AVX512-BF16 or AMX, else fp32). Measured with ``python bench/bench.py --routing_only
--routers DIR ...`` (one thread, a CPU with AMX) on trained MiniLM routers over the 8,124 test-benchmark queries:
bf16 routed 2.4x (sc) and 3.4x (mask_concat) as many queries per second as float32 and chose float32's
candidate for 99.93% and 99.11% of them (the others were near ties); bf16 autocast over float32 weights was as
fast on sc batches (2.5x) but slower on single queries and on mask_concat (2.4x), and int8 dynamic quantisation
of the linear layers was slower (1.5-1.6x) and agreed on only 97.7% / 87.5%. Pass ``precision="fp32"`` for
float32's exact scores.

A router trained with ``--task_prior_blend True`` has a ``task_prior.json`` beside its weights: ``route`` then
blends its estimates with the task prior (``routers.task_prior``; one MiniLM embedding per prompt more). The prior
gets each prompt cut to ``PRIOR_PROMPT_CHARS`` (the 256 tokens its embedding reads, at ``MAX_CHARS_PER_TOKEN``), not
to the router's shorter cut: in training it embedded the whole prompt.

``route`` follows the ``routers.Router`` interface (scores [n, k], higher = route there), so a trained router
drops into ``eval_baseline``-style evaluation. ``decide`` adds the cost-aware choice
(``routers.policy.RoutingPolicy.decide``): the policy calibrated and saved next to the router
(``routing_policy.json``, see ``python src/calibrate.py``) when there is one, else the best quality estimate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from model import load_router_model
from model.embeddings import DEFAULT_MAX_LENGTH
from routers.base import Router
from routers.policy import RoutingDecision, RoutingPolicy, estimate_tokens, load_policy, score_kind_of
from routers.task_prior import TASK_PRIOR_FILE, TaskPrior
from utils.io import DataError

DEFAULT_BATCH_SIZE = 32
MAX_CHARS_PER_TOKEN = 32  # a prompt is cut to this many characters per token it may keep (5x the 6.7 measured)
PRIOR_PROMPT_CHARS = DEFAULT_MAX_LENGTH * MAX_CHARS_PER_TOKEN  # what the task prior's embedding may read
PRECISIONS = ("auto", "bf16", "fp32")
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` computes bfloat16 matrix products natively: a CPU with AVX512-BF16 or AMX tiles.
    (GPUs: False, since bf16 routing was measured on CPU only.)"""
    if torch.device(device).type != "cpu":
        return False
    return any(getattr(torch.cpu, probe, lambda: False)()
               for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """``bf16`` or ``fp32`` for ``precision`` (one of ``PRECISIONS``) on ``device``; ValueError otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


class PretrainedRouter(Router):
    """A trained router loaded from its folder; see the module docstring."""

    def __init__(self, model, tokenizer, folder: str | Path, batch_size: int = DEFAULT_BATCH_SIZE,
                 use_task_prior: bool = True):
        self.model = model
        self.folder = Path(folder)
        self.batch_size = batch_size
        self.precision = {torch.bfloat16: "bf16", torch.float32: "fp32"}.get(next(model.parameters()).dtype)
        self.stage = model.config.stage
        self.collator = type(model).collator_for(model.config, tokenizer)
        self.prompt_chars = self.collator.max_prompt_length * MAX_CHARS_PER_TOKEN
        self.needs_responses = model.route_reads_responses
        self.candidates = list(model.config.candidate_llms)
        self.score_kind = score_kind_of(self.folder)
        self.policy = load_policy(self.folder, self.candidates) or RoutingPolicy(self.candidates)
        self.task_prior = TaskPrior.load(self.folder, len(self.candidates)) if use_task_prior else None
        if self.task_prior is not None and self.score_kind != "sigmoid":
            raise DataError(f"{self.folder / TASK_PRIOR_FILE}: a task prior blends sigmoid chances, but this router's "
                            f"scores are read as {self.score_kind} (its routing loss); delete the file, or retrain "
                            f"with --loss_type BCE --task_prior_blend True.")

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE,
                        precision: str = "auto", use_task_prior: bool = True) -> "PretrainedRouter":
        """Load the router saved in ``path`` (a folder whose config.json names a stage) onto ``device`` in ``precision``
        (``auto`` | ``bf16`` | ``fp32``, see the module docstring; ValueError for another; DataError for a folder
        without a router, as ``model.load_router_model``). ``use_task_prior=False`` ignores a saved
        ``task_prior.json`` (the router's own logits)."""
        dtype = DTYPES[resolve_precision(precision, device)]
        path = Path(path)
        model, tokenizer = load_router_model(path)
        return cls(model.to(device=device, dtype=dtype), tokenizer, path, batch_size, use_task_prior)

    @torch.inference_mode()
    def route(self, prompts: Sequence[str], responses: Sequence[Sequence[str]] | None = None,
              scores: Sequence[Sequence[float]] | None = None) -> np.ndarray:
        """The router's scores [len(prompts), k] (logits, float32; higher = route there). Each prompt is cut to
        ``self.prompt_chars`` characters first (see the module docstring). A router saved with its task prior
        (``task_prior.json``) returns the blended logits (``routers.task_prior``)."""
        if self.needs_responses and responses is None:
            raise ValueError(f"The {self.stage} router reads the candidates' responses: pass responses (k per prompt).")
        records = [{"prompt": prompt[:self.prompt_chars], "responses": responses[i] if responses is not None else None}
                   for i, prompt in enumerate(prompts)]
        features = self.collator.encode(records, with_responses=self.needs_responses)
        device = next(self.model.parameters()).device
        logits = [np.zeros((0, len(self.candidates)), dtype=np.float32)]
        for start in range(0, len(features), self.batch_size):
            batch = {name: tensor.to(device)
                     for name, tensor in self.collator(features[start:start + self.batch_size]).items()}
            logits.append(self.model(**batch).routing_logits.float().cpu().numpy())
        logits = np.concatenate(logits)
        if self.task_prior is not None:
            return self.task_prior.blend_logits([prompt[:PRIOR_PROMPT_CHARS] for prompt in prompts], logits)
        return logits

    def decide(self, prompts: Sequence[str], responses: Sequence[Sequence[str]] | None = None,
               policy: RoutingPolicy | None = None) -> RoutingDecision:
        """Route ``prompts`` and choose with ``policy`` (default: the router's saved policy, else best quality)."""
        return (policy or self.policy).decide(self.route(prompts, responses), self.score_kind,
                                              [estimate_tokens(prompt) for prompt in prompts])
