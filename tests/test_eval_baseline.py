"""The baseline evaluation entry point on a tiny synthetic data_dir (GSM8k, MT-Bench and one train set)."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import eval_baseline
import report
from args import EvalArguments, as_list
from data.cross_fit import fold_of
from routers.base import Router
from utils.io import DataError, read_json

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "compressed_data"
CANDIDATES = ["cand-a", "cand-b", "cand-c"]

# GSM8k: correctness per candidate; MT-Bench: (turn 1, turn 2) judge scores per candidate
GSM8K = {"0": ("How many legs do 3 cats have?", [True, False, True]),
         "1": ("What is 7 times 6?", [False, False, True]),
         "2": ("Add 15 and 27.", [False, True, False]),
         "3": ("Halve 90.", [False, False, False]),
         "4": ("What is 100 minus 1?", [True, True, True]),
         "5": ("Double 21.", [False, True, True])}
MT_BENCH = {81: ("Write a haiku about rain.", [(8, 6), (9, 9), (3, 5)]),
            82: ("Explain recursion to a child.", [(10, 10), (7, 8), (6, 6)]),
            83: ("Plan a three-day trip to Rome.", [(4, 4), (5, 3), (9, 7)])}
TRAIN = {"t1": ("Write a function that adds two numbers.", [1.0, 0.5, 0.0]),
         "t2": ("Write a function that reverses a string.", [0.0, 1.0, 0.25]),
         "t3": ("Write a function that sorts a list.", [0.5, 0.5, 1.0]),
         "t4": ("Write a function that counts words.", [1.0, 0.0, 0.0])}


def write_text(path: Path, text: str, gzipped: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gzipped:
        with gzip.open(path.with_name(path.name + ".gz"), "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def jsonl(rows) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A data_dir laid out like the released data (GSM8k files gzipped, as released)."""
    root = tmp_path / "data"
    for i, llm in enumerate(CANDIDATES):
        details = {qid: {"prompt": [{"role": "HUMAN", "prompt": prompt}],
                         "origin_prediction": f"{llm} solves {qid}", "predictions": "x", "references": "y",
                         "correct": correct[i]}
                   for qid, (prompt, correct) in GSM8K.items()}
        write_text(root / "test" / "GSM8k" / f"{llm}.json", json.dumps({"accuracy": 0.0, "details": details}),
                   gzipped=True)
        judgments = []
        for qid, (_, turn_scores) in MT_BENCH.items():
            for turn in (1, 2):
                judgments.append({
                    "question_id": qid, "model": llm, "judge": ["gpt-4-0125-preview", "single-v1"], "turn": turn,
                    "user_prompt": f"[Instruction]\nRate it.\n\n[Question]\nq\n\n[The Start of Assistant's Answer]\n"
                                   f"{llm} answers {qid}\n[The End of Assistant's Answer]",
                    "judgment": "Rating: [[x]]", "score": turn_scores[i][turn - 1]})
        write_text(root / "test" / "MT-Bench" / "judgments" / f"gpt-4-0125-preview_judge_{llm}_single.jsonl",
                   jsonl(judgments))
        write_text(root / "train" / "Toy" / "responses" / f"{llm}.jsonl",
                   jsonl({"prompt_id": pid, "response": f"{llm} code for {pid}", "score": scores[i]}
                         for pid, (_, scores) in TRAIN.items()))
    write_text(root / "test" / "MT-Bench" / "question.jsonl",
               jsonl({"question_id": qid, "category": "writing", "turns": [prompt, "Now shorter."]}
                     for qid, (prompt, _) in MT_BENCH.items()))
    write_text(root / "train" / "Toy" / "instructions.jsonl",
               jsonl({"prompt_id": pid, "prompt": prompt} for pid, (prompt, _) in TRAIN.items()))
    write_text(root / "train" / "Toy" / "eval_ids.json", json.dumps(["t4"]))
    return root


