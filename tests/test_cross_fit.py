"""Tests for data.cross_fit: deterministic prompt folds and the cross-fitting pools."""
import hashlib
import random

import pytest

from data.cross_fit import (check_unique_ids, cross_fit_pools, cross_fit_predict, fold_of, hold_out_by_source,
                            split_by_fold)
from utils.io import DataError


def example(prompt, source="T"):
    return {"prompt_id": prompt, "prompt": prompt, "source": source}


def test_fold_of_hard_coded_values():
    # Computed once with sha256 and kept as literals, so a change of the rule is caught.
    assert fold_of("What is 2+2?", 5) == 1
    assert fold_of("Write a haiku about routers.", 10) == 8
    assert fold_of("What is 2+2?", 10) == 6


def test_fold_of_ignores_surrounding_whitespace_and_follows_the_rule():
    assert fold_of("  What is 2+2?\n", 10) == fold_of("What is 2+2?", 10)
    prompt = "Sort a list in Python."
    assert fold_of(prompt, 7) == int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % 7


def test_folds_partition_the_examples():
    examples = [example(f"prompt number {i}") for i in range(60)]
    k = 4
    seen = []
    for fold in range(k):
        in_fold, out_of_fold = split_by_fold(examples, fold, k)
        assert len(in_fold) + len(out_of_fold) == len(examples)
        assert all(fold_of(e["prompt"], k) == fold for e in in_fold)
        assert all(fold_of(e["prompt"], k) != fold for e in out_of_fold)
        # input order is kept
        assert in_fold == [e for e in examples if e in in_fold]
        seen.extend(e["prompt_id"] for e in in_fold)
    assert sorted(seen) == sorted(e["prompt_id"] for e in examples)  # every example in exactly one fold
    assert all(split_by_fold(examples, fold, k)[0] for fold in range(k))  # 60 prompts fill all 4 folds


def test_split_by_fold_rejects_bad_fold_or_k():
    with pytest.raises(ValueError, match="fold=3, k=3"):
        split_by_fold([example("a")], 3, 3)
    with pytest.raises(ValueError, match="k >= 2"):
        split_by_fold([example("a")], 0, 1)


def test_cross_fit_pools_hold_no_in_fold_prompt():
    train = [example(f"train prompt {i}", "Train") for i in range(5)]
    tests = {
        "A": [example(f"bench A prompt {i}", "A") for i in range(20)],
        "B": [example(f"bench B prompt {i}", "B") for i in range(20)],
    }
    k = 3
    for fold in range(k):
        pool, test_fold = cross_fit_pools(train, tests, fold, k)
        assert list(test_fold) == ["A", "B"]
        in_fold_prompts = {e["prompt"] for name in test_fold for e in test_fold[name]}
        assert not in_fold_prompts & {e["prompt"] for e in pool}
        assert pool[:5] == train
        for name, examples in tests.items():
            assert test_fold[name] == split_by_fold(examples, fold, k)[0]
        # train + every test record lands in the pool or the in-fold set, exactly once
        assert len(pool) + len(in_fold_prompts) == 5 + 40


def test_same_prompt_in_two_benchmarks_shares_its_fold():
    shared = "Compose an engaging travel blog post about a recent trip to Hawaii."
    tests = {"A": [example(shared, "A")], "B": [example("  " + shared, "B")]}
    fold = fold_of(shared, 5)
    pool, test_fold = cross_fit_pools([], tests, fold, 5)
    assert pool == []
    assert [e["source"] for name in test_fold for e in test_fold[name]] == ["A", "B"]


def test_two_folds_are_allowed():
    examples = [example(f"prompt number {i}") for i in range(20)]
    in_fold, out_of_fold = split_by_fold(examples, 1, 2)
    assert in_fold and out_of_fold and len(in_fold) + len(out_of_fold) == 20


def sources_records():
    """Interleaved sources: A 10 records, B 4, C 1, D 2."""
    layout = "ABADACABDAABAAABA"
    return [{"prompt_id": f"{s}{i}", "prompt": f"{s} {i}", "source": s} for i, s in enumerate(layout)]


def test_hold_out_by_source_takes_a_rounded_share_of_each_source():
    records = sources_records()
    kept, held = hold_out_by_source(records, 0.25, seed=0)
    count = {s: sum(r["source"] == s for r in held) for s in "ABCD"}
    # A: round(2.5) = 2 (half to even), B: round(1.0) = 1, C: a single record is never held, D: round(0.5) = 0 -> 1
    assert count == {"A": 2, "B": 1, "C": 0, "D": 1}
    assert sorted(kept + held, key=records.index) == records and not {r["prompt_id"] for r in kept} & {
        r["prompt_id"] for r in held}
    assert kept == [r for r in records if r in kept] and held == [r for r in records if r in held]  # input order
    # the draw: random.Random(f"{seed}:{source}").sample of the source's positions (the documented rule)
    for source in "ABD":
        positions = [i for i, r in enumerate(records) if r["source"] == source]
        drawn = set(random.Random(f"0:{source}").sample(positions, count[source]))
        assert {i for i, r in enumerate(records) if r in held and r["source"] == source} == drawn


