"""Benchmark metrics of a routing, each computed as its official scorer does.

A routing is ``choices``: one chosen candidate index per record (records follow the contract in
``data/__init__.py``). Every benchmark names its metric family in its registry entry
(``data.BENCHMARKS[name].metric``, a key of ``METRICS``); :func:`benchmark_metric` builds it over the records once,
and it then scores any number of routings quickly; :func:`evaluate` uses it for the router, every fixed candidate,
the oracle and random routing.

The families' conventions (checked against the official code, read with the search tool):

* ``alpaca_eval_lc``, AlpacaEval 2 (alpaca_eval ``metrics/helpers.py`` and ``metrics/glm_winrate.py``): raw
  ``win_rate`` = 100 * mean(preference - 1); ``standard_error`` = 100 * the standard error of the mean of
  (preference - 1) with ddof 1 (pandas ``sem``); ``n_wins`` / ``n_wins_base`` count preference - 1 above / below
  0.5, ``n_draws`` counts preference == 1.5; ``discrete_win_rate`` = 100 * (n_wins + n_draws / 2) / n_total. A
  preference of 0 (the older encoding of a draw) reads as 1.5; a null preference (no verdict) is left out of all of
  these (``n_total`` counts the judged answers, ``n_unjudged`` the others) and out of the LC fit, whose prediction
  still covers every instruction, as ``describe_head2head`` and ``glm_winrate`` do. ``length_controlled_winrate`` is
  the GLM of ``utils.alpaca_lc``: the official function when available (``lc_method = "alpaca_eval"``), otherwise
  our offline fit with the instruction difficulty either given (``"offline_glm_annotations"``, e.g. from
  :func:`fit_alpaca_difficulty`) or fitted on the candidates' own annotations in the records
  (``"offline_glm_candidates"``).
* ``arena_hard_bt``, ArenaHard (arena-hard-auto v0.1 ``show_result.py``): each game becomes battles against
  gpt-4-0314; in game 1 the baseline is A and the candidate B, in game 2 the reverse. A strong verdict (``>>``)
  counts 3 battles, a weak one 1, a tie 1 tie. A game without a verdict (None) counts as a strong win for the
  baseline (3 battles lost), as this project's specification sets; arena-hard-auto v0.1's code gives such a game
  weight 0 instead (9 of the released games); the verdict tables are ``data.benchmarks.ARENA_*``. Ratings come from
  a Bradley-Terry logistic fit (scale 400, base 10, the baseline anchored at 1000, ties counted as half a win each
  way); with two players the maximum-likelihood rating gap gives exactly the router's share of battle points,
  ``(wins + ties / 2) / battles``, so ``win_rate = 100 / (1 + 10 ** ((1000 - elo) / 400))`` equals that share.
  ``ci95`` follows the official bootstrap: 100 resamples of the battles with replacement (seed 42), 2.5 and 97.5
  percentiles.
* ``mt_bench``, MT-Bench (FastChat ``llm_judge/show_result.py``, ``display_result_single``): judgments whose score
  is -1 (the judge's output could not be parsed) are dropped (``df[df["score"] != -1]``) before any mean; ``turn1``
  / ``turn2`` are the means over the remaining scores of each turn and the headline ``mean_score`` is the mean over
  all remaining turn scores (not the mean of the two turn means). An answer whose two turns are both -1 thus counts
  nowhere in the metric (its routing score is ``MT_BENCH_UNJUDGED_SCORE`` of ``data.benchmarks``).
* ``accuracy``, GSM8k, MATH, HumanEval, MBPP: ``accuracy`` = 100 * mean(score).
"""
from __future__ import annotations

import hashlib
import math
import os
from typing import Sequence

import numpy as np

from data import BENCHMARKS
from data.benchmarks import (ARENA_BATTLES, ARENA_RESULT_AS_A, ARENA_RESULT_AS_B, ARENA_STRONG_BATTLES,
                             MT_BENCH_PARSE_FAILURE)
from utils import alpaca_lc
from utils.io import DataError

RANDOM_DRAWS = 20
RANDOM_SEED = 0
BOOTSTRAP_ROUNDS = 100
BOOTSTRAP_SEED = 42
ARENA_BASELINE_ELO = 1000.0
ELO_SCALE = 400.0
ELO_BASE = 10.0


