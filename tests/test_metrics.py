"""Metrics against hand-computed values on tiny synthetic records (and a few checks on the real data)."""
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

import metrics
from utils import alpaca_lc
from utils.io import DataError

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "compressed_data"
OFFICIAL_LC_AVAILABLE = alpaca_lc.official_lc_available  # before the autouse fixture below replaces it
needs_data = pytest.mark.skipif(not (DATA_DIR / "test" / "AlpacaEval").is_dir(), reason="paper data absent")


@pytest.fixture(autouse=True)
def offline_lc(monkeypatch):
    """Keep the offline LC path even where alpaca_eval and its hub files happen to be installed."""
    monkeypatch.setattr(alpaca_lc, "official_lc_available", lambda: False)


def alpaca_fields(examples, choices, difficulty=None):
    return metrics.benchmark_metric("AlpacaEval", examples, difficulty).metrics(choices)


def arena_fields(examples, choices):
    return metrics.benchmark_metric("ArenaHard", examples).metrics(choices)


def mt_bench_fields(examples, choices):
    return metrics.benchmark_metric("MT-Bench", examples).metrics(choices)


def accuracy_fields(examples, choices, benchmark="GSM8k"):
    return metrics.benchmark_metric(benchmark, examples).metrics(choices)


def record(i, scores, **fields):
    scores = [float(s) for s in scores]
    return {"prompt_id": str(i), "prompt": f"question {i}", "source": "test", "responses": [f"r{i}.{c}" for c in
            range(len(scores))], "scores": scores, "best_model_idx": int(np.argmax(scores)), **fields}


def alpaca_records(preferences, output_lengths, reference_lengths):
    return [record(i, [p - 1 for p in prefs], preferences=list(prefs), output_lengths=list(lengths),
                   reference_output="x" * ref, reference_length=ref)
            for i, (prefs, lengths, ref) in enumerate(zip(preferences, output_lengths, reference_lengths))]


def difficulty_for(examples, values):
    return alpaca_lc.InstructionDifficulty(tuple(e["prompt"] for e in examples), np.asarray(values, float), 1.0,
                                           ("m",), "test")


# ------------------------------------------------------------------------------------------------ AlpacaEval

def test_alpaca_raw_win_rate_standard_error_and_counts():
    examples = alpaca_records([[2.0, 1.0], [1.5, 2.0], [1.0, 2.0], [1.25, 1.0]],
                              [[100, 10], [200, 20], [300, 30], [400, 40]], [150, 150, 150, 150])
    result = alpaca_fields(examples, [0, 0, 0, 0], difficulty_for(examples, [0.1, -0.2, 0.3, 0.0]))
    # outcomes 1, 0.5, 0, 0.25: mean 0.4375; sample std sqrt(0.546875 / 3); sem = std / 2
    assert result["win_rate"] == pytest.approx(43.75)
    assert result["standard_error"] == pytest.approx(math.sqrt(0.546875 / 3) / 2 * 100)
    assert (result["n_wins"], result["n_wins_base"], result["n_draws"], result["n_total"]) == (1, 2, 1, 4)
    assert result["discrete_win_rate"] == pytest.approx(37.5)
    assert result["avg_length"] == pytest.approx(250.0)
    assert result["lc_method"] == "offline_glm_annotations"


def test_alpaca_null_preference_is_left_out_of_the_averages():
    # alpaca_eval's describe_head2head drops preferences that are not in [1, 2] (null / NaN) from every count
    nan = math.nan
    examples = alpaca_records([[2.0, 1.0], [nan, 1.0], [1.75, 2.0], [1.5, 1.0]],
                              [[100, 10], [200, 20], [300, 30], [400, 40]], [150, 150, 150, 150])
    result = alpaca_fields(examples, [0, 0, 0, 0], difficulty_for(examples, [0.1, -0.2, 0.3, 0.0]))
    # judged outcomes 1, 0.75, 0.5: mean 0.75; sample std 0.25; sem 0.25 / sqrt(3)
    assert result["win_rate"] == pytest.approx(75.0)
    assert result["standard_error"] == pytest.approx(0.25 / math.sqrt(3) * 100)
    assert (result["n_wins"], result["n_wins_base"], result["n_draws"], result["n_total"]) == (2, 0, 1, 3)
    assert result["n_unjudged"] == 1
    assert result["discrete_win_rate"] == pytest.approx((2 + 0.5) / 3 * 100)
    assert result["avg_length"] == pytest.approx(250.0)  # every routed answer has a length
    assert math.isfinite(result["length_controlled_winrate"])


def test_alpaca_lc_fits_on_judged_answers_and_predicts_every_instruction():
    # alpaca_eval's glm_winrate fits on the rows whose preference is not NaN and averages the length-free
    # prediction over all rows. With exact soft labels the fit recovers the generating coefficients, so the LC win
    # rate is 100 * mean_i sigmoid(bias + gamma * d_i) over all 40 instructions, nulls included.
    rng = np.random.default_rng(3)
    n, bias, phi, gamma = 40, -0.3, 0.9, 0.7
    difficulty = rng.normal(size=n)
    outputs, references = rng.integers(200, 3000, n), rng.integers(500, 2500, n)
    delta = references - outputs
    feature = np.tanh(delta / np.std(delta, ddof=1))
    preferences = 1 + expit(bias + phi * feature + gamma * difficulty)
    unjudged = list(np.argsort(difficulty)[-5:])  # the five largest difficulty values
    preferences[unjudged] = math.nan
    examples = alpaca_records([[p] for p in preferences], [[o] for o in outputs], references)
    result = alpaca_fields(examples, [0] * n, difficulty_for(examples, difficulty))
    every = expit(bias + gamma * difficulty).mean() * 100
    judged_only = np.delete(expit(bias + gamma * difficulty), unjudged).mean() * 100
    assert abs(every - judged_only) > 0.5  # the two readings differ here, so the check below tells them apart
    assert result["length_controlled_winrate"] == pytest.approx(every, abs=1e-6)
    assert result["n_total"] == n - len(unjudged)


def test_length_feature_is_tanh_of_standardised_reference_minus_output():
    feature = alpaca_lc.length_feature([10, 10, 10], [8, 10, 12])  # deltas 2, 0, -2; sample std 2
    assert feature == pytest.approx([math.tanh(1), 0.0, math.tanh(-1)])
    assert alpaca_lc.length_feature([5, 5], [3, 3]) == pytest.approx([0.0, 0.0])  # no spread: no length term


def test_model_glm_recovers_parameters_from_exact_soft_labels():
    rng = np.random.default_rng(0)
    difficulty = rng.normal(size=400)
    feature = alpaca_lc.length_feature(rng.integers(500, 3000, 400), rng.integers(200, 4000, 400))
    labels = expit(-0.5 + 1.2 * feature + 0.8 * difficulty)
    fit = alpaca_lc.fit_model_glm(labels, feature, difficulty)
    assert (fit.bias, fit.length, fit.difficulty) == pytest.approx((-0.5, 1.2, 0.8), abs=1e-6)
    assert fit.length_controlled_win_rate(difficulty) == pytest.approx(expit(-0.5 + 0.8 * difficulty).mean() * 100)


def test_joint_glm_recovers_instruction_effects():
    rng = np.random.default_rng(1)
    k, n = 6, 200
    bias, phi, d = rng.normal(size=k), rng.normal(size=k), rng.normal(size=n)
    features = np.tanh(rng.normal(size=(k, n)))
    labels = expit(bias[:, None] + phi[:, None] * features + d[None, :])
    labels[0, :5] = np.nan  # missing judgments are left out
    fitted_bias, fitted_phi, fitted_d = alpaca_lc.fit_joint_glm(labels, features, ridge=1e-6)
    # the level of d is shared with the biases; the tiny ridge centres it
    assert fitted_d - fitted_d.mean() == pytest.approx(d - d.mean(), abs=1e-3)
    assert fitted_phi == pytest.approx(phi, abs=1e-3)
    assert fitted_bias - fitted_bias.mean() == pytest.approx(bias - bias.mean(), abs=1e-3)


