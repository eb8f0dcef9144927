"""The task prior: a trained router's quality estimates blended with the task-aware baseline, per query.

A BCE router's sigmoid estimates [n, k] are each candidate's chance of being within ``bce_threshold`` of the
query's best. The prior is the same quantity per task: the mean BCE target of each candidate over the training
source whose prompt-embedding centroid is nearest the query (``routers.embedding.TaskRouter``'s source
prediction). A router that learnt little beyond the task ranks candidates by noise; the blend

    p = (1 - w) * prior + w * sigmoid(router logits),        w in [0, 1]

falls back on the task where the router is unsure, and ``w`` is chosen on validation queries (``choose_weight``:
the mean chosen reward per source, then over the sources, as each benchmark weighs alike in mean gap_closed).
w = 1 is the router alone; w = 0 is the prior alone. Measured in the CPU quality study (README): trained with
``--task_prior_blend True`` (w chosen per run), the classifier routes +0.050 [+0.017, +0.087] mean gap_closed better
than without (3 seeds, 2 folds, paired bootstrap 95% interval); applied post hoc to five router rows, it leaves
each level with the task-aware baseline or slightly above it (+0.001 to +0.042, every interval holding 0). The
validation hold-out alone cannot tell the blend from the router alone (its nested gain is within one standard error
of 0), so the scripts leave it off.

``src/train.py --task_prior_blend True`` fits the prior on the router's training queries (``--max_train_samples``'
draw when given), chooses w on the validation set and saves ``task_prior.json`` next to the router;
``routers.pretrained.PretrainedRouter`` then routes with the blend (``route`` returns ``logit(p)``, so a sigmoid of
its scores is the blended estimate).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from data.scaling import mean_over_sources, scale_scores_by_source
from model.embeddings import DEFAULT_EMBEDDING_MODEL, embed
from model.losses import bce_labels, normalize_per_query
from routers.embedding import Embedder, TaskRouter
from routers.policy import quality_estimates
from utils.io import DataError, read_json, write_json

TASK_PRIOR_FILE = "task_prior.json"
BLEND_WEIGHTS = tuple(round(0.1 * step, 1) for step in range(11))
# the blended chance is kept in [EPSILON, 1 - EPSILON] before its logit (|logit| <= 34.5); a clip at 1e-6 tied chances
# above 1 - 1e-6 that choose_weight tells apart (a confident router where the prior is 1)
EPSILON = 1e-15


def bce_targets(records: Sequence[dict], threshold: float) -> np.ndarray:
    """[n, k] the BCE routing targets of ``records`` as the trainer builds them: scores min-max scaled per source
    (``scale_scores_by_source``, fitted on ``records``), float32, min-max per query (``--score_normalization
    min-max``), then 1 where a candidate is >= ``threshold`` x the query's best, else 0."""
    scaled = torch.tensor(scale_scores_by_source(records), dtype=torch.float32)
    return bce_labels(normalize_per_query(scaled, "min-max"), threshold).numpy().astype(np.float64)


def macro_reward(records: Sequence[dict], choices: np.ndarray) -> float:
    """Mean over the records' sources of the mean per-source min-max scaled score of the chosen candidates
    (``choices`` [n] candidate indices)."""
    scaled = scale_scores_by_source(records)[np.arange(len(records)), np.asarray(choices)]
    return mean_over_sources(scaled, [record["source"] for record in records])


def blend(prior: np.ndarray, estimates: np.ndarray, weight: float) -> np.ndarray:
    """[n, k] ``(1 - weight) * prior + weight * estimates`` (both [n, k] chances in [0, 1])."""
    return (1.0 - weight) * prior + weight * estimates