# --------------------------------------------------------------------------------------------------
# Record access helpers
# --------------------------------------------------------------------------------------------------

def _field(example: dict, name: str, benchmark: str):
    if name not in example:
        raise DataError(f"{benchmark} prompt_id {example.get('prompt_id')!r}: field {name!r} is missing. Load the "
                        f"records with data.load_benchmark({benchmark!r}, ...), which adds it.")
    return example[name]


def _k_list(example: dict, name: str, benchmark: str, k: int) -> list:
    values = _field(example, name, benchmark)
    if not isinstance(values, (list, tuple)) or len(values) != k:
        raise DataError(f"{benchmark} prompt_id {example.get('prompt_id')!r}: field {name!r} must list one entry "
                        f"per candidate ({k}). Rebuild the records with data.load_benchmark.")
    return list(values)


def _n_candidates(examples: Sequence[dict], benchmark: str) -> int:
    if len(examples) == 0:
        raise DataError(f"{benchmark}: no records to score. Pass the records of data.load_benchmark.")
    return len(_field(examples[0], "scores", benchmark))


def _check_choices(choices, n: int, k: int, benchmark: str) -> np.ndarray:
    chosen = np.asarray(choices)
    well_formed = chosen.shape == (n,) and np.issubdtype(chosen.dtype, np.integer)
    if not well_formed or ((chosen < 0) | (chosen >= k)).any():
        raise DataError(f"{benchmark}: choices must be {n} integer candidate indices in [0, {k}) (one per record), "
                        f"got shape {chosen.shape} and dtype {chosen.dtype}. Pass router.route(...).argmax(1).")
    return chosen.astype(int)


def _gather(matrix: np.ndarray, choices: np.ndarray) -> np.ndarray:
    return matrix[np.arange(len(choices)), choices]


# --------------------------------------------------------------------------------------------------
# Metric families: read the records once, score any routing. ``data.BENCHMARKS[name].metric`` names a
# benchmark's family in METRICS.
# --------------------------------------------------------------------------------------------------

class BenchmarkMetric:
    """Base: ``headline(choices)`` is the benchmark's headline; ``metrics(choices)`` all its fields.

    Built with ``(benchmark name, records, alpaca_difficulty)``; only the families with
    ``uses_alpaca_difficulty`` read the instruction difficulty (``fit_alpaca_difficulty``)."""

    headline_field = ""
    linear = False  # True when the headline is a fixed-weight mean of per-query values of the choice
    uses_alpaca_difficulty = False

    def __init__(self, benchmark: str, examples: Sequence[dict],
                 alpaca_difficulty: alpaca_lc.InstructionDifficulty | None = None):
        self.benchmark = benchmark
        self.n = len(examples)
        self.k = _n_candidates(examples, self.benchmark)

    def check(self, choices) -> np.ndarray:
        return _check_choices(choices, self.n, self.k, self.benchmark)

    def headline(self, choices) -> float:
        raise NotImplementedError

    def metrics(self, choices) -> dict:
        raise NotImplementedError