def test_alpaca_lc_of_the_routed_answers_uses_the_glm_with_zero_length_term():
    rng = np.random.default_rng(2)
    n = 300
    difficulty = rng.normal(size=n)
    reference, chosen_length, other_length = rng.integers(800, 2500, n), rng.integers(300, 4000, n), np.full(n, 999)
    feature = alpaca_lc.length_feature(reference, chosen_length)
    chosen_pref = 1 + expit(0.3 - 1.5 * feature + 0.9 * difficulty)
    other_pref = np.full(n, 1.2)
    choices = rng.integers(0, 2, n)  # the routed answer sits in the chosen slot; the other slot is a decoy
    prefs = np.where(choices[:, None] == 0, np.c_[chosen_pref, other_pref], np.c_[other_pref, chosen_pref])
    lengths = np.where(choices[:, None] == 0, np.c_[chosen_length, other_length], np.c_[other_length, chosen_length])
    examples = alpaca_records(prefs.tolist(), lengths.tolist(), reference.tolist())
    result = alpaca_fields(examples, choices, difficulty_for(examples, difficulty))
    assert result["length_controlled_winrate"] == pytest.approx(expit(0.3 + 0.9 * difficulty).mean() * 100, abs=1e-6)


def test_difficulty_lookup_names_the_unknown_prompt():
    examples = alpaca_records([[1.5, 1.5]], [[1, 2]], [3])
    other = alpaca_lc.InstructionDifficulty(("another instruction",), np.zeros(1), 1.0, ("m",), "test")
    with pytest.raises(DataError, match="prompt_id 0.*'prompt'"):
        alpaca_fields(examples, [0], other)


def test_alpaca_without_difficulty_fits_it_on_the_candidates():
    rng = np.random.default_rng(3)
    examples = alpaca_records((1 + rng.uniform(size=(40, 3))).tolist(), rng.integers(100, 900, (40, 3)).tolist(),
                              rng.integers(100, 900, 40).tolist())
    result = alpaca_fields(examples, np.zeros(40, dtype=int))
    assert result["lc_method"] == "offline_glm_candidates"
    assert 0 < result["length_controlled_winrate"] < 100


def test_official_lc_path_receives_positions_references_and_chosen_outputs(monkeypatch):
    calls = []
    monkeypatch.setattr(alpaca_lc, "official_lc_available", lambda: True)
    monkeypatch.setattr(alpaca_lc, "official_length_controlled_win_rate",
                        lambda *args: calls.append([list(a) for a in args]) or 42.0)
    examples = alpaca_records([[1.2, 1.9], [1.7, 1.1]], [[5, 6], [7, 8]], [3, 4])
    result = alpaca_fields(examples, [1, 0])
    assert result["lc_method"] == "alpaca_eval" and result["length_controlled_winrate"] == 42.0
    assert calls == [[[0, 1], ["xxx", "xxxx"], ["r0.1", "r1.0"], pytest.approx([1.9, 1.7])]]


def write_annotations(root: Path, model: str, rows):
    folder = root / model / alpaca_lc.ANNOTATOR
    folder.mkdir(parents=True)
    (folder / "annotations.json").write_text(json.dumps([
        {"instruction": f"instruction {i}", "output_1": "r" * ref, "output_2": "o" * out, "preference": pref,
         "generator_1": alpaca_lc.REFERENCE_MODEL, "generator_2": model} for i, (pref, out, ref) in enumerate(rows)]))


def test_instruction_difficulty_from_annotation_folders_is_cached(tmp_path):
    rng = np.random.default_rng(4)
    for model in ("a", "b", "c"):
        write_annotations(tmp_path / "AlpacaEval", model,
                          [(1 + rng.uniform(), int(rng.integers(5, 50)), 20) for _ in range(12)])
    first = alpaca_lc.fit_instruction_difficulty(tmp_path / "AlpacaEval", tmp_path / "cache")
    assert first.models == ("a", "b", "c") and len(first.values) == 12
    assert alpaca_lc.fit_instruction_difficulty(tmp_path / "AlpacaEval") is first  # in memory
    alpaca_lc._DIFFICULTY_MEMORY.clear()
    reloaded = alpaca_lc.fit_instruction_difficulty(tmp_path / "AlpacaEval", tmp_path / "cache")  # from the JSON
    assert reloaded.values == pytest.approx(first.values) and reloaded.ridge == first.ridge


def test_annotations_on_different_instructions_are_refused(tmp_path):
    write_annotations(tmp_path, "a", [(1.5, 3, 4), (1.5, 3, 4)])
    write_annotations(tmp_path, "b", [(1.5, 3, 4)])
    with pytest.raises(DataError, match="same instructions"):
        alpaca_lc.read_annotations(tmp_path)


# ------------------------------------------------------------------------------------------------ ArenaHard

def arena_records(verdicts):
    return [record(i, [0.5] * len(v), verdicts=v) for i, v in enumerate(verdicts)]


def test_arena_battles_strong_weak_tie_and_missing_verdicts():
    examples = arena_records([
        [["B>>A", "A>B"], ["A>>B", "A>>B"]],  # candidate B wins strongly (3), then as A wins (1)
        [["A=B", None], ["A=B", "A=B"]],       # a tie; the missing verdict is a strong baseline win (3 losses)
        [["A>>B", "B>A"], ["A=B", "A=B"]],     # baseline (A) wins strongly (3 losses); as A it loses (1)
        [["B>A", "A=B"], ["A=B", "A=B"]],      # a weak win and a tie
    ])
    result = arena_fields(examples, [0, 0, 0, 0])
    assert (result["battle_wins"], result["battle_losses"], result["battle_ties"]) == (5, 7, 2)
    assert (result["n_battles"], result["missing_verdicts"]) == (14, 1)
    assert result["win_rate"] == pytest.approx(6 / 14 * 100)
    assert result["elo"] == pytest.approx(1000 + 400 * math.log10(6 / 8))
    low, high = result["ci95"]
    assert low < result["win_rate"] < high and result["ci95"] == arena_fields(examples, [0] * 4)["ci95"]


def fit_bradley_terry_elo(battles, players, anchor):
    """General BT logistic fit as arena-hard-auto does it: every battle twice, a tie as one win each way,
    X = +ln 10 for model_a and -ln 10 for model_b, no intercept; Elo = 400 * coef + 1000 with ``anchor`` at 1000."""
    index = {p: i for i, p in enumerate(players)}
    rows, labels = [], []
    for copy in (0, 1):
        for a, b, winner in battles:
            x = np.zeros(len(players))
            x[index[a]], x[index[b]] = math.log(10), -math.log(10)
            rows.append(x)
            labels.append(1.0 if winner == "model_a" or (winner == "tie" and copy == 0) else 0.0)
    x, y = np.array(rows), np.array(labels)
    free = [i for i in range(len(players)) if players[i] != anchor]  # pin the anchor: the fit is shift-invariant
    beta = np.zeros(len(free))
    for _ in range(50):
        p = expit(x[:, free] @ beta)
        hessian = (x[:, free] * (p * (1 - p))[:, None]).T @ x[:, free]
        beta -= np.linalg.solve(hessian, x[:, free].T @ (p - y))
    elo = dict.fromkeys(players, 1000.0)
    elo.update({players[i]: 1000 + 400 * b for i, b in zip(free, beta)})
    return elo


def test_bradley_terry_closed_form_matches_the_general_logistic_fit():
    battles = ([("gpt-4-0314", "router", "model_b")] * 7 + [("router", "gpt-4-0314", "model_b")] * 4
               + [("gpt-4-0314", "router", "tie")] * 3 + [("gpt-4-0314", "other", "model_a")] * 5
               + [("other", "gpt-4-0314", "model_a")] * 2)
    elo = fit_bradley_terry_elo(battles, ["gpt-4-0314", "router", "other"], anchor="gpt-4-0314")
    win_rate = 100 / (1 + 10 ** ((elo["gpt-4-0314"] - elo["router"]) / 400))
    assert win_rate == pytest.approx(metrics.bt_win_rate(7, 4, 3), abs=1e-8)  # (7 + 1.5) / 14
    assert metrics.bt_win_rate(7, 4, 3) == pytest.approx(8.5 / 14 * 100)


def test_arena_rejects_unknown_verdicts():
    with pytest.raises(DataError, match="verdicts\\[0\\]"):
        arena_fields(arena_records([[["A>>>B", "A=B"]]]), [0])


# ------------------------------------------------------------------------------------------------ MT-Bench

def test_mt_bench_drops_parse_failures_like_fastchat():
    examples = [record(0, [7, 0], turn_scores=[[8, 6], [1, 1]], category="writing"),
                record(1, [0, 1.5], turn_scores=[[1, 1], [-1, 4]], category="math"),
                record(2, [9.5, 0], turn_scores=[[10, 9], [1, 1]], category="writing")]
    result = mt_bench_fields(examples, [0, 1, 0])
    assert result["turn1"] == pytest.approx(9.0)  # (8 + 10) / 2, the -1 dropped
    assert result["turn2"] == pytest.approx(19 / 3)
    assert result["mean_score"] == pytest.approx(37 / 5)  # mean over all five remaining turn scores
    assert result["mean_of_turns"] == pytest.approx((9 + 19 / 3) / 2)
    assert result["per_category"] == pytest.approx({"math": 4.0, "writing": 8.25})
    assert result["parse_failures_dropped"] == 1


