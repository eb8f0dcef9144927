"""The run folder (``runs``), the one cross-fit driver and the benchmark registry: adding a toy benchmark is one
entry of ``data.BENCHMARKS``, and every entry point then reads, routes, scores and tabulates it."""
import json
import os
import subprocess
from pathlib import Path

import pytest

import eval_baseline
import metrics
import report
import runs
import train
from args import EvalArguments
from data import BENCHMARKS, Benchmark, load_benchmark
from data.benchmarks import make_record
from data.cross_fit import cross_fit_predict, fold_of
from utils.io import DataError, read_json

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = ["A", "B"]
# The toy benchmark's files: one <llm>.json per candidate, {question id: [question, answer, correct]}.
TOY = {"t1": ("Spell cat backwards.", [True, False]),
       "t2": ("Name a prime above 10.", [False, True]),
       "t3": ("What is 2 + 2?", [True, True]),
       "t4": ("Capital of Peru?", [False, False]),
       "t5": ("Reverse [1, 2].", [False, True])}


def read_toy(folder: Path, candidates: list[str]) -> list[dict]:
    """The toy benchmark's reader: a record per question, the per-query score 1 when the answer is correct."""
    answers = {llm: read_json(folder / f"{llm}.json") for llm in candidates}
    return [make_record(qid, answers[candidates[0]][qid][0], "Toy", [answers[llm][qid][1] for llm in candidates],
                        [1.0 if answers[llm][qid][2] else 0.0 for llm in candidates]) for qid in sorted(answers[
                            candidates[0]])]


TOY_ENTRY = Benchmark("Toy", read_toy, lambda folder: [path.stem for path in folder.glob("*.json")], "accuracy",
                      "correct (1/0)", "accuracy")


@pytest.fixture()
def toy_data(tmp_path, monkeypatch):
    """A data folder holding only test/Toy, and the toy benchmark registered: the one entry adding it takes."""
    monkeypatch.setitem(BENCHMARKS, "Toy", TOY_ENTRY)
    folder = tmp_path / "data" / "test" / "Toy"
    folder.mkdir(parents=True)
    for c, llm in enumerate(CANDIDATES):
        (folder / f"{llm}.json").write_text(json.dumps(
            {qid: [question, f"{llm} on {qid}", correct[c]] for qid, (question, correct) in TOY.items()}))
    return tmp_path / "data"


def test_a_toy_benchmark_is_one_registry_entry_end_to_end(toy_data, tmp_path, capsys):
    # Read: the registry's reader and candidate listing.
    records = load_benchmark("Toy", toy_data, CANDIDATES)
    assert [r["prompt_id"] for r in records] == ["t1", "t2", "t3", "t4", "t5"]
    assert [r["best_model_idx"] for r in records] == [0, 1, 0, 0, 1]
    # Scored by its metric family: A is right on t1 and t3 (2 of 5), B on t2, t3 and t5 (3 of 5).
    assert metrics.benchmark_metric("Toy", records).headline([0] * 5) == pytest.approx(40.0)
    # Accepted by the flags of both entry points (their defaults list it too).
    assert "Toy" in EvalArguments(data_dir=str(toy_data)).test_datasets
    assert "Toy" in train.parse_args(["sc", "--output_dir", str(tmp_path / "unused")])[1].test_datasets

    # Routed and reported by eval_baseline.py: the oracle takes each question's best candidate (A on t1, t3, t4;
    # B on t2, t5): right on t1, t2, t3, t5 = 80%; best fixed (B) 60%; random = (40 + 60) / 2 = 50%.
    eval_baseline.main("oracle", data_dir=str(toy_data), candidate_llms=CANDIDATES, test_datasets=["Toy"],
                       output_dir=str(tmp_path / "oracle"))
    eval_baseline.main("fixed", data_dir=str(toy_data), candidate_llms=CANDIDATES, test_datasets=["Toy"],
                       output_dir=str(tmp_path / "fixed0"), target_index=0)
    summary = read_json(tmp_path / "oracle" / "metrics.json")
    assert summary["Toy"]["score"] == pytest.approx(80.0)
    assert summary["Toy"]["best_fixed"] == pytest.approx(60.0) and summary["Toy"]["random"] == pytest.approx(50.0)
    assert [row["choice"] for row in runs.read_predictions(tmp_path / "oracle", "Toy", 2)] == [0, 1, 0, 0, 1]
    capsys.readouterr()
    report.main(["combine", str(tmp_path / "oracle"), str(tmp_path / "fixed0")])
    table = capsys.readouterr().out
    assert table.splitlines()[0] == "| run | Toy | mean gap_closed | mean over_random |"
    assert "| oracle | 80.00 |" in table and "| fixed(target_index=0) | 40.00 |" in table