def run(data_dir: Path, output_dir: Path, router_type: str, **kwargs) -> dict:
    eval_baseline.main(router_type, data_dir=str(data_dir), candidate_llms=",".join(CANDIDATES),
                       test_datasets="GSM8k,MT-Bench", output_dir=str(output_dir), **kwargs)
    return read_json(output_dir / "metrics.json")


# ------------------------------------------------------------------------------------------------
# arguments
# ------------------------------------------------------------------------------------------------

def test_as_list_accepts_every_form_fire_passes():
    assert as_list("a,b") == ["a", "b"]
    assert as_list("[Yi-1.5-34B-Chat, internlm2_5-20b-chat]") == ["Yi-1.5-34B-Chat", "internlm2_5-20b-chat"]
    assert as_list(("GSM8k", "MATH")) == ["GSM8k", "MATH"]
    assert as_list(["x"]) == ["x"] and as_list("'one'") == ["one"] and as_list("") == []


def test_eval_arguments_defaults_and_validation(tmp_path):
    for folder, score_dir in ((tmp_path / "train" / "A", "responses"), (tmp_path / "B", "scored")):
        write_text(folder / "instructions.jsonl", '{"prompt_id": "a", "prompt": "b"}\n')
        write_text(folder / score_dir / "m.jsonl", "")
    args = EvalArguments(data_dir=tmp_path, train_datasets="A/responses," + str(tmp_path / "B"))
    assert args.test_datasets == ["AlpacaEval", "ArenaHard", "MT-Bench", "GSM8k", "MATH", "HumanEval", "MBPP"]
    assert args.candidate_llms[0] == "Yi-1.5-34B-Chat" and len(args.candidate_llms) == 5
    assert args.train_sets() == [(tmp_path / "train" / "A", "responses"), (tmp_path / "B", "scored")]
    with pytest.raises(ValueError, match=r"Unknown --test_datasets \['GSM8K'\]"):
        EvalArguments(data_dir=tmp_path, test_datasets="GSM8K")
    with pytest.raises(ValueError, match=r"--cross_fit_folds must be 0 \(off\) or at least 2"):
        EvalArguments(data_dir=tmp_path, cross_fit_folds=1)
    assert EvalArguments(data_dir=tmp_path, cross_fit_folds="2", seed=3.0).cross_fit_folds == 2
    for flag, value in (("cross_fit_folds", 2.5), ("cross_fit_folds", "two"), ("seed", True), ("seed", "x")):
        with pytest.raises(ValueError, match=f"--{flag} must be an integer"):
            EvalArguments(data_dir=tmp_path, **{flag: value})
    with pytest.raises(ValueError, match="--test_datasets is empty"):
        EvalArguments(data_dir=tmp_path, test_datasets=",")
    with pytest.raises(ValueError, match="--train_split must be one of all, train, eval, got 'dev'"):
        EvalArguments(data_dir=tmp_path, train_split="dev")
    with pytest.raises(DataError, match="--train_datasets 'C': neither .* holds instructions.jsonl"):
        EvalArguments(data_dir=tmp_path, train_datasets="C")
    with pytest.raises(DataError, match="--train_datasets 'A/scored': score directory .* not found; .* has responses"):
        EvalArguments(data_dir=tmp_path, train_datasets="A/scored")
    with pytest.raises(DataError, match="nowhere: --data_dir is not a folder"):
        EvalArguments(data_dir=tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------------
# the cross-fit driver
# ------------------------------------------------------------------------------------------------

class RecordingRouter(Router):
    """Learns nothing useful; remembers what each instance was fitted on and asked to route."""

    learns_from_data = True
    instances: list["RecordingRouter"] = []

    def __init__(self):
        self.fitted_on, self.routed = [], []
        RecordingRouter.instances.append(self)

    def fit(self, examples):
        self.fitted_on = [example["prompt"] for example in examples]
        return self

    def route(self, prompts, responses=None, scores=None):
        self.routed.extend(prompts)
        return np.array([[float(len(prompt) % 3 == i) for i in range(3)] for prompt in prompts])


def synthetic(source: str, n: int) -> list[dict]:
    return [{"prompt_id": str(i), "prompt": f"{source} question {i}", "source": source,
             "responses": ["a", "b", "c"], "scores": [0.0, 1.0, 0.0], "best_model_idx": 1} for i in range(n)]


def test_cross_fit_never_trains_on_in_fold_prompts_and_covers_every_query_once():
    RecordingRouter.instances = []
    test_sets = {"GSM8k": synthetic("GSM8k", 40), "MT-Bench": synthetic("MT-Bench", 25)}
    train = synthetic("Toy", 10)
    predictions = eval_baseline.predict(RecordingRouter, train, test_sets, folds=3)

    fitted = RecordingRouter.instances[1:]  # the first instance is predict()'s probe
    assert len(fitted) == 3
    for router in fitted:
        assert router.routed and not set(router.routed) & set(router.fitted_on)
        assert set(f"Toy question {i}" for i in range(10)) <= set(router.fitted_on)
    all_prompts = [e["prompt"] for examples in test_sets.values() for e in examples]
    assert sorted(p for router in fitted for p in router.routed) == sorted(all_prompts)
    for name, examples in test_sets.items():
        rows = predictions[name]
        assert [row["prompt_id"] for row in rows] == [e["prompt_id"] for e in examples]
        for row, example in zip(rows, examples):
            assert row["fold"] == fold_of(example["prompt"], 3)
            assert row["choice"] == len(example["prompt"]) % 3
            assert row["router_scores"][row["choice"]] == 1.0


def test_learning_router_without_training_data_is_an_error():
    with pytest.raises(ValueError, match="learns from data but has none: pass --train_datasets"):
        eval_baseline.predict(RecordingRouter, [], {"GSM8k": synthetic("GSM8k", 3)}, folds=0)


# ------------------------------------------------------------------------------------------------
# end to end on files
# ------------------------------------------------------------------------------------------------

def test_oracle_end_to_end(data_dir, tmp_path, capsys):
    output = tmp_path / "out" / "oracle"
    summary = run(data_dir, output, "oracle")
    gsm8k = read_json(output / "test_predictions" / "GSM8k.json")
    assert [row["choice"] for row in gsm8k] == [0, 2, 1, 0, 0, 1]
    assert gsm8k[0] == {"prompt_id": "0", "router_scores": [1.0, 0.0, 1.0], "choice": 0, "fold": None}
    mt_bench = read_json(output / "test_predictions" / "MT-Bench.json")
    # MT-Bench scores are turn means: q81 [7, 9, 4], q82 [10, 7.5, 6], q83 [4, 4, 8]
    assert [row["router_scores"] for row in mt_bench] == [[7.0, 9.0, 4.0], [10.0, 7.5, 6.0], [4.0, 4.0, 8.0]]
    assert [row["choice"] for row in mt_bench] == [1, 0, 2]
    # the oracle solves every GSM8k query some candidate solves (5 of 6) and gets MT-Bench (9 + 10 + 8) / 3
    assert summary["GSM8k"]["score"] == pytest.approx(100 * 5 / 6)
    assert summary["MT-Bench"]["score"] == pytest.approx(9.0)
    assert summary["GSM8k"]["gap_closed"] == pytest.approx(1.0)
    table = (output / "results.md").read_text()
    assert "| oracle |" in table and table.strip() in capsys.readouterr().out
    assert read_json(output / "run_args.json")["router_type"] == "oracle"


def test_fixed_end_to_end_and_combined_table(data_dir, tmp_path):
    first = run(data_dir, tmp_path / "fixed0", "fixed", target_index=0, run_name="fixed: cand-a")
    run(data_dir, tmp_path / "fixed2", "fixed", target_index=2)
    choices = [row["choice"] for row in read_json(tmp_path / "fixed0" / "test_predictions" / "GSM8k.json")]
    assert choices == [0] * 6
    assert first["GSM8k"]["score"] == pytest.approx(100 * 2 / 6)  # cand-a solves queries 0 and 4
    assert first["MT-Bench"]["score"] == pytest.approx((7 + 10 + 4) / 3)
    report.main(["combine", str(tmp_path / "fixed0"), str(tmp_path / "fixed2"), "--out", str(tmp_path / "all.md")])
    table = (tmp_path / "all.md").read_text()
    assert table.index("| fixed: cand-a |") < table.index("| fixed(target_index=2) |")


def test_random_gets_the_run_seed_and_names_the_run_after_it(data_dir, tmp_path):
    from routers import RandomRouter

    run(data_dir, tmp_path / "random", "random", seed=3)
    assert read_json(tmp_path / "random" / "run_args.json")["run_name"] == "random(seed=3)"
    rows = read_json(tmp_path / "random" / "test_predictions" / "GSM8k.json")
    expected = RandomRouter(seed=3, n_candidates=3).route([prompt for prompt, _ in GSM8K.values()])
    np.testing.assert_allclose([row["router_scores"] for row in rows], expected)


def test_knn_cross_fit_end_to_end_with_a_tiny_encoder(data_dir, tmp_path, monkeypatch):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from model.backbones import resolve_backbone

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))
    except ModuleNotFoundError as e:
        pytest.skip(str(e))
    torch.manual_seed(0)
    encoder = tmp_path / "encoder"
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    monkeypatch.setenv("LOOKAHEAD_CACHE", str(tmp_path / "cache"))

    output = tmp_path / "knn"
    summary = run(data_dir, output, "knn", train_datasets="Toy", cross_fit_folds=2, n_neighbors=2,
                  embedding_model=str(encoder))
    for name, questions in (("GSM8k", GSM8K), ("MT-Bench", MT_BENCH)):
        rows = read_json(output / "test_predictions" / f"{name}.json")
        assert [row["prompt_id"] for row in rows] == [str(qid) for qid in questions]
        assert [row["fold"] for row in rows] == [fold_of(prompt, 2) for prompt, _ in questions.values()]
        assert all(len(row["router_scores"]) == 3 and row["choice"] == int(np.argmax(row["router_scores"]))
                   for row in rows)
    assert set(summary) >= {"GSM8k", "MT-Bench", "mean_gap_closed"}
    assert read_json(output / "run_args.json")["router_kwargs"]["n_neighbors"] == 2

    with pytest.raises(ValueError, match="learns from data but has none"):
        run(data_dir, tmp_path / "knn_no_data", "knn", embedding_model=str(encoder))


def test_command_line_parses_lists_and_router_arguments(data_dir, tmp_path):
    output = tmp_path / "cli"
    completed = subprocess.run(
        [sys.executable, "src/eval_baseline.py", "--router_type", "fixed", "--target_index", "1",
         "--data_dir", str(data_dir), "--candidate_llms", "[cand-a,cand-b,cand-c]",
         "--test_datasets", "GSM8k,MT-Bench", "--output_dir", str(output)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "| fixed(target_index=1) |" in completed.stdout
    assert [row["choice"] for row in read_json(output / "test_predictions" / "MT-Bench.json")] == [1, 1, 1]


@pytest.mark.slow
@pytest.mark.skipif(not REAL_DATA.exists(), reason="the paper's data is not at ../shared/data/compressed_data")
def test_oracle_on_the_real_data(tmp_path):
    eval_baseline.main("oracle", data_dir=str(REAL_DATA), output_dir=str(tmp_path))
    summary = read_json(tmp_path / "metrics.json")
    for name in ("AlpacaEval", "ArenaHard", "MT-Bench", "GSM8k", "MATH", "HumanEval", "MBPP"):
        assert summary[name]["gap_closed"] == pytest.approx(1.0)
        assert summary[name]["score"] >= summary[name]["best_fixed"]