def test_mt_bench_answer_with_both_turns_unparsed_counts_nowhere():
    # routing scores as the reader gives them: 1.0 (the scale's lowest) for the answer with both turns -1
    examples = [record(0, [1.0, 7.0], turn_scores=[[-1, -1], [6, 8]], category="writing"),
                record(1, [8.0, 2.0], turn_scores=[[9, 7], [2, -1]], category="math")]
    to_first = mt_bench_fields(examples, [0, 0])
    assert (to_first["mean_score"], to_first["turn1"], to_first["turn2"]) == (8.0, 9.0, 7.0)
    assert to_first["parse_failures_dropped"] == 2
    assert math.isnan(to_first["per_category"]["writing"])  # no valid turn left in that category
    to_second = mt_bench_fields(examples, [1, 1])
    assert to_second["mean_score"] == pytest.approx(16 / 3) and to_second["turn2"] == 8.0
    result = metrics.evaluate("MT-Bench", examples, [0, 0])
    assert result["oracle"] == pytest.approx(15 / 2)  # best_model_idx [1, 0]: turns 6, 8 and 9, 7 -> 30 / 4


# ------------------------------------------------------------------------------------------------ evaluate

def accuracy_records():
    return [record(i, s) for i, s in enumerate([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [1, 1]])]


def test_evaluate_reference_points_and_ratios():
    result = metrics.evaluate("GSM8k", accuracy_records(), [0, 1, 1, 1, 1, 0], candidate_names=["a", "b"])
    assert result["score"] == result["accuracy"] == pytest.approx(400 / 6)
    assert result["fixed_scores"] == pytest.approx([400 / 6, 300 / 6])
    assert result["best_fixed"] == pytest.approx(400 / 6)
    assert result["oracle"] == pytest.approx(500 / 6)
    assert result["random"] == pytest.approx(350 / 6)  # exact expectation: the mean of the fixed scores
    assert result["gap_closed"] == pytest.approx(0.0)
    assert result["over_random"] == pytest.approx((400 - 350) / (500 - 350))
    assert result["route_share"] == pytest.approx({"a": 2 / 6, "b": 4 / 6})
    assert result["best_pick_rate"] == pytest.approx(5 / 6)  # query 5 picks b (0) where a scores 1


def test_evaluate_ratios_are_none_when_the_oracle_equals_best_fixed():
    examples = [record(i, [1, 0]) for i in range(3)]
    result = metrics.evaluate("MBPP", examples, [0, 1, 0])
    assert result["gap_closed"] is None and result["route_share"] == pytest.approx({"0": 2 / 3, "1": 1 / 3})
    assert result["over_random"] == pytest.approx((200 / 3 - 50) / (100 - 50))


def test_evaluate_random_is_the_mean_of_seeded_draws_for_a_nonlinear_headline():
    examples = arena_records([[["B>>A", "A>B"], ["A>>B", "B>A"]], [["A=B", "A=B"], ["B>A", "A>>B"]],
                              [["A>B", "B>A"], ["B>>A", "A=B"]]])
    result = metrics.evaluate("ArenaHard", examples, [0, 1, 0])
    rng = np.random.default_rng(metrics.RANDOM_SEED)
    draws = [arena_fields(examples, rng.integers(0, 2, 3))["win_rate"]
             for _ in range(metrics.RANDOM_DRAWS)]
    assert result["random"] == pytest.approx(np.mean(draws))
    assert result["score"] == result["win_rate"]


def test_evaluate_rejects_bad_inputs():
    with pytest.raises(DataError, match="Unknown benchmark"):
        metrics.evaluate("GSM8K", accuracy_records(), [0] * 6)
    with pytest.raises(DataError, match="choices"):
        metrics.evaluate("GSM8k", accuracy_records(), [0, 2, 0, 0, 0, 0])
    with pytest.raises(DataError, match="candidate_names"):
        metrics.evaluate("GSM8k", accuracy_records(), [0] * 6, candidate_names=["a"])


def test_summarize_and_format_table():
    gsm = metrics.evaluate("GSM8k", accuracy_records(), [0, 1, 1, 1, 1, 0])
    mbpp = metrics.evaluate("MBPP", [record(i, [1, 0]) for i in range(3)], [0, 1, 0])
    summary = metrics.summarize({"MBPP": mbpp, "GSM8k": gsm})
    assert summary["mean_gap_closed"] == pytest.approx(0.0)  # MBPP's None is skipped
    assert summary["mean_over_random"] == pytest.approx(((50 / 150) + (50 / 3) / 50) / 2)
    table = metrics.format_table({"router": summary, "gsm only": metrics.summarize({"GSM8k": gsm})})
    assert table == ("| run | GSM8k | MBPP | mean gap_closed | mean over_random |\n"
                     "|---|---|---|---|---|\n"
                     "| router | 66.67 | 66.67 | 0.000 | 0.333 |\n"
                     "| gsm only | 66.67 | – | 0.000 | 0.333 |\n")


# ------------------------------------------------------------------------------------------------ real data

@needs_data
def test_raw_win_rate_matches_the_official_leaderboard():
    from data import load_benchmark

    examples = load_benchmark("AlpacaEval", DATA_DIR, ["Llama-3.1-8B-Instruct", "Yi-1.5-34B-Chat"])
    llama = alpaca_fields(examples, np.zeros(805, dtype=int))
    # Llama-3.1-8B-Instruct's own row of its leaderboard.csv
    assert llama["win_rate"] == pytest.approx(28.067146479939176, abs=1e-9)
    assert llama["standard_error"] == pytest.approx(1.3096785681859413, abs=1e-9)
    assert (llama["n_wins"], llama["n_wins_base"], llama["n_draws"]) == (211, 592, 2)
    assert llama["discrete_win_rate"] == pytest.approx(26.335403726708073)
    assert round(llama["avg_length"]) == 2184


@needs_data
def test_offline_lc_is_close_to_the_official_values():
    root = DATA_DIR / "test" / "AlpacaEval"
    table = alpaca_lc.read_annotations(root)
    official = alpaca_lc.official_leaderboard_lc(root, table)
    difficulty = alpaca_lc.difficulty_from_table(table, "test")
    features = alpaca_lc.length_feature(table.reference_lengths, table.output_lengths)
    errors = [alpaca_lc.fit_model_glm(table.labels[m], features[m], difficulty.values)
              .length_controlled_win_rate(difficulty.values) - official[model]
              for m, model in enumerate(table.models) if model in official]
    assert len(errors) == 16
    assert np.abs(errors).mean() < 1.0 and np.abs(errors).max() < 1.5


# ------------------------------------------------------------------------------------------------ issue 13: values

