"""Evaluate a baseline router on the test benchmarks.

    python src/eval_baseline.py --router_type knn --cross_fit_folds 2 \\
        --train_datasets SelfOSSInstructSC2_filtered2/responses --n_neighbors 20

Arguments are those of ``args.EvalArguments`` plus ``--router_type`` (a name in ``routers.ROUTERS``),
``--run_name`` (the row name in tables; default: the router type and its arguments) and the router's own
constructor arguments (e.g. ``--target_index 2``, ``--n_neighbors 20``).

Routers that learn from data are fitted on the training sets; with ``--cross_fit_folds K`` each benchmark
is also split into K folds by prompt (``data.cross_fit``), and fold f is predicted by a router trained on
the training sets plus the other folds of every benchmark. Metrics are computed on the full benchmarks.

Writes to ``output_dir``: ``test_predictions/<benchmark>.json`` (per query: prompt_id, router_scores,
choice, fold), ``metrics.json`` (``metrics.summarize``), ``results.md`` (``metrics.format_table``, one row)
and ``config.json`` (run name, router and arguments); prints the table.
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

import metrics
from args import EvalArguments
from data import load_benchmark, load_train_sets
from data.cross_fit import cross_fit_pools
from model.backbones import cache_dir
from routers import Router, build_router, choose, router_class
from utils.io import DataError, atomic_write_text, read_json, writable_dir, write_json

logger = logging.getLogger("eval_baseline")


def route_examples(router: Router, examples: Sequence[dict]) -> np.ndarray:
    """Router scores [n, k] for ``examples``.

    Every router gets the prompts and the candidates' responses (which also tell it k); only routers that
    declare ``needs_scores`` (the oracle) see the true scores.
    """
    return router.route([example["prompt"] for example in examples],
                        responses=[example["responses"] for example in examples],
                        scores=[example["scores"] for example in examples] if router.needs_scores else None)


def prediction_rows(examples: Sequence[dict], router_scores: np.ndarray, fold: int | None) -> list[dict]:
    return [{"prompt_id": example["prompt_id"], "router_scores": [float(s) for s in row],
             "choice": int(choice), "fold": fold}
            for example, row, choice in zip(examples, router_scores, choose(router_scores))]


def cross_fit_predict(make_router: Callable[[], Router], train_examples: list[dict],
                      test_sets: dict[str, list[dict]], folds: int) -> dict[str, list[dict]]:
    """Predictions per benchmark (in benchmark order), each fold routed by a router fitted without it."""
    by_id: dict[str, dict[str, dict]] = {name: {} for name in test_sets}
    for fold in range(folds):
        train_pool, fold_sets = cross_fit_pools(train_examples, test_sets, fold, folds)
        started = time.perf_counter()
        router = make_router().fit(train_pool)
        logger.info("fold %d/%d: fitted on %d examples in %.1fs", fold + 1, folds, len(train_pool),
                    time.perf_counter() - started)
        for name, in_fold in fold_sets.items():
            if in_fold:
                for row in prediction_rows(in_fold, route_examples(router, in_fold), fold):
                    by_id[name][row["prompt_id"]] = row
    return {name: [by_id[name][example["prompt_id"]] for example in examples]
            for name, examples in test_sets.items()}


def predict(make_router: Callable[[], Router], train_examples: list[dict], test_sets: dict[str, list[dict]],
            folds: int) -> dict[str, list[dict]]:
    """Predictions per benchmark: cross-fitted when the router learns and ``folds`` >= 2."""
    router = make_router()
    if router.learns_from_data and folds >= 2:
        return cross_fit_predict(make_router, train_examples, test_sets, folds)
    if router.learns_from_data:
        if not train_examples:
            raise ValueError(f"{type(router).__name__} learns from data but has none: pass --train_datasets "
                             f"(e.g. SelfOSSInstructSC2_filtered2/responses) and/or --cross_fit_folds 2.")
        router.fit(train_examples)
    elif folds >= 2:
        logger.info("%s learns nothing; cross-fitting skipped", type(router).__name__)
    return {name: prediction_rows(examples, route_examples(router, examples), None)
            for name, examples in test_sets.items()}


def check_unique_ids(name: str, examples: list[dict]) -> None:
    seen = set()
    for example in examples:
        if example["prompt_id"] in seen:
            raise DataError(f"{name}: prompt_id {example['prompt_id']!r} appears twice; predictions are keyed "
                            f"by prompt_id, so make the ids unique.")
        seen.add(example["prompt_id"])


def default_run_name(router_type: str, router_kwargs: dict) -> str:
    if not router_kwargs:
        return router_type
    return f"{router_type}(" + ", ".join(f"{key}={value}" for key, value in sorted(router_kwargs.items())) + ")"


def main(router_type: str, run_name: str | None = None, data_dir: str | None = None,
         candidate_llms=None, test_datasets=None, train_datasets=None, train_split: str | None = None,
         output_dir: str | None = None, cross_fit_folds: int | None = None, seed: int | None = None,
         **router_kwargs) -> None:
    """Evaluate router ``router_type`` (see the module docstring); unset arguments take their defaults."""
    given = dict(data_dir=data_dir, candidate_llms=candidate_llms, test_datasets=test_datasets,
                 train_datasets=train_datasets, train_split=train_split, cross_fit_folds=cross_fit_folds,
                 seed=seed, output_dir=output_dir or f"output/baselines/{router_type}")
    args = EvalArguments(**{key: value for key, value in given.items() if value is not None})
    if "seed" in inspect.signature(router_class(router_type)).parameters:
        router_kwargs["seed"] = args.seed
    run_name = run_name or default_run_name(router_type, router_kwargs)
    build_router(router_type, **router_kwargs)  # fail on bad router arguments before loading any data
    output = writable_dir(args.output_dir, "--output_dir")  # and on an output folder that cannot take the results

    started = time.perf_counter()
    test_sets = {name: load_benchmark(name, args.data_dir, args.candidate_llms) for name in args.test_datasets}
    for name, examples in test_sets.items():
        check_unique_ids(name, examples)
    train_examples = load_train_sets(args.train_sets(), args.candidate_llms, split=args.train_split)
    logger.info("loaded %s and %d training examples in %.1fs",
                ", ".join(f"{name} ({len(examples)})" for name, examples in test_sets.items()),
                len(train_examples), time.perf_counter() - started)

    started = time.perf_counter()
    predictions = predict(lambda: build_router(router_type, **router_kwargs), train_examples, test_sets,
                          args.cross_fit_folds)
    logger.info("routed in %.1fs", time.perf_counter() - started)

    summary = metrics.evaluate_benchmarks(
        test_sets, {name: [row["choice"] for row in rows] for name, rows in predictions.items()},
        args.data_dir, candidate_names=args.candidate_llms, cache_dir=cache_dir())
    table = metrics.format_table({run_name: summary})

    for name, rows in predictions.items():
        write_json(output / "test_predictions" / f"{name}.json", rows, indent=None)
    write_json(output / "metrics.json", summary)
    write_json(output / "config.json", {"run_name": run_name, "router_type": router_type,
                                        "router_kwargs": router_kwargs, **dataclasses.asdict(args)})
    atomic_write_text(output / "results.md", table)
    print(table, end="")


def combine_results(run_dirs: Sequence[str | Path]) -> str:
    """One table (``metrics.format_table``) with a row per run folder: evaluation runs are named by their
    config.json run_name, training runs (``src/train.py``) by their --run_name or else the folder name."""
    results = {}
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        if (run_dir / "config.json").exists():
            name = read_json(run_dir / "config.json")["run_name"]
        else:
            name = read_json(run_dir / "run_args.json").get("run_name") or run_dir.name
        results[name] = read_json(run_dir / "metrics.json")
    return metrics.format_table(results)


if __name__ == "__main__":
    import fire

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    fire.Fire(main)