class AlpacaEvalMetric(BenchmarkMetric):
    """AlpacaEval 2 against a reference model: the length-controlled win rate, the raw one and its counts."""

    headline_field = "length_controlled_winrate"
    uses_alpaca_difficulty = True

    def __init__(self, benchmark: str, examples: Sequence[dict],
                 alpaca_difficulty: alpaca_lc.InstructionDifficulty | None = None):
        super().__init__(benchmark, examples)
        difficulty = alpaca_difficulty
        k, name = self.k, self.benchmark
        self.examples = examples
        self.preferences = np.array([_k_list(e, "preferences", name, k) for e in examples], dtype=float)
        self.output_lengths = np.array([_k_list(e, "output_lengths", name, k) for e in examples], dtype=float)
        self.reference_lengths = np.array([_field(e, "reference_length", name) for e in examples], dtype=float)
        if alpaca_lc.official_lc_available():
            self.lc_method, self.difficulty = "alpaca_eval", None
        elif difficulty is not None:
            prompts = [_field(e, "prompt", name) for e in examples]
            self.lc_method = "offline_glm_annotations"
            self.difficulty = difficulty.lookup(prompts, [e.get("prompt_id") for e in examples])
        else:
            self.lc_method = "offline_glm_candidates"
            self.difficulty = _difficulty_from_candidates(examples, self.preferences, self.output_lengths,
                                                          self.reference_lengths).values

    def _length_controlled(self, choices: np.ndarray) -> float:
        preferences = _gather(self.preferences, choices)
        if self.lc_method == "alpaca_eval":
            positions = [int(_field(e, "prompt_id", self.benchmark)) for e in self.examples]
            references = [_field(e, "reference_output", self.benchmark) for e in self.examples]
            outputs = [_k_list(e, "responses", self.benchmark, self.k)[c] for e, c in zip(self.examples, choices)]
            return alpaca_lc.official_length_controlled_win_rate(positions, references, outputs, preferences)
        feature = alpaca_lc.length_feature(self.reference_lengths, _gather(self.output_lengths, choices))
        fit = alpaca_lc.fit_model_glm(preferences - 1.0, feature, self.difficulty)
        return fit.length_controlled_win_rate(self.difficulty)

    def headline(self, choices) -> float:
        return self._length_controlled(self.check(choices))

    def metrics(self, choices) -> dict:
        choices = self.check(choices)
        chosen = _gather(self.preferences, choices) - 1.0
        outcome = chosen[~np.isnan(chosen)]  # a null preference (no verdict) is left out, as alpaca_eval does
        n = len(outcome)
        n_wins = int((outcome > 0.5).sum())
        n_draws = int((outcome == 0.5).sum())
        return {
            "win_rate": float(outcome.mean() * 100) if n else math.nan,
            "standard_error": float(outcome.std(ddof=1) / math.sqrt(n) * 100) if n > 1 else math.nan,
            "n_wins": n_wins,
            "n_wins_base": int((outcome < 0.5).sum()),
            "n_draws": n_draws,
            "n_total": n,
            "n_unjudged": int(len(chosen) - n),
            "discrete_win_rate": (n_wins + n_draws / 2) / n * 100 if n else math.nan,
            "avg_length": float(_gather(self.output_lengths, choices).mean()),
            "length_controlled_winrate": self._length_controlled(choices),
            "lc_method": self.lc_method,
        }


class ArenaHardMetric(BenchmarkMetric):
    """ArenaHard: the Bradley-Terry win rate of the routed answers against the baseline, from the judged games."""

    headline_field = "win_rate"

    def __init__(self, benchmark: str, examples: Sequence[dict], alpaca_difficulty=None):
        super().__init__(benchmark, examples)
        # battles[i, c] = (wins, losses, ties, games without verdict) of candidate c on question i
        self.battles = np.zeros((self.n, self.k, 4), dtype=int)
        for i, example in enumerate(examples):
            for c, games in enumerate(_k_list(example, "verdicts", self.benchmark, self.k)):
                if not isinstance(games, (list, tuple)) or len(games) != 2:
                    raise DataError(f"ArenaHard prompt_id {example.get('prompt_id')!r}: field 'verdicts[{c}]' must "
                                    f"hold the two games' verdicts. Rebuild the records with data.load_benchmark.")
                for verdict, table in zip(games, (ARENA_RESULT_AS_B, ARENA_RESULT_AS_A)):
                    if verdict is None:
                        # The convention: a game without a verdict is a strong win for the baseline.
                        # (arena-hard-auto v0.1's show_result gives such a game weight 0; 9 games here.)
                        self.battles[i, c, 1] += ARENA_STRONG_BATTLES
                        self.battles[i, c, 3] += 1
                    elif verdict in table:
                        self.battles[i, c, :3] += ARENA_BATTLES[table[verdict]]
                    else:
                        raise DataError(f"ArenaHard prompt_id {example.get('prompt_id')!r}: field 'verdicts[{c}]' "
                                        f"holds {verdict!r}, not one of {sorted(table)} or None. Fix the judgment.")

    def _totals(self, choices: np.ndarray) -> np.ndarray:
        return _gather(self.battles, choices).sum(0)

    def headline(self, choices) -> float:
        wins, losses, ties, _ = self._totals(self.check(choices))
        return bt_win_rate(wins, losses, ties)

    def metrics(self, choices) -> dict:
        wins, losses, ties, missing = (int(v) for v in self._totals(self.check(choices)))
        win_rate = bt_win_rate(wins, losses, ties)
        share = win_rate / 100
        return {
            "win_rate": win_rate,
            "elo": (ARENA_BASELINE_ELO + ELO_SCALE * math.log(share / (1 - share), ELO_BASE)
                    if 0 < share < 1 else None),
            "ci95": bootstrap_win_rate_ci(wins, losses, ties),
            "n_battles": wins + losses + ties,
            "battle_wins": wins,
            "battle_losses": losses,
            "battle_ties": ties,
            "missing_verdicts": missing,
        }


