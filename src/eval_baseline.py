"""Evaluate a baseline router on the test benchmarks.

    python src/eval_baseline.py --router_type knn --cross_fit_folds 2 \\
        --train_datasets SelfOSSInstructSC2_filtered2/responses --n_neighbors 20

Arguments are those of ``args.EvalArguments`` plus ``--router_type`` (a name in ``routers.ROUTERS``),
``--run_name`` (the row name in tables; default: the router type and its arguments) and the router's own
constructor arguments (e.g. ``--target_index 2``, ``--n_neighbors 20``).

Routers that learn from data are fitted on the training sets; with ``--cross_fit_folds K`` each benchmark
is also split into K folds by prompt (``data.cross_fit``), and fold f is predicted by a router trained on
the training sets plus the other folds of every benchmark. Metrics are computed on the full benchmarks.

Writes the run folder ``output_dir`` (``runs``): ``test_predictions/<benchmark>.json`` (per query: prompt_id,
router_scores, choice, fold), ``metrics.json``, ``results.md`` (one row) and ``run_args.json`` (run name, router
type, router arguments and the ``EvalArguments``); prints the table.
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import time
from typing import Callable, Sequence

import numpy as np

import runs
from args import EvalArguments
from data import load_benchmark, load_train_sets
from data.cross_fit import check_unique_ids, cross_fit_predict
from routers import Router, build_router, router_class
from utils.io import writable_dir

logger = logging.getLogger("eval_baseline")


def route_examples(router: Router, examples: Sequence[dict]) -> np.ndarray:
    """Router scores [n, k] for ``examples``.

    Every router gets the prompts and the candidates' responses (which also tell it k); only routers that
    declare ``needs_scores`` (the oracle) see the true scores.
    """
    return router.route([example["prompt"] for example in examples],
                        responses=[example["responses"] for example in examples],
                        scores=[example["scores"] for example in examples] if router.needs_scores else None)


def predict(make_router: Callable[[], Router], train_examples: list[dict], test_sets: dict[str, list[dict]],
            folds: int) -> dict[str, list[dict]]:
    """Predictions per benchmark (``runs.prediction_rows``, in benchmark order): cross-fitted
    (``data.cross_fit.cross_fit_predict``) when the router learns and ``folds`` >= 2."""
    router = make_router()
    if router.learns_from_data and folds >= 2:
        def predict_fold(fold: int, pool: list[dict], in_fold: dict[str, list[dict]]) -> dict[str, list[dict]]:
            started = time.perf_counter()
            fitted = make_router().fit(pool)
            logger.info("fold %d/%d: fitted on %d examples in %.1fs", fold + 1, folds, len(pool),
                        time.perf_counter() - started)
            return {name: runs.prediction_rows(records, route_examples(fitted, records), fold)
                    for name, records in in_fold.items() if records}

        return cross_fit_predict(train_examples, test_sets, folds, predict_fold)
    if router.learns_from_data:
        if not train_examples:
            raise ValueError(f"{type(router).__name__} learns from data but has none: pass --train_datasets "
                             f"(e.g. SelfOSSInstructSC2_filtered2/responses) and/or --cross_fit_folds 2.")
        router.fit(train_examples)
    elif folds >= 2:
        logger.info("%s learns nothing; cross-fitting skipped", type(router).__name__)
    return {name: runs.prediction_rows(examples, route_examples(router, examples))
            for name, examples in test_sets.items()}


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
    run_name = run_name or runs.router_run_name(router_type, router_kwargs)
    build_router(router_type, **router_kwargs)  # fail on bad router arguments before loading any data
    output = writable_dir(args.output_dir, "--output_dir")  # and on an output folder that cannot take the results

    started = time.perf_counter()
    test_sets = {name: load_benchmark(name, args.data_dir, args.candidate_llms) for name in args.test_datasets}
    for name, examples in test_sets.items():
        check_unique_ids(name, examples)  # before any routing: predictions are keyed by prompt_id
    train_examples = load_train_sets(args.train_sets(), args.candidate_llms, split=args.train_split)
    logger.info("loaded %s and %d training examples in %.1fs",
                ", ".join(f"{name} ({len(examples)})" for name, examples in test_sets.items()),
                len(train_examples), time.perf_counter() - started)

    started = time.perf_counter()
    predictions = predict(lambda: build_router(router_type, **router_kwargs), train_examples, test_sets,
                          args.cross_fit_folds)
    logger.info("routed in %.1fs", time.perf_counter() - started)

    runs.write_metadata(output, {"run_name": run_name, "router_type": router_type, "router_kwargs": router_kwargs,
                                 **dataclasses.asdict(args)})
    table = runs.write_results(output, run_name, test_sets, predictions, args.data_dir, args.candidate_llms)
    print(table, end="")


if __name__ == "__main__":
    import fire

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    fire.Fire(main)
