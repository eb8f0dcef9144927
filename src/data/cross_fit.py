"""Deterministic k-fold cross-fitting over prompts.

A prompt's fold depends on its text alone (sha256 of the stripped prompt), so it is the same in every
run, process and benchmark: a prompt that appears in two benchmarks lands in the same fold in both, and
an in-fold prompt never leaks into the pool a router is trained on for that fold.
"""
from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from typing import Callable, Iterable

from utils.io import DataError


def fold_of(prompt: str, k: int) -> int:
    """The fold in ``range(k)`` of ``prompt``: int(sha256(prompt.strip()), 16) % k."""
    return int(hashlib.sha256(prompt.strip().encode()).hexdigest(), 16) % k


def split_by_fold(examples: list[dict], fold: int, k: int) -> tuple[list[dict], list[dict]]:
    """``(in_fold, out_of_fold)``: the examples whose prompt falls in ``fold`` of ``k``, and the rest.

    Both keep the input order.
    """
    if k < 2 or not 0 <= fold < k:
        raise ValueError(f"Need k >= 2 and 0 <= fold < k, got fold={fold}, k={k}.")
    in_fold, out_of_fold = [], []
    for example in examples:
        (in_fold if fold_of(example["prompt"], k) == fold else out_of_fold).append(example)
    return in_fold, out_of_fold


def cross_fit_pools(train_examples: list[dict], test_sets: dict[str, list[dict]], fold: int,
                    k: int) -> tuple[list[dict], dict[str, list[dict]]]:
    """``(train_pool, test_fold)`` for one fold of cross-fitting on the test benchmarks.

    ``train_pool`` = ``train_examples`` followed by the out-of-fold records of every benchmark (in
    ``test_sets`` order); ``test_fold[name]`` = the in-fold records of benchmark ``name``.
    """
    train_pool = list(train_examples)
    test_fold = {}
    for name, examples in test_sets.items():
        in_fold, out_of_fold = split_by_fold(examples, fold, k)
        test_fold[name] = in_fold
        train_pool.extend(out_of_fold)
    return train_pool, test_fold


def check_unique_ids(name: str, records: list[dict]) -> None:
    """DataError when two records of benchmark ``name`` share a ``prompt_id`` (predictions are keyed by it)."""
    seen = set()
    for record in records:
        if record["prompt_id"] in seen:
            raise DataError(f"{name}: prompt_id {record['prompt_id']!r} appears twice; predictions are keyed "
                            f"by prompt_id, so make the ids unique.")
        seen.add(record["prompt_id"])


def cross_fit_predict(train_records: list[dict], benchmarks: dict[str, list[dict]], k: int,
                      predict_fold: Callable[[int, list[dict], dict[str, list[dict]]], dict[str, list[dict]] | None],
                      folds: Iterable[int] | None = None) -> dict[str, list[dict]] | None:
    """The cross-fitted predictions of every benchmark record: the one driver of ``src/train.py`` and
    ``src/eval_baseline.py``.

    For each fold f of ``folds`` (default: every fold of ``range(k)``), ``predict_fold(f, pool, in_fold)`` gets
    fold f's training pool and in-fold benchmark records (``cross_fit_pools``) and returns ``{benchmark: rows}``,
    one row (a dict with the record's ``prompt_id``) per in-fold record, or None when it predicts nothing (a
    fold trained but not routed). Returns ``{benchmark: rows}`` with the folds' rows merged in the order of
    ``benchmarks[benchmark]``, or None unless every fold of ``range(k)`` returned rows. DataError before any fold
    when a benchmark repeats a prompt_id.
    """
    for name, records in benchmarks.items():
        check_unique_ids(name, records)
    by_id: dict[str, dict] = {name: {} for name in benchmarks}
    predicted = set()
    for fold in range(k) if folds is None else folds:
        pool, in_fold = cross_fit_pools(train_records, benchmarks, fold, k)
        rows = predict_fold(fold, pool, in_fold)
        if rows is None:
            continue
        predicted.add(fold)
        for name, fold_rows in rows.items():
            by_id[name].update({row["prompt_id"]: row for row in fold_rows})
    if predicted != set(range(k)):
        return None
    return {name: [by_id[name][record["prompt_id"]] for record in records] for name, records in benchmarks.items()}


def hold_out_by_source(records: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """``(kept, held_out)``: a seeded ``fraction`` of each source's records (``record["source"]``, rounded,
    at least one when the source has two or more) held out, the rest kept; both keep the input order.

    Stratified by source, so the held-out part mirrors the mix of sources; each source's draw depends only on
    ``seed`` and the source's own records, not on the other sources: ``random.Random(f"{seed}:{source}")``
    samples the positions of that source's records."""
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must lie in [0, 1), got {fraction}.")
    by_source = defaultdict(list)
    for index, record in enumerate(records):
        by_source[record["source"]].append(index)
    held = set()
    for source, indices in by_source.items():
        count = round(fraction * len(indices))
        if fraction > 0 and len(indices) >= 2:
            count = max(1, count)
        held.update(random.Random(f"{seed}:{source}").sample(indices, min(count, len(indices) - 1)))
    return ([r for i, r in enumerate(records) if i not in held], [r for i, r in enumerate(records) if i in held])