def bt_win_rate(wins: int, losses: int, ties: int) -> float:
    """Bradley-Terry win rate (%) against the baseline from battle counts, two players (closed form)."""
    battles = wins + losses + ties
    return float((wins + ties / 2) / battles * 100) if battles else math.nan


def bootstrap_win_rate_ci(wins: int, losses: int, ties: int, rounds: int = BOOTSTRAP_ROUNDS,
                          seed: int = BOOTSTRAP_SEED) -> list[float] | None:
    """95% interval of the BT win rate over ``rounds`` resamples of the battles with replacement.

    The official code takes percentiles of the resampled Elo ratings and converts them; the conversion is
    monotone, so taking them on the win rate differs only in the percentile interpolation.
    """
    battles = wins + losses + ties
    if battles == 0:
        return None
    points = np.repeat([1.0, 0.0, 0.5], [wins, losses, ties])
    draws = np.random.default_rng(seed).integers(0, battles, size=(rounds, battles))
    shares = points[draws].mean(1) * 100
    return [float(np.percentile(shares, 2.5)), float(np.percentile(shares, 97.5))]


class MTBenchMetric(BenchmarkMetric):
    """MT-Bench: the mean of the valid turn scores, per turn and per category; judge parse failures dropped."""

    headline_field = "mean_score"

    def __init__(self, benchmark: str, examples: Sequence[dict], alpaca_difficulty=None):
        super().__init__(benchmark, examples)
        turn_scores = []
        for example in examples:
            per_candidate = _k_list(example, "turn_scores", self.benchmark, self.k)
            if not all(isinstance(t, (list, tuple)) and len(t) == 2 for t in per_candidate):
                raise DataError(f"MT-Bench prompt_id {example.get('prompt_id')!r}: field 'turn_scores' must hold "
                                f"[turn1, turn2] per candidate. Rebuild the records with data.load_benchmark.")
            turn_scores.append(per_candidate)
        self.turn_scores = np.array(turn_scores, dtype=float)  # [n, k, 2]
        self.valid = self.turn_scores != MT_BENCH_PARSE_FAILURE
        self.categories = [str(example.get("category")) for example in examples]
        self.linear = bool(self.valid.all())

    def headline(self, choices) -> float:
        choices = self.check(choices)
        scores, valid = _gather(self.turn_scores, choices), _gather(self.valid, choices)
        return _mean_of_valid(scores, valid)

    def metrics(self, choices) -> dict:
        choices = self.check(choices)
        scores, valid = _gather(self.turn_scores, choices), _gather(self.valid, choices)
        turn1, turn2 = _mean_of_valid(scores[:, 0], valid[:, 0]), _mean_of_valid(scores[:, 1], valid[:, 1])
        categories = np.array(self.categories)
        return {
            "mean_score": _mean_of_valid(scores, valid),
            "turn1": turn1,
            "turn2": turn2,
            "mean_of_turns": (turn1 + turn2) / 2,
            "per_category": {category: _mean_of_valid(scores[categories == category], valid[categories == category])
                             for category in sorted(set(self.categories))},
            "parse_failures_dropped": int((~valid).sum()),
        }


def _mean_of_valid(scores: np.ndarray, valid: np.ndarray) -> float:
    return float(scores[valid].mean()) if valid.any() else math.nan


class AccuracyMetric(BenchmarkMetric):
    """Accuracy (%) = 100 x the mean per-query score (correct 1 / wrong 0) of the chosen candidates."""

    headline_field = "accuracy"
    linear = True

    def __init__(self, benchmark: str, examples: Sequence[dict], alpaca_difficulty=None):
        super().__init__(benchmark, examples)
        self.scores = np.array([_k_list(e, "scores", benchmark, self.k) for e in examples], dtype=float)

    def headline(self, choices) -> float:
        return float(_gather(self.scores, self.check(choices)).mean() * 100)

    def metrics(self, choices) -> dict:
        return {"accuracy": self.headline(choices), "n": self.n}