def joint_glm_records(k=8, n=60, seed=5):
    """AlpacaEval records drawn from the joint GLM itself: candidate c's soft label on instruction i is
    sigmoid(bias_c + phi_c * feature_ci + d_i), with strong instruction effects d (sd 1.5) and outputs that are
    longer on harder instructions (so the length term and the difficulty are confounded, as on the real data).
    Returns (records, bias, d)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(0, 1.5, n)
    bias, phi = np.linspace(-0.6, 0.8, k), np.linspace(0.4, 1.5, k)
    lengths = np.rint(1000 - 300 * d[None, :] + rng.normal(0, 200, (k, n))).clip(100)
    delta = 1000 - lengths
    feature = np.tanh(delta / delta.std(axis=1, ddof=1, keepdims=True))  # the LC paper's length feature
    labels = expit(bias[:, None] + phi[:, None] * feature + d[None, :])
    records = alpaca_records((1 + labels.T).tolist(), lengths.T.astype(int).tolist(), [1000] * n)
    return records, bias, d


def test_alpaca_lc_with_difficulty_fitted_on_the_candidates_recovers_the_generating_win_rates():
    """The LC win rate is, by definition, 100 x mean_i sigmoid(bias_c + d_i) (the length term removed). Fitted
    on the candidates' own annotations, the difficulty recovers d well enough to give that within 1 point;
    a zero difficulty, or the strongest ridge (30), misses it by 5-10 points on this fixture."""
    records, bias, d = joint_glm_records()
    errors = []
    for c in range(len(bias)):
        result = alpaca_fields(records, np.full(len(records), c))
        assert result["lc_method"] == "offline_glm_candidates"
        errors.append(result["length_controlled_winrate"] - expit(bias[c] + d).mean() * 100)
    assert np.abs(errors).max() < 1.0
    # the fixture can tell: without the difficulty the per-model GLM misses by several points
    labels = np.array([r["preferences"] for r in records]).T - 1
    lengths = np.array([r["output_lengths"] for r in records]).T
    features = alpaca_lc.length_feature(np.full(lengths.shape, 1000.0), lengths)
    blind = [alpaca_lc.fit_model_glm(labels[c], features[c], np.zeros(len(d))).length_controlled_win_rate(
        np.zeros(len(d))) - expit(bias[c] + d).mean() * 100 for c in range(len(bias))]
    assert np.abs(blind).max() > 5


def test_fitted_difficulty_follows_the_instruction_effects():
    records, bias, d = joint_glm_records()
    labels = np.array([r["preferences"] for r in records]) - 1
    lengths = np.array([r["output_lengths"] for r in records], dtype=float)
    difficulty = metrics._difficulty_from_candidates(records, labels + 1, lengths, np.full(len(records), 1000.0))
    assert difficulty.ridge == 0.1  # exact labels: the least shrinkage predicts held-out cells best
    assert np.corrcoef(difficulty.values, d)[0, 1] > 0.99
    assert difficulty.values.std() > 0.5 * d.std()


def test_choose_ridge_takes_the_lowest_cross_validated_loss():
    """Pure noise around 0.5 has no instruction effect to learn: the strongest ridge predicts held-out cells best.
    Exact labels of a strong instruction effect: the weakest ridge does."""
    rng = np.random.default_rng(7)
    k, n = 12, 80
    features = np.tanh(rng.normal(size=(k, n)))
    assert alpaca_lc.choose_ridge(rng.uniform(0.2, 0.8, (k, n)), features) == 30.0
    exact = expit(np.linspace(-1, 1, k)[:, None] + rng.normal(0, 2, n)[None, :])
    assert alpaca_lc.choose_ridge(exact, features) == 0.1
    assert alpaca_lc.choose_ridge(exact, features, ridges=(5.0, 0.5, 50.0)) == 0.5  # the grid's order is free


def test_evaluate_best_fixed_is_the_best_candidate_not_the_first():
    """Three candidates with fixed accuracies 25%, 50%, 75%: best_fixed is the third's; the router's 50%
    closes (50 - 75) / (100 - 75) = -1 of the gap."""
    scores = [[0, 0, 1], [0, 1, 1], [1, 0, 0], [0, 1, 1]]  # columns: 1/4, 2/4, 3/4 correct; oracle 4/4
    examples = [record(i, s) for i, s in enumerate(scores)]
    result = metrics.evaluate("HumanEval", examples, [0, 0, 0, 1])  # right on queries 2 and 3
    assert result["fixed_scores"] == pytest.approx([25.0, 50.0, 75.0])
    assert result["best_fixed"] == pytest.approx(75.0)
    assert result["oracle"] == pytest.approx(100.0) and result["score"] == pytest.approx(50.0)
    assert result["gap_closed"] == pytest.approx((50 - 75) / (100 - 75))
    assert result["random"] == pytest.approx(50.0) and result["over_random"] == pytest.approx(0.0)
    assert result["best_pick_rate"] == pytest.approx(2 / 4)
    assert result["route_share"] == pytest.approx({"0": 0.75, "1": 0.25, "2": 0.0})


def test_arena_ci95_is_the_central_95_percent_of_the_bootstrap():
    """1000 battles, 300 wins and 700 losses: the bootstrap share is about normal with sd sqrt(.3 x .7 / 1000)
    = 1.45 points, so the 2.5-97.5 percentile interval spans about 2 x 1.96 sd = 5.7 points (a 25-75 one would
    span 2 x 0.67 sd = 2.0). 100 resamples estimate those percentiles to within about 20%."""
    low, high = metrics.bootstrap_win_rate_ci(300, 700, 0)
    sd = math.sqrt(0.3 * 0.7 / 1000) * 100
    assert (high - low) / (2 * 1.96 * sd) == pytest.approx(1.0, abs=0.2)
    assert (low + high) / 2 == pytest.approx(30.0, abs=0.5)
    # ties count half a point: 200 wins, 200 ties, 600 losses have the same mean share 30% and a smaller sd
    low, high = metrics.bootstrap_win_rate_ci(200, 600, 200)
    sd = math.sqrt((0.2 * 0.7 ** 2 + 0.2 * 0.2 ** 2 + 0.6 * 0.3 ** 2) / 1000) * 100
    assert (high - low) / (2 * 1.96 * sd) == pytest.approx(1.0, abs=0.2)
    assert metrics.bootstrap_win_rate_ci(0, 0, 0) is None
    assert metrics.bootstrap_win_rate_ci(5, 0, 0) == [100.0, 100.0]


def arena_battle_points(verdict_pairs):
    """By hand: (points, battles) of one question's two games for the candidate (B in game 1, A in game 2);
    a strong verdict is 3 battles, a weak one 1, a tie 1 battle worth half a point, None 3 battles lost."""
    points = battles = 0
    for verdict, slot in zip(verdict_pairs, "BA"):
        if verdict is None:
            battles += 3
            continue
        weight = 3 if (">>" in verdict) else 1
        battles += weight
        if verdict == "A=B":
            points += 0.5
        elif verdict[0] == slot:  # "X>>Y" / "X>Y": X wins
            points += weight
    return points, battles


def test_evaluate_random_is_the_mean_of_twenty_seeded_draws():
    """Non-linear headline (ArenaHard): ``random`` is the mean headline of 20 uniform routings drawn with
    numpy's default_rng(0) (the rule evaluate's docstring states), each scored here by hand."""
    verdicts = [[["B>>A", "A>>B"], ["A>>B", "B>>A"]], [["B>A", "A=B"], ["A>B", None]],
                [["A=B", "A>B"], ["B>>A", "A>>B"]], [["A>>B", "B>A"], ["B>A", "A>B"]],
                [["B>>A", "A>B"], [None, None]], [["A=B", "A=B"], ["B>>A", "A=B"]],
                [["A>B", "B>>A"], ["B>A", "A>>B"]], [["B>A", "A>>B"], ["A=B", "B>A"]]]
    examples = arena_records(verdicts)
    table = [[arena_battle_points(v) for v in question] for question in verdicts]

    def win_rate(choices):
        points = sum(table[i][c][0] for i, c in enumerate(choices))
        return 100 * points / sum(table[i][c][1] for i, c in enumerate(choices))

    rng = np.random.default_rng(0)
    draws = [win_rate(rng.integers(0, 2, size=8)) for _ in range(20)]
    result = metrics.evaluate("ArenaHard", examples, [0] * 8)
    assert result["random"] == pytest.approx(np.mean(draws), abs=1e-9)
    assert abs(np.mean(draws) - draws[0]) > 1 and abs(np.mean(draws) - np.mean(draws[:10])) > 0.1  # 20 draws, not 1


# ------------------------------------------------------------------------------------------------ issue 13: errors

def two_candidate_records(benchmark):
    """Three well-formed records of ``benchmark`` with two candidates."""
    if benchmark == "AlpacaEval":
        return alpaca_records([[1.2, 1.9], [1.7, 1.1], [1.5, 1.5]], [[5, 6], [7, 8], [9, 4]], [3, 4, 5])
    if benchmark == "ArenaHard":
        return arena_records([[["B>A", "A=B"], ["A>>B", "B>A"]]] * 3)
    if benchmark == "MT-Bench":
        return [record(i, [7, 8], turn_scores=[[7, 7], [8, 8]], category="writing") for i in range(3)]
    return [record(i, [1, 0]) for i in range(3)]


BENCHMARK_FIELDS = [("AlpacaEval", f) for f in ("scores", "preferences", "output_lengths", "reference_length",
                                                "prompt", "best_model_idx")] + [
    ("ArenaHard", "verdicts"), ("ArenaHard", "scores"), ("MT-Bench", "turn_scores"), ("MT-Bench", "scores"),
    ("MATH", "scores"), ("HumanEval", "best_model_idx")]


@pytest.mark.parametrize("benchmark, field", BENCHMARK_FIELDS)
def test_a_missing_field_is_named_with_its_benchmark_and_prompt_id(benchmark, field):
    examples = two_candidate_records(benchmark)
    del examples[1][field]
    with pytest.raises(DataError) as error:
        metrics.evaluate(benchmark, examples, [0, 1, 0])  # AlpacaEval: difficulty fitted on the candidates
    assert str(error.value) == (f"{benchmark} prompt_id '1': field {field!r} is missing. Load the records with "
                                f"data.load_benchmark({benchmark!r}, ...), which adds it.")


@pytest.mark.parametrize("field", ["prompt_id", "reference_output", "responses"])
def test_the_official_lc_path_names_a_missing_field(monkeypatch, field):
    monkeypatch.setattr(alpaca_lc, "official_lc_available", lambda: True)
    monkeypatch.setattr(alpaca_lc, "official_length_controlled_win_rate", lambda *args: 50.0)
    examples = two_candidate_records("AlpacaEval")
    del examples[2][field]
    with pytest.raises(DataError, match=f"^AlpacaEval prompt_id {examples[2].get('prompt_id')!r}: field '{field}' "):
        alpaca_fields(examples, [0, 1, 0])


@pytest.mark.parametrize("benchmark, field", [("AlpacaEval", "preferences"), ("AlpacaEval", "output_lengths"),
                                              ("ArenaHard", "verdicts"), ("MT-Bench", "turn_scores"),
                                              ("MBPP", "scores")])
def test_a_list_without_one_entry_per_candidate_is_refused(benchmark, field):
    examples = two_candidate_records(benchmark)
    examples[2][field] = examples[2][field][:1]
    with pytest.raises(DataError) as error:
        metrics.evaluate(benchmark, examples, [0, 0, 0])
    assert str(error.value) == (f"{benchmark} prompt_id '2': field {field!r} must list one entry per candidate (2). "
                                f"Rebuild the records with data.load_benchmark.")


def test_malformed_game_and_turn_lists_are_refused():
    arena = two_candidate_records("ArenaHard")
    arena[0]["verdicts"] = [["B>A"], ["A=B", "A=B"]]  # one game for candidate 0
    with pytest.raises(DataError) as error:
        arena_fields(arena, [0, 0, 0])
    assert str(error.value) == ("ArenaHard prompt_id '0': field 'verdicts[0]' must hold the two games' verdicts. "
                                "Rebuild the records with data.load_benchmark.")
    arena[0]["verdicts"] = [["B>A", "A=B"], ["A=B", "A>>>B"]]
    with pytest.raises(DataError) as error:
        arena_fields(arena, [0, 0, 0])
    assert str(error.value).startswith("ArenaHard prompt_id '0': field 'verdicts[1]' holds 'A>>>B', not one of ")
    mt = two_candidate_records("MT-Bench")
    mt[1]["turn_scores"] = [[7, 7], 8]
    with pytest.raises(DataError) as error:
        mt_bench_fields(mt, [0, 0, 0])
    assert str(error.value) == ("MT-Bench prompt_id '1': field 'turn_scores' must hold [turn1, turn2] per candidate. "
                                "Rebuild the records with data.load_benchmark.")


def test_choices_must_be_one_integer_index_per_record():
    examples = two_candidate_records("GSM8k")
    for bad in ([[0, 1, 0]], [0.0, 1.0, 0.0], [0, 1], [0, -1, 0]):
        with pytest.raises(DataError) as error:
            metrics.evaluate("GSM8k", examples, bad)
        assert str(error.value).startswith("GSM8k: choices must be 3 integer candidate indices in [0, 2)")
    with pytest.raises(DataError, match="^MBPP: no records to score"):
        metrics.evaluate("MBPP", [], [])
    with pytest.raises(DataError) as error:
        metrics.evaluate("gsm8k", examples, [0, 0, 0])
    assert str(error.value) == ("Unknown benchmark 'gsm8k'. Use one of AlpacaEval, ArenaHard, MT-Bench, GSM8k, MATH, "
                                "HumanEval, MBPP.")
    with pytest.raises(DataError, match="^GSM8k prompt_id '1': field 'scores' must list one entry per candidate"):
        accuracy_fields([record(0, [1, 0]), dict(record(1, [1, 0]), scores=[1])], [0, 0])  # default name


def test_alpaca_difficulty_needs_two_candidates_to_fit_on_the_records():
    one = alpaca_records([[1.2], [1.7], [1.4]], [[5], [7], [6]], [3, 4, 5])
    with pytest.raises(DataError) as error:
        alpaca_fields(one, [0, 0, 0])
    assert str(error.value) == ("AlpacaEval: the instruction difficulty cannot be fitted on a single candidate's "
                                "annotations. Pass the difficulty of metrics.fit_alpaca_difficulty(data_dir).")
    two = alpaca_records([[1.2, 1.9], [1.7, 1.1], [1.5, 1.5], [1.1, 1.3]], [[5, 6], [7, 8], [9, 4], [3, 9]],
                         [3, 4, 5, 6])
    assert alpaca_fields(two, [0, 1, 0, 1])["lc_method"] == "offline_glm_candidates"


# ------------------------------------------------------------------------------------------------ issue 13: values

def test_evaluate_names_every_benchmark_and_uses_its_headline():
    mt = [record(0, [7.5, 4], turn_scores=[[8, 7], [4, 4]]), record(1, [2, 9], turn_scores=[[2, 2], [9, 9]])]
    result = metrics.evaluate("MT-Bench", mt, [1, 1])
    # all turns valid: the headline is linear, random is the exact mean of the fixed scores (5.75 and 6.5)
    assert result["score"] == result["mean_score"] == pytest.approx(6.5)
    assert result["fixed_scores"] == pytest.approx([4.75, 6.5]) and result["random"] == pytest.approx(5.625)
    assert result["oracle"] == pytest.approx((7.5 + 9) / 2)
    for benchmark in ("MATH", "GSM8k", "MBPP", "HumanEval"):
        result = metrics.evaluate(benchmark, [record(i, s) for i, s in enumerate([[1, 0], [0, 1]])], [0, 0])
        assert result["score"] == result["accuracy"] == pytest.approx(50.0) and result["n"] == 2
    assert accuracy_fields([record(0, [1, 0]), record(1, [1, 1])], [1, 1], "MATH") == {"accuracy": 50.0,
                                                                                              "n": 2}
    assert accuracy_fields([record(0, [0, 1])], [1]) == {"accuracy": 100.0, "n": 1}
    examples = alpaca_records([[1.2, 1.9], [1.7, 1.1], [1.5, 1.5]], [[5, 6], [7, 8], [9, 4]], [3, 4, 5])
    result = metrics.evaluate("AlpacaEval", examples, [1, 0, 0], alpaca_difficulty=difficulty_for(examples, [0.5, -1,
                                                                                                             0]))
    assert result["lc_method"] == "offline_glm_annotations"
    assert result["score"] == result["length_controlled_winrate"]
    assert result["win_rate"] == pytest.approx(100 * (0.9 + 0.7 + 0.5) / 3)


def test_mt_bench_with_no_valid_turn_is_nan_without_numpy_warnings():
    import warnings

    examples = [record(0, [0, 0], turn_scores=[[-1, -1], [5, 5]])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = mt_bench_fields(examples, [0])
    assert math.isnan(result["mean_score"]) and result["parse_failures_dropped"] == 2


def test_arena_elo_is_none_at_a_share_of_zero_or_one():
    all_won = arena_fields(arena_records([[["B>>A", "A>B"], ["A=B", "A=B"]]]), [0])
    assert all_won["win_rate"] == 100.0 and all_won["elo"] is None
    all_lost = arena_fields(arena_records([[["A>B", None], ["A=B", "A=B"]]]), [0])
    assert all_lost["win_rate"] == 0.0 and all_lost["elo"] is None and all_lost["missing_verdicts"] == 1
    assert all_lost["n_battles"] == all_lost["battle_losses"] == 4
    no_verdict = arena_fields(arena_records([[[None, None], ["A=B", "A=B"]]]), [0])
    assert no_verdict["missing_verdicts"] == 2 and no_verdict["battle_losses"] == 6
    assert math.isnan(metrics.bt_win_rate(0, 0, 0))


def test_arena_ci95_follows_the_documented_bootstrap():
    """The docstring's procedure, written out: the battles' points (win 1, loss 0, tie 0.5), 100 resamples with
    replacement drawn with numpy's default_rng(42), the 2.5 and 97.5 percentiles of the resampled shares (%)."""
    wins, losses, ties = 311, 602, 87  # 1000 battles: shares fine enough that nearby percentiles differ
    points = np.array([1.0] * wins + [0.0] * losses + [0.5] * ties)
    draws = np.random.default_rng(42).integers(0, 1000, size=(100, 1000))
    shares = points[draws].mean(axis=1) * 100
    expected = [np.percentile(shares, 2.5), np.percentile(shares, 97.5)]
    assert metrics.bootstrap_win_rate_ci(wins, losses, ties) == pytest.approx(expected, abs=1e-12)