class TaskPrior:
    """Per source: the centroid of its prompt embeddings and the mean BCE target of each candidate; plus the blend
    weight. ``fit`` on the training pool, ``choose_weight`` on validation records, ``save``/``load`` with a router."""

    def __init__(self, embedding_model: str = DEFAULT_EMBEDDING_MODEL, embedder: Embedder | None = None):
        self.task_router = TaskRouter(embedding_model, embedder)
        self.table: np.ndarray | None = None       # [sources, k] mean BCE targets
        self.threshold: float | None = None
        self.weight = 1.0                          # the router alone until a weight is chosen
        self.curve: dict[float, float] = {}        # validation macro reward per weight

    @property
    def sources(self) -> list[str]:
        return self.task_router.sources

    def fit(self, records: Sequence[dict], threshold: float) -> "TaskPrior":
        """Fit on scored training records (each with ``prompt``, ``source``, ``scores``)."""
        self.task_router.fit(records)
        sources = np.array([record["source"] for record in records])
        targets = bce_targets(records, threshold)
        self.table = np.stack([targets[sources == source].mean(axis=0) for source in self.sources])
        self.threshold = float(threshold)
        return self

    def prior(self, prompts: Sequence[str]) -> np.ndarray:
        """[n, k] the prior of each prompt: its nearest source's row of the table."""
        if self.table is None:
            raise RuntimeError("TaskPrior: call fit(records, threshold) or load(folder) first.")
        return self.table[self.task_router.predict_sources(prompts)]

    def choose_weight(self, records: Sequence[dict], logits: np.ndarray) -> float:
        """Set and return the weight (in ``BLEND_WEIGHTS``) with the highest ``macro_reward`` on scored validation
        ``records`` routed to ``logits`` [n, k] by the router; the smallest weight on ties (the prior is the
        simpler model). The rewards per weight are kept in ``self.curve``. ValueError when ``logits`` is not
        [len(records), k] for the table's k candidates."""
        prompts = [record["prompt"] for record in records]
        prior, estimates = self.prior(prompts), quality_estimates(self._check_logits(prompts, logits), "sigmoid")
        self.curve = {weight: macro_reward(records, blend(prior, estimates, weight).argmax(axis=1))
                      for weight in BLEND_WEIGHTS}
        self.weight = max(BLEND_WEIGHTS, key=lambda weight: (self.curve[weight], -weight))
        return self.weight

    def blend_logits(self, prompts: Sequence[str], logits: np.ndarray) -> np.ndarray:
        """[n, k] float32 ``logit((1 - w) * prior + w * sigmoid(logits))`` for the router's ``logits`` [n, k] (n =
        len(prompts), k = the table's candidates; ValueError otherwise)."""
        logits = self._check_logits(prompts, logits)
        if self.weight == 1.0:
            return np.asarray(logits, dtype=np.float32)
        estimates = quality_estimates(logits, "sigmoid")
        chance = np.clip(blend(self.prior(prompts), estimates, self.weight), EPSILON, 1.0 - EPSILON)
        return np.log(chance / (1.0 - chance)).astype(np.float32)

    def _check_logits(self, prompts: Sequence[str], logits: np.ndarray) -> np.ndarray:
        """``logits`` as an array, checked to be [len(prompts), k] (ValueError otherwise: numpy would broadcast a
        router of another k, or logits of another batch, into a blend of the wrong queries or candidates)."""
        if self.table is None:
            raise RuntimeError("TaskPrior: call fit(records, threshold) or load(folder) first.")
        logits = np.asarray(logits)
        if logits.shape != (len(prompts), self.table.shape[1]):
            raise ValueError(f"TaskPrior: logits {list(logits.shape)} do not match {len(prompts)} prompts and "
                             f"{self.table.shape[1]} candidates (the router and the prior must route the same queries "
                             f"among the same candidates).")
        return logits

    def save(self, folder: str | Path) -> Path:
        """Write ``task_prior.json`` into ``folder`` (atomically); returns its path."""
        path = Path(folder) / TASK_PRIOR_FILE
        write_json(path, {"weight": self.weight, "threshold": self.threshold,
                          "embedding_model": self.task_router.embedding_model, "sources": self.sources,
                          "table": self.table.tolist(), "centroids": self.task_router.centroids.tolist(),
                          "validation_macro_reward": {str(weight): reward for weight, reward in self.curve.items()}},
                   indent=None)
        return path

    @classmethod
    def load(cls, folder: str | Path, num_candidates: int, embedder: Embedder | None = None) -> "TaskPrior | None":
        """The prior saved in ``folder``, or None when it has none; DataError naming the file, the field and the fix
        when the file is not a prior for ``num_candidates`` candidates (``table`` [sources, k] of chances in [0, 1],
        ``centroids`` [sources, d] finite, ``sources`` a list of names, ``weight`` a number in [0, 1])."""
        path = Path(folder) / TASK_PRIOR_FILE
        if not path.exists():
            return None
        saved = read_json(path)
        fix = "retrain with --task_prior_blend True or delete the file"

        def refuse(field: str, must: str, got) -> DataError:
            return DataError(f"{path}: field {field} must be {must}, got {got}; {fix}.")

        if not isinstance(saved, dict):
            raise DataError(f"{path}: expected a JSON object (the task prior), got {type(saved).__name__}; {fix}.")
        sources = saved.get("sources")
        if not isinstance(sources, list) or not sources or not all(isinstance(name, str) for name in sources):
            raise refuse("sources", "a non-empty list of source names", repr(sources))

        def matrix(field: str) -> np.ndarray:
            try:
                values = np.asarray(saved.get(field), dtype=float)
            except (TypeError, ValueError):  # ragged rows, strings, objects
                raise refuse(field, "a list of equal-length lists of numbers", "another value") from None
            if values.ndim != 2 or len(values) != len(sources) or not np.isfinite(values).all():
                raise refuse(field, f"a finite [sources, ...] matrix with one row per source ({len(sources)})",
                             f"shape {list(values.shape)}" + ("" if np.isfinite(values).all() else " with non-finite "
                                                                                                  "values"))
            return values

        table, centroids = matrix("table"), matrix("centroids")
        if table.shape != (len(sources), num_candidates) or not ((table >= 0) & (table <= 1)).all():
            raise refuse("table", f"[sources, candidates] = [{len(sources)}, {num_candidates}] of chances in [0, 1]",
                         f"{list(table.shape)} in [{table.min():g}, {table.max():g}]")
        weight = saved.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
            raise refuse("weight", "a number in [0, 1]", repr(weight))
        embedding_model = saved.get("embedding_model", DEFAULT_EMBEDDING_MODEL)
        if not isinstance(embedding_model, str):
            raise refuse("embedding_model", "a model name or path", repr(embedding_model))
        try:
            curve = {float(key): float(value) for key, value in (saved.get("validation_macro_reward") or {}).items()}
        except (AttributeError, TypeError, ValueError):
            raise refuse("validation_macro_reward", "an object of weight: reward numbers", "another value") from None
        # routing time: each query is new, so it is embedded without the on-disk cache
        prior = cls(embedding_model, embedder or functools.partial(embed, model_name_or_path=embedding_model,
                                                                   cache=False))
        prior.task_router.sources, prior.task_router.centroids = list(sources), centroids
        prior.table, prior.weight, prior.threshold, prior.curve = table, float(weight), saved.get("threshold"), curve
        return prior
