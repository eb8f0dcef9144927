"""Length-controlled AlpacaEval 2 win rate: the GLM of alpaca_eval ("length_controlled_v1"), fitted offline.

The model (Dubois et al., 2024, "Length-Controlled AlpacaEval"; form read from alpaca_eval's
``metrics/glm_winrate.py``) predicts the judge's probability that a model's output beats the reference
output on instruction i:

    logit p_i = bias + phi * tanh(delta_i / std(delta)) + gamma * difficulty_i

with ``delta_i = len(reference_i) - len(output_i)`` in characters, ``std`` the sample standard deviation
(ddof 1) of that model's deltas, and soft labels ``y_i = preference_i - 1`` in [0, 1] (the fit minimises the
cross-entropy against the judge's probability). The length-controlled win rate is the prediction with the
length term removed, averaged over instructions: ``100 * mean_i sigmoid(bias + gamma * difficulty_i)``.

``difficulty`` is, officially, a fixed vector downloaded from the model hub (``instruction_difficulty.csv``),
computed once by a joint fit over the leaderboard's models in which every model has its own bias and length
coefficient and every instruction its own additive effect (alpaca_eval's notebook
``instruction_difficulty.ipynb``). The hub is out of reach here, so :func:`fit_difficulty` refits that joint
GLM on the annotations at hand; its L2 penalty on the instruction effects is chosen by 5-fold
cross-validated log loss, as the official joint fit chooses its (L1) strength by cross-validation.

Known differences from the official per-model fit, which cannot be reproduced offline: alpaca_eval also
trains on the annotations of two "gamed" versions of the baseline (``df_gamed.csv`` from the hub, weight
0.1 each, sharing ``phi`` and ``gamma``) and picks an L1 strength by cross-validation; here the per-model fit
is the unpenalised maximum-likelihood estimate. ``scripts/lc_error_report.py`` measures the resulting error
against official leaderboard values.

When the ``alpaca_eval`` package is importable and both of its hub files sit in the local hub cache,
:func:`official_length_controlled_win_rate` runs the official function instead.
"""
from __future__ import annotations

import hashlib
import importlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit, log_expit

from utils.io import DataError, read_json, resolve, write_json

ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
REFERENCE_MODEL = "gpt4_1106_preview"
RIDGE_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
CV_FOLDS = 5
CV_SEED = 0
DIFFICULTY_CACHE_FILE = "alpaca_instruction_difficulty.json"
HUB_REPO = "tatsu-lab/alpaca_eval"
HUB_FILES = ("instruction_difficulty.csv", "df_gamed.csv")

_MAX_NEWTON_STEPS = 100
_STEP_TOLERANCE = 1e-10


# --------------------------------------------------------------------------------------------------
# Features and the per-model GLM
# --------------------------------------------------------------------------------------------------

def length_feature(reference_lengths, output_lengths) -> np.ndarray:
    """``tanh((reference - output) / std)`` per row (one row per model; a 1-D input is one model).

    ``std`` is the row's sample standard deviation (ddof 1) of the length differences; a row whose
    differences do not vary (or has fewer than two entries) gets an all-zero feature.
    """
    delta = np.asarray(reference_lengths, dtype=float) - np.asarray(output_lengths, dtype=float)
    rows = np.atleast_2d(delta)
    std = rows.std(axis=1, ddof=1, keepdims=True) if rows.shape[1] > 1 else np.zeros((rows.shape[0], 1))
    feature = np.zeros_like(rows)
    np.divide(rows, std, out=feature, where=std > 0)
    feature = np.tanh(feature)
    return feature.reshape(delta.shape)


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return -(labels * log_expit(logits) + (1.0 - labels) * log_expit(-logits))


@dataclass(frozen=True)
class GlmFit:
    """Coefficients of one model's GLM: ``logit = bias + length * feature + difficulty * d``."""

    bias: float
    length: float
    difficulty: float

    def length_controlled_win_rate(self, difficulty: np.ndarray) -> float:
        """100 x the mean over instructions of the prediction with the length term set to zero."""
        return float(expit(self.bias + self.difficulty * np.asarray(difficulty, dtype=float)).mean() * 100)