def test_alpaca_standard_error_with_one_and_two_answers():
    import warnings

    two = alpaca_records([[2.0, 1.0], [1.5, 1.0]], [[1, 1], [1, 1]], [1, 1])
    result = alpaca_fields(two, [0, 0], difficulty_for(two, [0.0, 0.0]))
    assert result["standard_error"] == pytest.approx(np.std([1.0, 0.5], ddof=1) / math.sqrt(2) * 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy "degrees of freedom" warning: one answer has no standard error
        one = alpaca_fields(two[:1], [0], difficulty_for(two[:1], [0.0]))
    assert math.isnan(one["standard_error"]) and one["n_total"] == 1


def test_ratios_and_means_skip_undefined_values():
    assert metrics._ratio(math.nan, 1.0) is None and metrics._ratio(1.0, math.nan) is None
    assert metrics._ratio(1.0, 0.0) is None and metrics._ratio(1.0, 4.0) == 0.25
    summary = metrics.summarize({"A": {"gap_closed": None, "over_random": math.nan}})
    assert summary["mean_gap_closed"] is None and summary["mean_over_random"] is None
    table = metrics.format_table({"run": {"MBPP": {"score": math.nan}, "mean_gap_closed": None,
                                          "mean_over_random": 0.5}})
    assert table.splitlines()[2] == "| run | – | – | 0.500 |"


def test_candidate_difficulties_are_kept_per_record_set():
    """Two record sets fitted in one process each get their own difficulty (the memo is keyed by content)."""
    for seed in (5, 6):
        records, bias, d = joint_glm_records(seed=seed)
        lc = alpaca_fields(records, np.zeros(len(records), dtype=int))["length_controlled_winrate"]
        assert lc == pytest.approx(expit(bias[0] + d).mean() * 100, abs=1.0)


def test_evaluate_benchmarks_fits_the_alpaca_difficulty_on_the_data_folder(tmp_path):
    """AlpacaEval's LC uses the difficulty fitted on <data_dir>/test/AlpacaEval (every model's annotations):
    with two models' annotations of 12 instructions, the routed LC equals the LC computed with that fit."""
    rng = np.random.default_rng(8)
    root = tmp_path / "test" / "AlpacaEval"
    for model in ("a", "b", "c"):
        write_annotations(root, model, [(1 + rng.uniform(), int(rng.integers(5, 50)), 20) for _ in range(12)])
    difficulty = alpaca_lc.fit_instruction_difficulty(root)
    alpaca_lc._DIFFICULTY_MEMORY.clear()  # so that evaluate_benchmarks fits it again and writes its cache
    examples = [dict(e, prompt=f"instruction {i}") for i, e in enumerate(alpaca_records(
        (1 + rng.uniform(size=(12, 2))).tolist(), rng.integers(5, 50, (12, 2)).tolist(), [20] * 12))]
    choices = rng.integers(0, 2, 12)
    gsm = [record(i, s) for i, s in enumerate([[1, 0], [0, 1]])]
    summary = metrics.evaluate_benchmarks({"AlpacaEval": examples, "GSM8k": gsm},
                                          {"AlpacaEval": choices, "GSM8k": [1, 1]}, tmp_path, ["x", "y"],
                                          cache_dir=tmp_path / "cache")
    alpaca = summary["AlpacaEval"]
    assert alpaca["lc_method"] == "offline_glm_annotations"
    assert alpaca["score"] == pytest.approx(alpaca_fields(examples, choices, difficulty)[
        "length_controlled_winrate"])
    assert summary["GSM8k"]["score"] == 50.0 and summary["GSM8k"]["route_share"] == {"x": 0.0, "y": 1.0}
    assert set(summary) == {"AlpacaEval", "GSM8k", "mean_gap_closed", "mean_over_random"}
    assert (tmp_path / "cache" / alpaca_lc.DIFFICULTY_CACHE_FILE).exists()
    # without AlpacaEval no difficulty is fitted, so no AlpacaEval folder is needed
    assert metrics.evaluate_benchmarks({"GSM8k": gsm}, {"GSM8k": [0, 0]}, tmp_path / "nowhere")["GSM8k"]["score"] == 50


# ------------------------------------------------------------------------------------------------ issue 13: LC fit

def test_length_feature_per_row_small_spreads_and_single_entries():
    # two models (rows), each standardised by its own sample std: row 1 deltas 2, 0, -2 (std 2); row 2 0, 0, 1.5
    feature = alpaca_lc.length_feature([[10, 10, 10], [5, 5, 9]], [[8, 10, 12], [5, 5, 7.5]])
    std2 = np.std([0, 0, 1.5], ddof=1)  # 0.866: a spread below 1 still standardises
    assert feature.shape == (2, 3) and feature.flatten().tolist() == pytest.approx(
        [math.tanh(1), 0.0, math.tanh(-1), 0.0, 0.0, math.tanh(1.5 / std2)])
    assert alpaca_lc.length_feature([7], [3]).tolist() == [0.0]  # one instruction: no spread, no length term
    two = alpaca_lc.length_feature([10, 10], [8, 12])  # deltas 2 and -2, sample std 2 sqrt(2)
    assert two.tolist() == pytest.approx([math.tanh(1 / math.sqrt(2)), math.tanh(-1 / math.sqrt(2))])
    assert alpaca_lc.length_feature([[7], [8]], [[3], [1]]).tolist() == [[0.0], [0.0]]


def scipy_minimum(loss, size):
    """Reference optimum of ``loss`` (scipy's BFGS from zeros, tight tolerance)."""
    from scipy.optimize import minimize

    result = minimize(loss, np.zeros(size), method="BFGS", options={"gtol": 1e-10, "maxiter": 10_000})
    return result.x


def test_model_glm_is_the_maximum_likelihood_fit_of_noisy_soft_labels():
    """Labels not generated by the model: the fit is the minimiser of the summed soft-label cross-entropy, as a
    general-purpose optimiser finds it (NaN labels left out)."""
    rng = np.random.default_rng(9)
    n = 50
    labels, feature, difficulty = rng.uniform(0.05, 0.95, n), np.tanh(rng.normal(size=n)), rng.normal(size=n)
    labels[3] = np.nan
    keep = ~np.isnan(labels)
    design = np.c_[np.ones(n), feature, difficulty][keep]

    def loss(w):
        z = design @ w
        return float(np.sum(np.logaddexp(0, -z) * labels[keep] + np.logaddexp(0, z) * (1 - labels[keep])))

    expected = scipy_minimum(loss, 3)
    fit = alpaca_lc.fit_model_glm(labels, feature, difficulty)
    assert [fit.bias, fit.length, fit.difficulty] == pytest.approx(expected, abs=1e-6)
    assert fit.length_controlled_win_rate([0.5, -0.5]) == pytest.approx(
        100 * np.mean(expit(expected[0] + expected[2] * np.array([0.5, -0.5]))))
    zero = alpaca_lc.fit_model_glm(labels, np.zeros(n), difficulty)  # a constant-zero feature keeps coefficient 0
    assert zero.length == 0.0


def test_joint_glm_is_the_penalised_maximum_likelihood_fit():
    """Noisy soft labels, a missing cell and a mask: the joint fit minimises the masked soft-label cross-entropy
    plus ridge / 2 x ||d||^2, as a general-purpose optimiser finds it."""
    rng = np.random.default_rng(10)
    k, n, ridge = 3, 12, 0.7
    labels, features = rng.uniform(0.05, 0.95, (k, n)), np.tanh(rng.normal(size=(k, n)))
    labels[1, 4] = np.nan
    mask = np.ones((k, n))
    mask[2, :3] = 0
    weight = (~np.isnan(labels)) * mask
    y = np.nan_to_num(labels)

    def loss(theta):
        bias, phi, d = theta[:k], theta[k:2 * k], theta[2 * k:]
        z = bias[:, None] + phi[:, None] * features + d[None, :]
        return float(np.sum(weight * (np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y))) + ridge / 2 * d @ d)

    expected = scipy_minimum(loss, 2 * k + n)
    bias, phi, d = alpaca_lc.fit_joint_glm(labels, features, ridge, mask=mask)
    assert np.concatenate([bias, phi, d]) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="ridge must be positive"):
        alpaca_lc.fit_joint_glm(labels, features, 0.0)