def test_the_experiment_scripts_name_no_benchmark(tmp_path):
    """The scripts leave --test_datasets to train.py / eval_baseline.py (every benchmark of the registry)."""
    for script in ("lookahead_mlm.sh", "lookahead_clm.sh", "mlc_router.sh", "router_with_gt_responses.sh"):
        line = subprocess.run(["bash", script], cwd=REPO, capture_output=True, text=True, check=True,
                              env={**os.environ, "DRY_RUN": "1", "CPU_BF16": "0"}).stdout
        assert "--test_datasets" not in line and "--train_datasets" in line, script
        chosen = subprocess.run(["bash", script], cwd=REPO, capture_output=True, text=True, check=True,
                                env={**os.environ, "DRY_RUN": "1", "CPU_BF16": "0", "TEST_SETS": "GSM8k,MATH"}).stdout
        assert "--test_datasets GSM8k MATH" in chosen and "_GSM8k+MATH/" in chosen, script
    text = (REPO / "baselines.sh").read_text()
    assert 'TEST_DATASETS="${TEST_DATASETS:-}"' in text and "python src/report.py combine" in text


def test_run_names():
    assert runs.run_name({"run_name": "knn", "output_dir": "out/x"}, "out/x") == "knn"
    assert runs.run_name({"run_name": None, "output_dir": "out/x"}, "out/x") == "x"
    assert runs.run_name({"run_name": "out/x", "output_dir": "out/x"}, "moved/y") == "y"  # older Trainer default
    assert runs.router_run_name("knn", {"n_neighbors": 5, "weighted": True}) == "knn(n_neighbors=5, weighted=True)"
    assert runs.router_run_name("oracle", {}) == "oracle"


def test_load_run_checks_each_file(tmp_path):
    with pytest.raises(DataError, match="not a finished run"):
        runs.load_run(tmp_path)
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(DataError, match=r"run_args.json not found"):
        runs.load_run(tmp_path)
    (tmp_path / "run_args.json").write_text(json.dumps({"candidate_llms": ["A", "B"], "data_dir": "d",
                                                        "run_name": "r"}))
    run = runs.load_run(tmp_path)
    assert (run.name, run.candidates, run.data_dir, run.predictions) == ("r", ["A", "B"], "d", {})
    (tmp_path / "metrics.json").write_text(json.dumps({"GSM8k": {"score": 1.0}}))
    runs.write_predictions(tmp_path, "GSM8k", [{"prompt_id": "0", "router_scores": [1.0], "choice": 0, "fold": None}])
    with pytest.raises(DataError, match=r"GSM8k.json, entry 0 \(prompt_id '0'\): field 'router_scores' must hold 2"):
        runs.load_run(tmp_path)


def test_cross_fit_predict_merges_the_folds_in_record_order():
    records = [{"prompt_id": str(n), "prompt": f"question {n}"} for n in range(10)]
    seen = []

    def predict_fold(fold, pool, in_fold):
        seen.append((fold, sorted(r["prompt_id"] for r in pool)))
        return {"B": [{"prompt_id": r["prompt_id"], "fold": fold} for r in in_fold["B"]]}

    merged = cross_fit_predict([{"prompt_id": "train", "prompt": "t"}], {"B": records}, 3, predict_fold)
    assert [row["prompt_id"] for row in merged["B"]] == [r["prompt_id"] for r in records]
    assert [row["fold"] for row in merged["B"]] == [fold_of(r["prompt"], 3) for r in records]
    for fold, pool in seen:  # each fold trains on the training records and the other folds only
        assert pool == sorted(["train"] + [r["prompt_id"] for r in records if fold_of(r["prompt"], 3) != fold])
    assert cross_fit_predict([], {"B": records}, 3, predict_fold, folds=[1]) is None  # one fold: nothing merged
    assert cross_fit_predict([], {"B": records}, 2, lambda *_: None) is None  # trained, not routed
    with pytest.raises(DataError, match="prompt_id '3' appears twice"):
        cross_fit_predict([], {"B": records + records[3:4]}, 2, predict_fold)