def fit_model_glm(labels, feature, difficulty) -> GlmFit:
    """Unpenalised soft-label logistic regression of one model's ``labels`` (``preference - 1``).

    Newton's method with backtracking; NaN labels are left out. A feature that is constant zero keeps a
    zero coefficient (minimum-norm steps), so a single instruction or equal lengths do not break the fit.
    """
    labels = np.asarray(labels, dtype=float)
    observed = ~np.isnan(labels)
    y = labels[observed]
    design = np.stack([np.ones(len(labels)), np.asarray(feature, float), np.asarray(difficulty, float)], 1)
    x = design[observed]
    weights = np.zeros(3)

    def loss(w):
        return _cross_entropy(x @ w, y).sum()

    current = loss(weights)
    for _ in range(_MAX_NEWTON_STEPS):
        p = expit(x @ weights)
        gradient = x.T @ (p - y)
        hessian = (x * (p * (1 - p))[:, None]).T @ x
        step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        weights, current, size = _backtrack(loss, weights, step, current)
        if size < _STEP_TOLERANCE:
            break
    return GlmFit(*(float(w) for w in weights))


def _backtrack(loss, params: np.ndarray, step: np.ndarray, current: float):
    """Take the longest of step, step/2, ... that does not increase ``loss``; return (params, loss, max |move|)."""
    scale = 1.0
    while scale > 1e-8:
        candidate = params - scale * step
        value = loss(candidate)
        if value <= current:
            return candidate, value, float(np.abs(scale * step).max(initial=0.0))
        scale /= 2
    return params, current, 0.0


# --------------------------------------------------------------------------------------------------
# The joint fit that yields the per-instruction difficulty
# --------------------------------------------------------------------------------------------------

def fit_joint_glm(labels, features, ridge: float, mask=None):
    """Joint GLM over k models and n instructions: ``logit[m, i] = bias[m] + phi[m] * feature[m, i] + d[i]``.

    ``labels`` and ``features`` are [k, n]; NaN labels and cells where ``mask`` is 0 are left out.
    The loss is the summed soft-label cross-entropy plus ``ridge / 2 * ||d||^2`` (which also pins the level
    of ``d``, otherwise shared with the biases). Newton's method; the Hessian block of ``d`` is diagonal, so
    each step solves only a 2k x 2k Schur complement. Returns (bias [k], phi [k], d [n]).
    """
    if ridge <= 0:
        raise ValueError(f"ridge must be positive (it fixes the level of the difficulty), got {ridge}.")
    labels = np.asarray(labels, dtype=float)
    s = np.asarray(features, dtype=float)
    cell_weight = (~np.isnan(labels)).astype(float)
    if mask is not None:
        cell_weight = cell_weight * np.asarray(mask, dtype=float)
    y = np.nan_to_num(labels)
    k, n = y.shape
    params = np.zeros(2 * k + n)

    def unpack(theta):
        return theta[:k], theta[k:2 * k], theta[2 * k:]

    def loss(theta):
        bias, phi, d = unpack(theta)
        logits = bias[:, None] + phi[:, None] * s + d[None, :]
        return float((cell_weight * _cross_entropy(logits, y)).sum() + 0.5 * ridge * d @ d)

    current = loss(params)
    for _ in range(_MAX_NEWTON_STEPS):
        bias, phi, d = unpack(params)
        p = expit(bias[:, None] + phi[:, None] * s + d[None, :])
        residual = cell_weight * (p - y)
        curvature = cell_weight * p * (1 - p)
        grad_models = np.concatenate([residual.sum(1), (residual * s).sum(1)])
        grad_d = residual.sum(0) + ridge * d
        # Hessian blocks: models x models (2k x 2k, block diagonal), models x instructions, diagonal d x d.
        a = np.zeros((2 * k, 2 * k))
        idx = np.arange(k)
        a[idx, idx] = curvature.sum(1)
        a[idx, k + idx] = a[k + idx, idx] = (curvature * s).sum(1)
        a[k + idx, k + idx] = (curvature * s * s).sum(1)
        b = np.concatenate([curvature, curvature * s])
        d_diag = curvature.sum(0) + ridge
        schur = a - (b / d_diag) @ b.T
        step_models = np.linalg.lstsq(schur, grad_models - b @ (grad_d / d_diag), rcond=None)[0]
        step_d = (grad_d - b.T @ step_models) / d_diag
        params, current, size = _backtrack(loss, params, np.concatenate([step_models, step_d]), current)
        if size < _STEP_TOLERANCE:
            break
    return unpack(params)