def test_hold_out_by_source_draws_each_source_on_its_own():
    records = sources_records()
    _, held = hold_out_by_source(records, 0.25, seed=0)
    only_a = [r for r in records if r["source"] == "A"]
    _, held_a = hold_out_by_source(only_a, 0.25, seed=0)
    assert held_a == [r for r in held if r["source"] == "A"]  # the other sources do not change A's draw
    assert hold_out_by_source(records, 0.25, seed=0) == (hold_out_by_source(records, 0.25, seed=0)[0], held)
    assert hold_out_by_source(only_a, 0.25, seed=1)[1] != held_a  # another seed, another draw


def test_hold_out_by_source_edges():
    records = sources_records()
    assert hold_out_by_source(records, 0.0, seed=0) == (records, [])
    kept, held = hold_out_by_source(records, 0.9, seed=0)
    # round(0.9 n), but at least one record of each source stays: A 9, B round(3.6) = 4 -> 3, C 0, D 2 -> 1
    assert {s: sum(r["source"] == s for r in held) for s in "ABCD"} == {"A": 9, "B": 3, "C": 0, "D": 1}
    assert {r["source"] for r in kept} == set("ABCD")
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match=r"fraction must lie in \[0, 1\)"):
            hold_out_by_source(records, bad, seed=0)


def test_check_unique_ids_names_the_benchmark_and_the_repeated_id():
    check_unique_ids("A", [example("a"), example("b"), example("c")])  # unique: no error
    check_unique_ids("A", [])
    records = [example("a"), example("b"), {"prompt_id": "a", "prompt": "other text", "source": "T"}]
    with pytest.raises(DataError) as error:
        check_unique_ids("MT-Bench", records)
    message = str(error.value)
    assert message.startswith("MT-Bench: prompt_id 'a' appears twice")
    assert "predictions are keyed by prompt_id, so make the ids unique." in message


def _benchmarks():
    return {"A": [example(f"bench A prompt {i}", "A") for i in range(12)],
            "B": [example(f"bench B prompt {i}", "B") for i in range(9)]}


def test_cross_fit_predict_routes_each_record_once_with_the_pool_of_its_fold():
    train = [example(f"train prompt {i}", "Train") for i in range(4)]
    benchmarks = _benchmarks()
    k = 3
    calls = []

    def predict_fold(fold, pool, in_fold):
        calls.append(fold)
        expected_pool, expected_in_fold = cross_fit_pools(train, benchmarks, fold, k)
        assert pool == expected_pool and in_fold == expected_in_fold
        # rows returned in reverse order, each tagged with the fold that routed it
        return {name: [{"prompt_id": r["prompt_id"], "fold": fold} for r in reversed(rows)]
                for name, rows in in_fold.items()}

    merged = cross_fit_predict(train, benchmarks, k, predict_fold)
    assert calls == [0, 1, 2]
    assert list(merged) == ["A", "B"]
    for name, records in benchmarks.items():
        # merged back into the order of the benchmark's records, each routed by its own fold
        assert [row["prompt_id"] for row in merged[name]] == [r["prompt_id"] for r in records]
        assert [row["fold"] for row in merged[name]] == [fold_of(r["prompt"], k) for r in records]


def test_cross_fit_predict_needs_every_fold():
    benchmarks = _benchmarks()

    def routes_all_but_fold_1(fold, pool, in_fold):
        return None if fold == 1 else {name: [{"prompt_id": r["prompt_id"]} for r in rows]
                                       for name, rows in in_fold.items()}

    assert cross_fit_predict([], benchmarks, 2, routes_all_but_fold_1) is None
    # a fold that trains but routes nothing (None) does not stop the later folds from running
    calls = []

    def routes_nothing_in_fold_0(fold, pool, in_fold):
        calls.append(fold)
        return None if fold == 0 else {name: [{"prompt_id": r["prompt_id"]} for r in rows]
                                       for name, rows in in_fold.items()}

    assert cross_fit_predict([], benchmarks, 3, routes_nothing_in_fold_0) is None
    assert calls == [0, 1, 2]
    calls = []

    def routes(fold, pool, in_fold):
        calls.append(fold)
        return {name: [{"prompt_id": r["prompt_id"]} for r in rows] for name, rows in in_fold.items()}

    assert cross_fit_predict([], benchmarks, 2, routes, folds=[1]) is None  # fold 0 never ran
    assert calls == [1]
    calls.clear()
    merged = cross_fit_predict([], benchmarks, 2, routes, folds=[1, 0])
    assert calls == [1, 0]
    assert {name: len(rows) for name, rows in merged.items()} == {"A": 12, "B": 9}


def test_cross_fit_predict_rejects_repeated_ids_before_any_fold():
    benchmarks = _benchmarks()
    benchmarks["B"][5] = dict(benchmarks["B"][5], prompt_id=benchmarks["B"][2]["prompt_id"])
    calls = []
    with pytest.raises(DataError, match="^B: prompt_id"):
        cross_fit_predict([], benchmarks, 2, lambda fold, pool, in_fold: calls.append(fold))
    assert calls == []