_CANDIDATE_DIFFICULTY_MEMORY: dict[str, alpaca_lc.InstructionDifficulty] = {}


def _difficulty_from_candidates(examples, preferences, output_lengths, reference_lengths):
    """Instruction difficulty from the joint GLM over the records' own candidates (memoised by content)."""
    if preferences.shape[1] < 2:
        raise DataError("AlpacaEval: the instruction difficulty cannot be fitted on a single candidate's "
                        "annotations. Pass the difficulty of metrics.fit_alpaca_difficulty(data_dir).")
    prompts = [_field(e, "prompt", "AlpacaEval") for e in examples]
    key = hashlib.sha256("\x00".join(prompts).encode() + preferences.tobytes() + output_lengths.tobytes()
                         + reference_lengths.tobytes()).hexdigest()
    if key not in _CANDIDATE_DIFFICULTY_MEMORY:
        features = alpaca_lc.length_feature(np.broadcast_to(reference_lengths, output_lengths.T.shape),
                                            output_lengths.T)
        _CANDIDATE_DIFFICULTY_MEMORY[key] = alpaca_lc.fit_difficulty(
            prompts, preferences.T - 1.0, features, [f"candidate {c}" for c in range(preferences.shape[1])],
            f"joint GLM on the {preferences.shape[1]} candidates' annotations in the records")
    return _CANDIDATE_DIFFICULTY_MEMORY[key]


METRICS: dict[str, type[BenchmarkMetric]] = {
    "alpaca_eval_lc": AlpacaEvalMetric,
    "arena_hard_bt": ArenaHardMetric,
    "mt_bench": MTBenchMetric,
    "accuracy": AccuracyMetric,
}


def benchmark_metric(benchmark: str, examples: Sequence[dict],
                     alpaca_difficulty: alpaca_lc.InstructionDifficulty | None = None) -> BenchmarkMetric:
    """The metric of ``benchmark`` (its family ``data.BENCHMARKS[benchmark].metric``) over ``examples``, ready to
    score any routing: ``.headline(choices)`` (a float) and ``.metrics(choices)`` (every field). DataError for a
    name not in ``data.BENCHMARKS``."""
    if benchmark not in BENCHMARKS:
        raise DataError(f"Unknown benchmark {benchmark!r}. Use one of {', '.join(BENCHMARKS)}.")
    return METRICS[BENCHMARKS[benchmark].metric](benchmark, examples, alpaca_difficulty)