def choose_ridge(labels, features, ridges=RIDGE_GRID, folds: int = CV_FOLDS, seed: int = CV_SEED) -> float:
    """The ridge of ``ridges`` with the lowest cross-validated soft log loss of the joint GLM.

    Cells (model, instruction) are dealt into ``folds`` folds at random (fixed ``seed``); each fold is
    predicted by the fit on the others, as alpaca_eval's GroupKFold over annotation rows does.
    """
    labels = np.asarray(labels, dtype=float)
    s = np.asarray(features, dtype=float)
    fold_of = np.random.default_rng(seed).integers(0, folds, size=labels.shape)
    observed = ~np.isnan(labels)
    y = np.nan_to_num(labels)
    losses = []
    for ridge in ridges:
        total = 0.0
        for fold in range(folds):
            held_out = (fold_of == fold) & observed
            bias, phi, d = fit_joint_glm(labels, s, ridge, mask=~held_out)
            logits = bias[:, None] + phi[:, None] * s + d[None, :]
            total += float(_cross_entropy(logits, y)[held_out].sum())
        losses.append(total)
    return float(ridges[int(np.argmin(losses))])


@dataclass(frozen=True)
class InstructionDifficulty:
    """Per-instruction difficulty, keyed by the instruction text; ``source`` says where it was fitted."""

    instructions: tuple[str, ...]
    values: np.ndarray
    ridge: float
    models: tuple[str, ...]
    source: str

    def lookup(self, prompts, prompt_ids) -> np.ndarray:
        """The difficulty of each prompt; an unknown prompt raises a DataError naming its prompt_id."""
        index = {instruction: i for i, instruction in enumerate(self.instructions)}
        positions = []
        for prompt, prompt_id in zip(prompts, prompt_ids):
            if prompt not in index:
                raise DataError(
                    f"AlpacaEval prompt_id {prompt_id}: field 'prompt' is not among the {len(index)} instructions "
                    f"whose difficulty was fitted ({self.source}). Fit the difficulty on annotations of the "
                    f"same instructions.")
            positions.append(index[prompt])
        return self.values[np.asarray(positions, dtype=int)]

    def to_json(self) -> dict:
        return {"source": self.source, "ridge": self.ridge, "models": list(self.models),
                "instructions": list(self.instructions), "difficulty": [float(v) for v in self.values]}

    @classmethod
    def from_json(cls, obj: dict) -> "InstructionDifficulty":
        return cls(tuple(obj["instructions"]), np.asarray(obj["difficulty"], dtype=float), float(obj["ridge"]),
                   tuple(obj["models"]), obj["source"])


def fit_difficulty(instructions, labels, features, models, source: str) -> InstructionDifficulty:
    """Cross-validate the ridge, refit the joint GLM on all cells, keep the instruction effects."""
    ridge = choose_ridge(labels, features)
    _, _, d = fit_joint_glm(labels, features, ridge)
    return InstructionDifficulty(tuple(instructions), d, ridge, tuple(models), source)


# --------------------------------------------------------------------------------------------------
# Reading alpaca_eval annotation folders
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AnnotationTable:
    """The annotations of several models on the same instructions, aligned by instruction text."""

    models: tuple[str, ...]          # folder names
    generators: tuple[str, ...]      # the ``generator_2`` name each model was annotated under
    instructions: tuple[str, ...]
    labels: np.ndarray               # [k, n] preference - 1 (NaN where the judge gave none)
    output_lengths: np.ndarray       # [k, n] characters of output_2
    reference_lengths: np.ndarray    # [k, n] characters of output_1


