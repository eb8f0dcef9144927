"""The run folder: what an evaluation (``src/eval_baseline.py``) or a training run (``src/train.py``) writes, and
how its readers (``src/report.py``, ``bench/quality.py``) read it back.

    <run>/run_args.json                  the run's one metadata file: ``run_name`` and the arguments it ran with
                                         (train.py: ``stage`` and the stage's config, which ``--config`` reads
                                         back; eval_baseline.py: ``router_type``, ``router_kwargs`` and
                                         ``args.EvalArguments``). Both hold ``candidate_llms`` and ``data_dir``.
    <run>/test_predictions/<bench>.json  one row per query of the benchmark, in its record order:
                                         ``{prompt_id, router_scores: [k floats], choice, fold}`` (fold: the
                                         cross-fit fold that routed the query, None without cross-fitting)
    <run>/metrics.json                   ``metrics.evaluate_benchmarks`` of the predictions
    <run>/results.md                     ``metrics.format_table`` of the run (one row)

Everything is written atomically (``utils.io``); reading checks each file and names the file, entry and field
of a bad one (DataError).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

import metrics
from data import BENCHMARKS
from model.backbones import cache_dir
from utils.io import DataError, atomic_write_text, read_json, write_json

METADATA = "run_args.json"
PREDICTIONS = "test_predictions"
METRICS = "metrics.json"
TABLE = "results.md"


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------

def run_name(metadata: dict, folder: str | Path) -> str:
    """The row name in tables of the run in ``folder`` with ``metadata`` (its arguments): its ``run_name`` unless
    that is empty or the ``output_dir`` (what older ``TrainingArguments`` set when none was given), else the
    folder's name."""
    requested = metadata.get("run_name")
    return requested if requested and requested != metadata.get("output_dir") else Path(folder).name


def router_run_name(router_type: str, router_kwargs: dict) -> str:
    """The default row name of a baseline router: its type and its arguments, e.g. ``knn(n_neighbors=10)``."""
    if not router_kwargs:
        return router_type
    return f"{router_type}(" + ", ".join(f"{key}={value}" for key, value in sorted(router_kwargs.items())) + ")"


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------

def write_metadata(folder: str | Path, metadata: dict) -> None:
    """``<folder>/run_args.json``: the run's metadata (see the module docstring)."""
    write_json(Path(folder) / METADATA, metadata)


def prediction_rows(records: Sequence[dict], router_scores: np.ndarray, fold: int | None = None) -> list[dict]:
    """One row per record: its ``prompt_id``, the router's k scores, the chosen candidate (argmax, the lowest
    index on ties) and the cross-fit ``fold`` that routed it (None without cross-fitting)."""
    router_scores = np.asarray(router_scores, dtype=float)
    return [{"prompt_id": record["prompt_id"], "router_scores": [float(x) for x in row],
             "choice": int(np.argmax(row)), "fold": fold} for record, row in zip(records, router_scores)]


def predictions_path(folder: str | Path, benchmark: str) -> Path:
    return Path(folder) / PREDICTIONS / f"{benchmark}.json"


def write_predictions(folder: str | Path, benchmark: str, rows: list[dict]) -> None:
    write_json(predictions_path(folder, benchmark), rows, indent=None)


def has_predictions(folder: str | Path, benchmarks) -> bool:
    """Whether ``folder`` holds the predictions of every benchmark named in ``benchmarks``."""
    return all(predictions_path(folder, name).exists() for name in benchmarks)


def write_results(folder: str | Path, name: str, benchmarks: dict[str, list[dict]],
                  predictions: dict[str, list[dict]], data_dir: str | Path, candidates: Sequence[str]) -> str:
    """Score ``predictions`` (``{benchmark: rows}``, rows in the order of ``benchmarks[benchmark]``) on the full
    benchmarks and write the predictions, metrics.json and results.md to ``folder``; returns the table (one row,
    named ``name``)."""
    summary = metrics.evaluate_benchmarks(
        benchmarks, {benchmark: [row["choice"] for row in predictions[benchmark]] for benchmark in benchmarks},
        data_dir, candidate_names=list(candidates), cache_dir=cache_dir())
    table = metrics.format_table({name: summary})
    for benchmark, rows in predictions.items():
        write_predictions(folder, benchmark, rows)
    write_json(Path(folder) / METRICS, summary)
    atomic_write_text(Path(folder) / TABLE, table)
    return table


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------