def fit_alpaca_difficulty(data_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
    """Instruction difficulty fitted on every model's annotations under ``<data_dir>/test/AlpacaEval``."""
    return alpaca_lc.fit_instruction_difficulty(os.path.join(data_dir, "test", "AlpacaEval"), cache_dir)


def alpaca_difficulty_for(benchmarks, data_dir: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
    """``fit_alpaca_difficulty(data_dir, cache_dir)`` when a metric of ``benchmarks`` (names) reads it, else None."""
    if any(METRICS[BENCHMARKS[name].metric].uses_alpaca_difficulty for name in benchmarks):
        return fit_alpaca_difficulty(data_dir, cache_dir)
    return None


# --------------------------------------------------------------------------------------------------
# evaluate / summarize / format_table
# --------------------------------------------------------------------------------------------------

def _ratio(numerator: float, denominator: float) -> float | None:
    if denominator == 0 or not math.isfinite(numerator) or not math.isfinite(denominator):
        return None
    return numerator / denominator


def evaluate(benchmark: str, examples: Sequence[dict], choices, candidate_names: Sequence[str] | None = None,
             alpaca_difficulty: alpaca_lc.InstructionDifficulty | None = None) -> dict:
    """All metrics of one routing on one benchmark, with the reference points that put it in context.

    Returns the benchmark's fields plus ``score`` (its headline: LC win rate for AlpacaEval, BT win rate
    for ArenaHard, mean turn score for MT-Bench, accuracy otherwise), ``route_share`` (share of queries
    per candidate, keyed by ``candidate_names`` or the index as a string), ``best_pick_rate`` (share of
    queries whose chosen candidate has the top score), ``fixed_scores`` / ``best_fixed`` (headline when
    every query goes to one candidate / the best of those), ``oracle`` (headline of ``best_model_idx``),
    ``random`` (expected headline of uniform random routing: exact for linear headlines, else the mean of
    20 seeded draws), ``gap_closed = (score - best_fixed) / (oracle - best_fixed)`` and
    ``over_random = (score - random) / (oracle - random)`` (None when a denominator is 0).
    """
    scorer = benchmark_metric(benchmark, examples, alpaca_difficulty)
    choices = scorer.check(choices)
    if candidate_names is not None and len(candidate_names) != scorer.k:
        raise DataError(f"{benchmark}: candidate_names lists {len(candidate_names)} names for {scorer.k} candidates. "
                        f"Pass the candidate_llms the records were loaded with.")
    names = list(candidate_names) if candidate_names is not None else [str(c) for c in range(scorer.k)]

    result = scorer.metrics(choices)
    score = result[scorer.headline_field]
    scores = np.array([_field(e, "scores", benchmark) for e in examples], dtype=float)
    fixed = [scorer.headline(np.full(scorer.n, c)) for c in range(scorer.k)]
    oracle = scorer.headline(np.array([int(_field(e, "best_model_idx", benchmark)) for e in examples]))
    if scorer.linear:
        random = float(np.mean(fixed))
    else:
        rng = np.random.default_rng(RANDOM_SEED)
        random = float(np.mean([scorer.headline(rng.integers(0, scorer.k, size=scorer.n))
                                for _ in range(RANDOM_DRAWS)]))
    best_fixed = max(fixed)
    shares = np.bincount(choices, minlength=scorer.k) / scorer.n
    result.update({
        "score": score,
        "route_share": {name: float(share) for name, share in zip(names, shares)},
        "best_pick_rate": float((_gather(scores, choices) >= scores.max(1)).mean()),
        "fixed_scores": fixed,
        "best_fixed": best_fixed,
        "oracle": oracle,
        "random": random,
        "gap_closed": _ratio(score - best_fixed, oracle - best_fixed),
        "over_random": _ratio(score - random, oracle - random),
    })
    return result


def _mean_defined(values) -> float | None:
    defined = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(defined)) if defined else None


def summarize(per_benchmark: dict[str, dict]) -> dict:
    """``{benchmark: evaluate(...), ..., "mean_gap_closed": x, "mean_over_random": y}`` (the shape of
    metrics.json); the means skip benchmarks where the quantity is undefined (None)."""
    summary = dict(per_benchmark)
    summary["mean_gap_closed"] = _mean_defined(r.get("gap_closed") for r in per_benchmark.values())
    summary["mean_over_random"] = _mean_defined(r.get("over_random") for r in per_benchmark.values())
    return summary


def evaluate_benchmarks(benchmarks: dict[str, Sequence[dict]], choices: dict[str, Sequence[int]],
                        data_dir: str | os.PathLike, candidate_names: Sequence[str] | None = None,
                        cache_dir: str | os.PathLike | None = None) -> dict:
    """``summarize`` of ``evaluate`` for every benchmark: the one evaluation every entry point uses.

    AlpacaEval's length-controlled win rate uses the instruction difficulty fitted on every model's
    annotations under ``data_dir`` (the closest to the official fixed difficulty; cached in ``cache_dir``)."""
    difficulty = alpaca_difficulty_for(benchmarks, data_dir, cache_dir)
    return summarize({name: evaluate(name, records, choices[name], candidate_names=candidate_names,
                                     alpaca_difficulty=difficulty)
                      for name, records in benchmarks.items()})


def _cell(value, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def format_table(results: dict[str, dict]) -> str:
    """Markdown table: one row per run; columns = each benchmark's headline score (2 decimals, in
    ``data.BENCHMARKS`` order, benchmarks no run has are left out), mean gap_closed and mean over_random
    (3 decimals)."""
    present = [b for b in BENCHMARKS if any(b in summary for summary in results.values())]
    header = ["run", *present, "mean gap_closed", "mean over_random"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run, summary in results.items():
        cells = [_cell(summary[b]["score"], 2) if b in summary else "–" for b in present]
        cells += [_cell(summary.get("mean_gap_closed"), 3), _cell(summary.get("mean_over_random"), 3)]
        lines.append("| " + " | ".join([run, *cells]) + " |")
    return "\n".join(lines) + "\n"
