"""Deterministic k-fold cross-fitting over prompts.

A prompt's fold depends on its text alone (sha256 of the stripped prompt), so it is the same in every
run, process and benchmark: a prompt that appears in two benchmarks lands in the same fold in both, and
an in-fold prompt never leaks into the pool a router is trained on for that fold.
"""
from __future__ import annotations

import hashlib
import random
from collections import defaultdict


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