def cross_validated_losses(labels, features, ridges, folds=5, seed=0):
    """5-fold cross-validation by its definition: cells dealt into folds by numpy's default_rng(seed), each fold's
    observed cells predicted by the joint fit on the others, summed soft-label log loss per ridge."""
    fold_of = np.random.default_rng(seed).integers(0, folds, size=labels.shape)
    losses = []
    for ridge in ridges:
        total = 0.0
        for fold in range(folds):
            held = (fold_of == fold) & ~np.isnan(labels)
            bias, phi, d = alpaca_lc.fit_joint_glm(labels, features, ridge, mask=~held)
            z = bias[:, None] + phi[:, None] * features + d[None, :]
            y = np.nan_to_num(labels)
            total += float(np.sum((np.logaddexp(0, -z) * y + np.logaddexp(0, z) * (1 - y))[held]))
        losses.append(total)
    return losses


def test_choose_ridge_follows_the_cross_validation_definition():
    """On data with a moderate instruction effect the ridges' losses are close; the choice is the argmin of the
    cross-validated losses computed by hand, for several data sets (so the folds, the held-out cells and the
    summed loss all have to be right)."""
    ridges = (0.3, 1.0, 3.0, 10.0)
    chosen = []
    for seed, effect in enumerate([0.0, 0.6, 2.0, 0.15]):  # sd of the instruction effect
        rng = np.random.default_rng(20 + seed)
        k, n = 5, 30
        labels = expit(rng.normal(size=(k, 1)) + rng.normal(0, effect, n)[None, :] + rng.normal(0, 1.0, (k, n)))
        labels[0, 2] = np.nan
        features = np.tanh(rng.normal(size=(k, n)))
        expected = ridges[int(np.argmin(cross_validated_losses(labels, features, ridges)))]
        assert alpaca_lc.choose_ridge(labels, features, ridges) == expected
        chosen.append(expected)
    assert len(set(chosen)) == 4  # each data set picks another ridge
    # a data set whose choice needs every one of the five folds (without fold 0 it would pick 0.3)
    rng = np.random.default_rng(20)
    labels = expit(rng.normal(size=(5, 1)) + rng.normal(0, 0.6, 30)[None, :] + rng.normal(0, 1.0, (5, 30)))
    features = np.tanh(rng.normal(size=(5, 30)))
    expected = ridges[int(np.argmin(cross_validated_losses(labels, features, ridges)))]
    assert expected == 1.0 and alpaca_lc.choose_ridge(labels, features, ridges) == expected