def annotation_files(annotations_root: str | os.PathLike) -> dict[str, Path]:
    """``{model: path}`` for every ``<root>/<model>/weighted_alpaca_eval_gpt4_turbo/annotations.json[.gz]``."""
    root = Path(annotations_root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder. Pass the AlpacaEval folder that holds "
                        f"<model>/{ANNOTATOR}/annotations.json for each model.")
    found = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            found[folder.name] = resolve(folder / ANNOTATOR / "annotations.json")
        except FileNotFoundError:
            continue
    if not found:
        raise DataError(f"{root}: no <model>/{ANNOTATOR}/annotations.json found. Pass the AlpacaEval folder "
                        f"of the released data (test/AlpacaEval).")
    return found


def read_preference(value, where: str) -> float:
    """An annotation's ``preference`` as alpaca_eval reads it (``metrics/helpers.py``): a number in [1, 2] (1: the
    reference wins, 2: the model wins, 1.5: a draw); 0, the older encoding of a draw, reads as 1.5; null or NaN (no
    verdict) reads as NaN, which every average leaves out. Anything else is a DataError naming ``where`` and the
    field."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{where}: field 'preference' is {value!r}, not a number. Re-run the alpaca_eval "
                        f"annotator for this instruction.")
    preference = float(value)
    if preference == 0.0:  # alpaca_eval's legacy encoding of a draw
        preference = 1.5
    if not 1.0 <= preference <= 2.0:
        raise DataError(f"{where}: field 'preference' is {preference}, outside [1, 2]. Re-run the alpaca_eval "
                        f"annotator for this instruction.")
    return preference


def read_annotations(annotations_root: str | os.PathLike) -> AnnotationTable:
    """Read every model's annotations under ``annotations_root`` and align them by instruction."""
    files = annotation_files(annotations_root)
    instructions: list[str] | None = None
    models, generators, labels, output_lengths, reference_lengths = [], [], [], [], []
    for model, path in files.items():
        rows = read_json(path)
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of annotations, got {type(rows).__name__}.")
        by_instruction = {}
        for position, row in enumerate(rows):
            where = f"{path}, entry {position}"
            if not isinstance(row, dict) or not all(isinstance(row.get(f), str)
                                                    for f in ("instruction", "output_1", "output_2")):
                raise DataError(f"{where}: fields 'instruction', 'output_1', 'output_2' must be strings. "
                                f"Regenerate the file with alpaca_eval.")
            if row["instruction"] in by_instruction:
                raise DataError(f"{where}: field 'instruction' repeats an earlier entry. Keep one annotation "
                                f"per instruction.")
            by_instruction[row["instruction"]] = (read_preference(row.get("preference"), where),
                                                  len(row["output_2"]), len(row["output_1"]))
        if instructions is None:
            instructions = list(by_instruction)
        elif set(by_instruction) != set(instructions):
            raise DataError(f"{path}: field 'instruction' covers other instructions than "
                            f"{files[models[0]]}. Every model must be annotated on the same instructions.")
        generator = rows[0].get("generator_2") if rows else None
        models.append(model)
        generators.append(generator if isinstance(generator, str) else model)
        triples = np.array([by_instruction[i] for i in instructions], dtype=float)
        labels.append(triples[:, 0] - 1.0)
        output_lengths.append(triples[:, 1])
        reference_lengths.append(triples[:, 2])
    return AnnotationTable(tuple(models), tuple(generators), tuple(instructions), np.array(labels),
                           np.array(output_lengths), np.array(reference_lengths))


def difficulty_from_table(table: AnnotationTable, source: str) -> InstructionDifficulty:
    features = length_feature(table.reference_lengths, table.output_lengths)
    return fit_difficulty(table.instructions, table.labels, features, table.models, source)


_DIFFICULTY_MEMORY: dict[str, InstructionDifficulty] = {}