@dataclass
class Run:
    """A finished run: its folder, row name, metadata (run_args.json), metrics.json and test predictions."""

    folder: Path
    name: str
    metadata: dict
    metrics: dict
    candidates: list[str]
    data_dir: str | None
    predictions: dict[str, list[dict]] = field(default_factory=dict)


def read_metadata(folder: str | Path) -> dict:
    """``<folder>/run_args.json`` as a dict (DataError when it is missing or not an object)."""
    path = Path(folder) / METADATA
    if not path.exists():
        raise DataError(f"{path} not found: {folder} is not a run folder of src/train.py or src/eval_baseline.py "
                        f"(both write {METADATA}). Pass a run folder written by one of them.")
    metadata = read_json(path)
    if not isinstance(metadata, dict):
        raise DataError(f"{path}: expected a JSON object of the run's arguments, got {type(metadata).__name__}. "
                        f"Rerun the evaluation.")
    return metadata


def read_predictions(folder: str | Path, benchmark: str, k: int | None = None) -> list[dict]:
    """The rows of ``<folder>/test_predictions/<benchmark>.json``, each checked to hold a ``prompt_id`` and (when
    ``k`` is given) ``router_scores`` of k finite numbers."""
    path = predictions_path(folder, benchmark)
    rows = read_json(path)
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of predictions, got {type(rows).__name__}. Rerun the router.")
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or "prompt_id" not in row:
            raise DataError(f"{path}, entry {index}: field 'prompt_id' is missing. Rerun the router on the benchmark.")
        scores = row.get("router_scores")
        if k is not None and not (isinstance(scores, list) and len(scores) == k and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in scores)):
            raise DataError(f"{path}, entry {index} (prompt_id {row['prompt_id']!r}): field 'router_scores' must "
                            f"hold {k} finite numbers, one per candidate, got {scores!r}. Rerun the router on the "
                            f"benchmark.")
    return rows


def load_run(folder: str | Path) -> Run:
    """The finished run in ``folder``: metadata, metrics and the test predictions of every benchmark in its
    metrics, each checked (a DataError names the file, the entry and the field)."""
    folder = Path(folder)
    if not (folder / METRICS).exists():
        raise DataError(f"{folder / METRICS} not found: {folder} is not a finished run (eval_baseline.py and "
                        f"train.py write metrics.json and test_predictions/ at the end). Pass a finished run folder.")
    metadata = read_metadata(folder)
    candidates = metadata.get("candidate_llms")
    if not (isinstance(candidates, list) and candidates and all(isinstance(c, str) for c in candidates)):
        raise DataError(f"{folder / METADATA}: field 'candidate_llms' must list the names of the candidates the run "
                        f"routes, got {candidates!r}. Rerun the evaluation, or restore the field.")
    summary = read_json(folder / METRICS)
    if not isinstance(summary, dict):
        raise DataError(f"{folder / METRICS}: expected a JSON object of per-benchmark metrics, got "
                        f"{type(summary).__name__}. Rerun the evaluation.")
    run = Run(folder, run_name(metadata, folder), metadata, summary, list(candidates), metadata.get("data_dir"))
    for benchmark in BENCHMARKS:
        if benchmark in summary and predictions_path(folder, benchmark).exists():
            run.predictions[benchmark] = read_predictions(folder, benchmark, len(candidates))
    return run


def combine_results(run_dirs: Sequence[str | Path]) -> str:
    """One table (``metrics.format_table``) with a row per run folder, named by ``run_name``."""
    results = {}
    for folder in run_dirs:
        name = run_name(read_metadata(folder), folder)
        results[name] = read_json(Path(folder) / METRICS)
    return metrics.format_table(results)