def test_official_lc_gets_the_annotations_as_alpaca_eval_reads_them(monkeypatch):
    """The official function receives alpaca_eval's annotation table: one row per instruction, indexed by its
    position among the 805, with the reference as output_1, the routed answer as output_2, the preference, the
    generators and the annotator; nothing is written and no column is added in place."""
    import sys
    import types

    calls = []

    def get_length_controlled_winrate(annotations, **options):
        calls.append((annotations.copy(), options))
        return {"length_controlled_winrate": 61.5, "win_rate": 50.0}

    glm = types.ModuleType("alpaca_eval.metrics.glm_winrate")
    glm.get_length_controlled_winrate = get_length_controlled_winrate
    monkeypatch.setitem(sys.modules, "alpaca_eval.metrics.glm_winrate", glm)
    value = alpaca_lc.official_length_controlled_win_rate([4, 0], ["ref a", "ref b"], ["out a", "out b"], [1, 2])
    assert value == 61.5 and isinstance(value, float)
    ((annotations, options),) = calls
    assert options == {"save_weights_dir": None, "is_add_glm_preference_inplace": False}
    assert list(annotations.index) == [4, 0]
    assert annotations.to_dict("list") == {
        "output_1": ["ref a", "ref b"], "output_2": ["out a", "out b"], "preference": [1.0, 2.0],
        "generator_1": ["gpt4_1106_preview"] * 2, "generator_2": ["router"] * 2,
        "annotator": ["weighted_alpaca_eval_gpt4_turbo"] * 2}
    assert annotations["preference"].dtype == float  # whole-number preferences too


def test_official_lc_is_available_only_with_the_package_and_both_hub_files(monkeypatch):
    import sys
    import types

    import huggingface_hub

    cached = {}
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache",
                        lambda repo, name, cache_dir, repo_type: cached.get((repo, name, cache_dir, repo_type)))
    real = OFFICIAL_LC_AVAILABLE
    for name in ("alpaca_eval", "alpaca_eval.metrics", "alpaca_eval.metrics.glm_winrate"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert real() is False  # alpaca_eval is not installed here
    package = types.ModuleType("alpaca_eval")
    package.constants = types.SimpleNamespace(DEFAULT_CACHE_DIR="/hub")
    monkeypatch.setitem(sys.modules, "alpaca_eval", package)
    monkeypatch.setitem(sys.modules, "alpaca_eval.metrics", types.ModuleType("alpaca_eval.metrics"))
    monkeypatch.setitem(sys.modules, "alpaca_eval.metrics.glm_winrate", types.ModuleType("glm_winrate"))
    assert real() is False  # neither hub file cached
    cached[("tatsu-lab/alpaca_eval", "instruction_difficulty.csv", "/hub", "dataset")] = "/hub/a.csv"
    assert real() is False  # one of the two
    cached[("tatsu-lab/alpaca_eval", "df_gamed.csv", "/hub", "dataset")] = "/hub/b.csv"
    assert real() is True


def write_annotation_rows(root: Path, model: str, rows, name="annotations.json"):
    folder = root / model / alpaca_lc.ANNOTATOR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(rows))
    return folder / name


def annotation(instruction, preference, output="o", reference="r", generator="gen"):
    return {"instruction": instruction, "output_1": reference, "output_2": output, "preference": preference,
            "generator_1": alpaca_lc.REFERENCE_MODEL, "generator_2": generator}


def test_read_annotations_aligns_models_by_instruction(tmp_path):
    write_annotation_rows(tmp_path, "m1", [annotation("x", 2.0, "oo", "rrr", "model one"),
                                           annotation("y", 0, "o", "r"),        # 0: the legacy draw, 1.5
                                           annotation("z", None, "oooo", "rr")])  # no judgment: NaN
    write_annotation_rows(tmp_path, "m2", [annotation("z", 1.0, "o", "r", generator=7),  # not a name: the folder's
                                           annotation("x", 1.25, "ooooo", "rrr"),
                                           annotation("y", 1.75, "oo", "r")])
    (tmp_path / "notes").mkdir()  # a folder without annotations is passed over
    table = alpaca_lc.read_annotations(tmp_path)
    assert table.models == ("m1", "m2") and table.generators == ("model one", "m2")
    assert table.instructions == ("x", "y", "z")
    np.testing.assert_array_equal(table.labels, [[1.0, 0.5, np.nan], [0.25, 0.75, 0.0]])
    np.testing.assert_array_equal(table.output_lengths, [[2, 1, 4], [5, 2, 1]])
    np.testing.assert_array_equal(table.reference_lengths, [[3, 1, 2], [3, 1, 1]])


@pytest.mark.parametrize("preference, message", [
    (2.5, "field 'preference' is 2.5, outside [1, 2]"), (0.5, "field 'preference' is 0.5, outside [1, 2]"),
    ("high", "field 'preference' is 'high', not a number"), ([1], "field 'preference' is [1], not a number")])
def test_read_annotations_refuses_a_bad_preference(tmp_path, preference, message):
    path = write_annotation_rows(tmp_path, "m", [annotation("x", 1.5), annotation("y", preference)])
    with pytest.raises(DataError) as error:
        alpaca_lc.read_annotations(tmp_path)
    assert str(error.value).startswith(f"{path}, entry 1: {message}") and "alpaca_eval annotator" in str(error.value)


def test_read_annotations_accepts_the_ends_of_the_preference_range(tmp_path):
    write_annotation_rows(tmp_path, "m", [annotation("x", 1.0), annotation("y", 2.0), annotation("z", 1)])
    assert alpaca_lc.read_annotations(tmp_path).labels.tolist() == [[0.0, 1.0, 0.0]]


def test_read_annotations_names_the_file_and_entry_of_malformed_rows(tmp_path):
    path = write_annotation_rows(tmp_path, "m", {"instruction": "x"})
    with pytest.raises(DataError, match=f"^{path}: expected a JSON list of annotations, got dict."):
        alpaca_lc.read_annotations(tmp_path)
    for bad in ({"instruction": "y", "output_1": "r"}, "a row", {"instruction": 3, "output_1": "r", "output_2": "o"}):
        write_annotation_rows(tmp_path, "m", [annotation("x", 1.5), bad])
        with pytest.raises(DataError) as error:
            alpaca_lc.read_annotations(tmp_path)
        assert str(error.value) == (f"{path}, entry 1: fields 'instruction', 'output_1', 'output_2' must be strings. "
                                    f"Regenerate the file with alpaca_eval.")
    write_annotation_rows(tmp_path, "m", [annotation("x", 1.5), annotation("x", 1.2)])
    with pytest.raises(DataError) as error:
        alpaca_lc.read_annotations(tmp_path)
    assert str(error.value) == (f"{path}, entry 1: field 'instruction' repeats an earlier entry. Keep one annotation "
                                f"per instruction.")