def fit_instruction_difficulty(annotations_root: str | os.PathLike,
                               cache_dir: str | os.PathLike | None = None) -> InstructionDifficulty:
    """Fit (once) the instruction difficulty on all annotations under ``annotations_root``.

    The result is kept in memory for the process and, with ``cache_dir``, in
    ``<cache_dir>/alpaca_instruction_difficulty.json``; both are keyed by a fingerprint of the annotation
    files (names, sizes, modification times), so changed annotations are refitted.
    """
    files = annotation_files(annotations_root)
    fingerprint = hashlib.sha256(repr(sorted(
        (model, str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns)
        for model, path in files.items())).encode()).hexdigest()
    if fingerprint in _DIFFICULTY_MEMORY:
        return _DIFFICULTY_MEMORY[fingerprint]
    cache_path = Path(cache_dir) / DIFFICULTY_CACHE_FILE if cache_dir is not None else None
    if cache_path is not None and cache_path.exists():
        cached = read_json(cache_path)
        if isinstance(cached, dict) and cached.get("fingerprint") == fingerprint:
            difficulty = InstructionDifficulty.from_json(cached)
            _DIFFICULTY_MEMORY[fingerprint] = difficulty
            return difficulty
    table = read_annotations(annotations_root)
    difficulty = difficulty_from_table(table, f"joint GLM on the annotations of {len(table.models)} models "
                                              f"under {Path(annotations_root)}")
    _DIFFICULTY_MEMORY[fingerprint] = difficulty
    if cache_path is not None:
        write_json(cache_path, {"fingerprint": fingerprint, **difficulty.to_json()})
    return difficulty


# --------------------------------------------------------------------------------------------------
# The official path (alpaca_eval installed and its hub files cached)
# --------------------------------------------------------------------------------------------------

def official_lc_available() -> bool:
    """True when ``alpaca_eval`` imports and both hub files its LC fit downloads are in the local cache."""
    try:
        importlib.import_module("alpaca_eval.metrics.glm_winrate")
        from alpaca_eval import constants
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return all(isinstance(try_to_load_from_cache(HUB_REPO, name, cache_dir=constants.DEFAULT_CACHE_DIR,
                                                 repo_type="dataset"), str) for name in HUB_FILES)


def official_length_controlled_win_rate(positions, references, outputs, preferences) -> float:
    """alpaca_eval's own LC win rate for one set of outputs; ``positions`` index the 805 instructions."""
    import pandas as pd
    from alpaca_eval.metrics.glm_winrate import get_length_controlled_winrate

    annotations = pd.DataFrame({
        "output_1": list(references), "output_2": list(outputs),
        "preference": np.asarray(preferences, dtype=float),
        "generator_1": REFERENCE_MODEL, "generator_2": "router", "annotator": ANNOTATOR,
    }, index=pd.Index(list(positions)))
    result = get_length_controlled_winrate(annotations, save_weights_dir=None,
                                           is_add_glm_preference_inplace=False)
    return float(result["length_controlled_winrate"])


# --------------------------------------------------------------------------------------------------
# Official leaderboard values, to measure the offline estimate against
# --------------------------------------------------------------------------------------------------

def official_leaderboard_lc(annotations_root: str | os.PathLike, table: AnnotationTable) -> dict[str, float]:
    """``{model: official length_controlled_winrate}`` for the models of ``table`` found in a leaderboard.

    Every ``<root>/<model>/weighted_alpaca_eval_gpt4_turbo/leaderboard.csv[.gz]`` is searched for a row named
    after the model's ``generator_2`` (or its folder); a row counts only if its ``win_rate`` equals the raw
    win rate of the annotations at hand (to 1e-6), so a leaderboard entry of another run is never used.
    """
    import pandas as pd

    leaderboards = []
    for folder in sorted(p for p in Path(annotations_root).iterdir() if p.is_dir()):
        try:
            leaderboards.append(pd.read_csv(resolve(folder / ANNOTATOR / "leaderboard.csv"), index_col=0))
        except FileNotFoundError:
            continue
    official = {}
    for model, generator, labels in zip(table.models, table.generators, table.labels):
        win_rate = float(np.nanmean(labels) * 100)
        for leaderboard in leaderboards:
            rows = leaderboard[leaderboard.index.isin([generator, model])]
            rows = rows[(rows["win_rate"] - win_rate).abs() < 1e-6]
            if len(rows) and not math.isnan(rows["length_controlled_winrate"].iloc[0]):
                official[model] = float(rows["length_controlled_winrate"].iloc[0])
                break
    return official
