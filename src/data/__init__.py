"""Readers for the paper's routing data.

The record contract (every reader returns a list of plain dicts, one per query):

    prompt_id       str         unique within its source
    prompt          str         the user query the router reads (the first turn of a multi-turn query)
    source          str         benchmark or training-set name, e.g. "AlpacaEval", "SelfOSSInstructSC2_filtered2"
    responses       list[str]   the k candidates' responses, in ``candidate_llms`` order
    scores          list[float] the k per-query quality scores, higher is better (per source, see below)
    best_model_idx  int         argmax(scores), the lowest index on ties

plus, for the benchmark metrics, k-lists in candidate order (``reference_*`` are single values):

    AlpacaEval  preferences[k] (judge preference in [1, 2] vs gpt4_1106_preview; score = preference - 1),
                output_lengths[k] (characters of each candidate's output), reference_output, reference_length
    ArenaHard   verdicts[k] = [game1, game2] verdict strings or None, as judged (game 1: A = gpt-4-0314
                baseline, B = candidate; game 2 swapped); score = candidate's mean game outcome in [0, 1]
    MT-Bench    turn_scores[k] = [turn1, turn2] judge scores; category; score = mean of the turn scores
    GSM8k, MATH, HumanEval, MBPP    score = 1.0 if correct else 0.0

Benchmarks (the registry ``BENCHMARKS``: name -> ``Benchmark``) live under ``<data_dir>/test/<Benchmark>``,
training sets under ``<data_dir>/train/<set>``;
``.gz`` files are read directly when the plain file is absent.
"""
from .benchmarks import BENCHMARKS, PAPER_CANDIDATES, Benchmark, available_candidates, load_benchmark
from .train_sets import load_train_set, load_train_sets, resolve_train_set

__all__ = ["BENCHMARKS", "PAPER_CANDIDATES", "Benchmark", "available_candidates", "load_benchmark", "load_train_set",
           "load_train_sets", "resolve_train_set"]