def test_annotation_folders_must_exist_and_hold_annotations(tmp_path):
    with pytest.raises(DataError) as error:
        alpaca_lc.annotation_files(tmp_path / "missing")
    assert str(error.value) == (f"{tmp_path / 'missing'}: not a folder. Pass the AlpacaEval folder that holds "
                                f"<model>/{alpaca_lc.ANNOTATOR}/annotations.json for each model.")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as error:
        alpaca_lc.annotation_files(tmp_path / "empty")
    assert str(error.value) == (f"{tmp_path / 'empty'}: no <model>/{alpaca_lc.ANNOTATOR}/annotations.json found. "
                                f"Pass the AlpacaEval folder of the released data (test/AlpacaEval).")
    write_annotation_rows(tmp_path / "two", "b", [annotation("x", 1.5)])
    (tmp_path / "two" / "a").mkdir()  # no annotations: skipped, the later folders still found
    write_annotation_rows(tmp_path / "two", "c", [annotation("x", 1.5)])
    assert list(alpaca_lc.annotation_files(tmp_path / "two")) == ["b", "c"]


def test_instruction_difficulty_cache_is_keyed_by_the_annotation_files(tmp_path):
    rng = np.random.default_rng(11)
    root = tmp_path / "AlpacaEval"
    for model in ("a", "b"):
        write_annotations(root, model, [(1 + rng.uniform(), int(rng.integers(5, 50)), 20) for _ in range(10)])
    assert alpaca_lc.fit_instruction_difficulty(root) is alpaca_lc.fit_instruction_difficulty(root)  # memory
    assert not (tmp_path / "cache").exists()  # no cache_dir: nothing written
    alpaca_lc._DIFFICULTY_MEMORY.clear()
    first = alpaca_lc.fit_instruction_difficulty(root, tmp_path / "cache")
    cached = json.loads((tmp_path / "cache" / alpaca_lc.DIFFICULTY_CACHE_FILE).read_text())
    assert len(cached["fingerprint"]) == 64 and cached["difficulty"] == pytest.approx(first.values.tolist())
    assert cached["source"] == first.source and first.source.startswith("joint GLM on the annotations of 2 models")
    assert first.models == ("a", "b") and cached["models"] == ["a", "b"] and cached["ridge"] == first.ridge
    # the cache, not a refit: a doctored cached value comes back
    cached["difficulty"][0] = 123.0
    (tmp_path / "cache" / alpaca_lc.DIFFICULTY_CACHE_FILE).write_text(json.dumps(cached))
    alpaca_lc._DIFFICULTY_MEMORY.clear()
    from_cache = alpaca_lc.fit_instruction_difficulty(root, tmp_path / "cache")
    assert from_cache.values[0] == 123.0 and from_cache.instructions == first.instructions
    assert from_cache.source == first.source and from_cache.models == first.models
    assert alpaca_lc.fit_instruction_difficulty(root, tmp_path / "cache") is from_cache  # kept in memory too
    # changed annotations: another fingerprint, a refit (not the doctored cache)
    write_annotations(root, "c", [(1 + rng.uniform(), int(rng.integers(5, 50)), 20) for _ in range(10)])
    refit = alpaca_lc.fit_instruction_difficulty(root, tmp_path / "cache")
    assert refit.models == ("a", "b", "c") and refit.values[0] != 123.0


def test_official_leaderboard_values_are_matched_by_name_and_raw_win_rate(tmp_path):
    write_annotation_rows(tmp_path, "a0", [annotation("x", 1.5), annotation("y", 1.5)])  # no leaderboard.csv
    write_annotation_rows(tmp_path, "m1", [annotation("x", 2.0, generator="model one"), annotation("y", 1.5)])
    write_annotation_rows(tmp_path, "m2", [annotation("x", 1.0, generator="m2-gen"), annotation("y", 1.25)])
    write_annotation_rows(tmp_path, "m3", [annotation("x", 1.5), annotation("y", 1.5)])
    # raw win rates: m1 75, m2 12.5, m3 50. m1's leaderboard lists m1 (by generator name) and a stale m2 row;
    # m2's own leaderboard (by folder name) has no LC value; m3's row is another run (win rate 49).
    (tmp_path / "m1" / alpaca_lc.ANNOTATOR / "leaderboard.csv").write_text(
        ",win_rate,length_controlled_winrate\nmodel one,75.0,70.5\nm2,13.0,11.0\n")
    (tmp_path / "m2" / alpaca_lc.ANNOTATOR / "leaderboard.csv").write_text(
        ",win_rate,length_controlled_winrate\nm2,12.5,\nm3,49.0,44.0\n")
    (tmp_path / "m3" / alpaca_lc.ANNOTATOR / "leaderboard.csv").write_text(
        ",win_rate,length_controlled_winrate\nother,50.0,40.0\nm2,12.5000000001,10.25\n")
    table = alpaca_lc.read_annotations(tmp_path)
    assert alpaca_lc.official_leaderboard_lc(tmp_path, table) == {"m1": 70.5, "m2": 10.25}


def test_a_missing_prompt_is_named_when_the_difficulty_is_given():
    examples = two_candidate_records("AlpacaEval")
    difficulty = difficulty_for(examples, [0.1, 0.2, 0.3])
    del examples[0]["prompt"]
    with pytest.raises(DataError) as error:
        metrics.evaluate("AlpacaEval", examples, [0, 1, 0], alpaca_difficulty=difficulty)
    assert str(error.value).startswith("AlpacaEval prompt_id '0': field 'prompt' is missing.")


def test_difficulty_from_table_uses_each_models_length_feature(tmp_path):
    """The difficulty is the joint fit's instruction effect with each model's tanh(delta / std(delta)) feature,
    written out here from the annotation lengths."""
    rng = np.random.default_rng(12)
    for model in ("a", "b", "c"):
        write_annotations(tmp_path, model, [(1 + rng.uniform(), int(rng.integers(5, 60)), int(rng.integers(5, 60)))
                                            for _ in range(15)])
    table = alpaca_lc.read_annotations(tmp_path)
    difficulty = alpaca_lc.difficulty_from_table(table, "here")
    delta = table.reference_lengths - table.output_lengths
    features = np.tanh(delta / delta.std(axis=1, ddof=1, keepdims=True))
    assert difficulty.values == pytest.approx(alpaca_lc.fit_joint_glm(table.labels, features, difficulty.ridge)[2])
    assert difficulty.source == "here" and difficulty.instructions == table.instructions


def test_the_difficulty_memo_tells_folders_with_alike_files_apart(tmp_path):
    """Two annotation folders whose files have the same names, sizes and modification times but other preferences:
    each gets its own fit (the memo's key includes the files' paths)."""
    import os

    for root, preference in (("one", 1.25), ("two", 1.75)):
        for model in ("a", "b"):
            rows = [annotation(f"instruction {i}", preference if i % 2 else 1.5, "o" * (5 + i), "r" * 9)
                    for i in range(8)]
            path = write_annotation_rows(tmp_path / root, model, rows)
            os.utime(path, ns=(10**18, 10**18))
    one = alpaca_lc.fit_instruction_difficulty(tmp_path / "one")
    two = alpaca_lc.fit_instruction_difficulty(tmp_path / "two")
    assert two is not one and two.values.tolist() != pytest.approx(one.values.tolist())


def test_alpaca_eval_with_no_judged_answer_gives_nan_rates_without_warnings():
    # the chosen candidate (0) has no verdict (a null preference) on either query: nothing to average
    records = [{"prompt_id": str(i), "prompt": f"q{i}", "scores": [1.0, 0.0], "best_model_idx": 0,
                "preferences": [None, p], "output_lengths": [5 + i, 9], "reference_length": 7}
               for i, p in enumerate([1.8, 1.2])]
    difficulty = alpaca_lc.InstructionDifficulty(("q0", "q1"), np.array([0.5, 0.1]), 1.0, ("m",), "t")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mean of an empty array, no division by zero
        result = metrics.benchmark_metric("AlpacaEval", records, difficulty).metrics([0, 0])
    assert math.isnan(result["win_rate"]) and math.isnan(result["discrete_win_rate"])
    assert math.isnan(result["standard_error"])
    assert (result["n_total"], result["n_unjudged"], result["n_wins"], result["n_draws"]) == (0, 2, 0, 0)
