"""Tests for the data readers (data.benchmarks, data.train_sets) and decompress_data.sh.

Most tests build tiny data folders in tmp_path with hand-computed expectations; the tests at the end
read the paper's released data and are skipped when it is absent.
"""
import csv
import gzip
import json
import logging
import math
import os
import subprocess
from pathlib import Path

import pytest

from data import BENCHMARKS, PAPER_CANDIDATES, available_candidates, load_benchmark, load_train_set
from utils.io import DataError

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "decompress_data.sh"


# --------------------------------------------------------------------------------------------------
# Writers for tiny data folders
# --------------------------------------------------------------------------------------------------

def write(path: Path, text: str, gz: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def write_json(path, obj, gz=False):
    write(path, json.dumps(obj), gz)


def write_jsonl(path, rows, gz=False):
    write(path, "".join(json.dumps(r) + "\n" for r in rows), gz)


ALPACA = {  # instruction -> (reference, {llm: (output, preference)})
    "Say hi": ("Hello!", {"m1": ("hi", 1.75), "m2": ("Hello there", 1.25)}),
    "Count to 3": ("1 2 3", {"m1": ("1, 2, 3", 1.0), "m2": ("one two three", 1.5)}),
}


def write_alpaca_eval(folder: Path, gz=False):
    write_jsonl(folder / "instructions.jsonl",
                [{"dataset": "x", "instruction": i, "reference": ref} for i, (ref, _) in ALPACA.items()], gz)
    for llm in ("m1", "m2"):
        items = list(ALPACA.items())
        if llm == "m2":
            items.reverse()  # matched by instruction text, not position
        write_json(folder / llm / "model_outputs.json",
                   [{"instruction": i, "output": per[llm][0], "generator": llm} for i, (_, per) in items], gz)
        write_json(folder / llm / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json", [
            {"instruction": i, "generator_1": "gpt4_1106_preview", "output_1": ref, "generator_2": llm,
             "output_2": per[llm][0], "preference": per[llm][1]}
            for i, (ref, per) in items
        ], gz)


def arena_prompt(question, a, b):
    return (f"<|User Prompt|>\n{question}\n\n<|The Start of Assistant A's Answer|>\n{a}\n"
            f"<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{b}\n"
            f"<|The End of Assistant B's Answer|>")


ARENA_QUESTIONS = {"q1": "Explain TCP.", "q2": "Write a limerick.", "q3": "What is ABC notation?"}
ARENA_VERDICTS = {  # llm -> question -> [game1, game2]; m2 was never judged on q3
    "m1": {"q1": ["B>>A", "A>>B"], "q2": ["A=B", "A=B"], "q3": ["A>B", "B>A"]},
    "m2": {"q1": ["A>B", None], "q2": ["B>A", "B>A"]},
}


def write_arena_hard(folder: Path, gz=False):
    write_jsonl(folder / "question.jsonl", [
        {"question_id": q, "category": "arena-hard-v0.1", "turns": [{"content": text}]}
        for q, text in ARENA_QUESTIONS.items()
    ], gz)
    for llm in ("m1", "m2"):
        write_jsonl(folder / "model_answer" / f"{llm}.jsonl", [
            {"question_id": q, "model_id": llm, "choices": [{"index": 0, "turns": [{"content": f"{llm} on {q}"}]}]}
            for q in ARENA_QUESTIONS
        ], gz)
        write_jsonl(folder / "model_judgment" / f"{llm}.jsonl", [
            {"question_id": q, "model": llm, "judge": "gpt-4-1106-preview", "games": [
                {"user_prompt": arena_prompt(ARENA_QUESTIONS[q], "baseline", f"{llm} on {q}"), "score": v[0]},
                {"user_prompt": arena_prompt(ARENA_QUESTIONS[q], f"{llm} on {q}", "baseline"), "score": v[1]},
            ]}
            for q, v in ARENA_VERDICTS[llm].items()
        ], gz)


MT_QUESTIONS = {81: ("writing", ["Write a poem.", "Make it shorter."]),
                82: ("math", ["What is 3*4?", "And 3*5?"])}
MT_SCORES = {"m1": {81: [8, 6], 82: [9, -1]}, "m2": {81: [10, 10], 82: [3, 5]}}


def mt_turn1_prompt(question, answer):
    return (f"[Instruction]\nPlease act as an impartial judge.\n\n[Question]\n{question}\n\n"
            f"[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]")


def mt_turn2_prompt(turns, answer):
    return (f"<|The Start of Assistant A's Conversation with User|>\n\n### User:\n{turns[0]}\n\n"
            f"### Assistant A:\n{answer}\n\n### User:\n{turns[1]}\n\n### Assistant A:\nsecond answer\n\n"
            f"<|The End of Assistant A's Conversation with User|>")


def write_mt_bench(folder: Path, gz=False):
    write_jsonl(folder / "question.jsonl", [
        {"question_id": q, "category": cat, "turns": turns} for q, (cat, turns) in MT_QUESTIONS.items()
    ], gz)
    for llm, per_question in MT_SCORES.items():
        rows = []
        for q, (t1, t2) in per_question.items():
            turns = MT_QUESTIONS[q][1]
            answer = f"{llm} answer to {q}\nwith two lines"
            rows.append({"question_id": q, "model": llm, "judge": ["gpt-4-0125-preview", "single-v1"],
                         "user_prompt": mt_turn1_prompt(turns[0], answer), "score": t1, "turn": 1})
            rows.append({"question_id": q, "model": llm, "judge": ["gpt-4-0125-preview", "single-v1-multi-turn"],
                         "user_prompt": mt_turn2_prompt(turns, answer), "score": t2, "turn": 2})
        rows.reverse()  # matched by (question_id, turn), not position
        write_jsonl(folder / "judgments" / f"gpt-4-0125-preview_judge_{llm}_single.jsonl", rows, gz)


MATH_PROMPTS = {"10": "What is 10+1?", "0": "What is 0+1?", "1": "What is 1+1?"}  # file order "10", "0", "1"
MATH_CORRECT = {"m1": {"10": True, "0": False, "1": True}, "m2": {"10": True, "0": True, "1": False}}


def write_math_style(folder: Path, gz=False):
    for llm, correct in MATH_CORRECT.items():
        write_json(folder / f"{llm}.json", {"accuracy": 66.7, "type": "GEN", "details": {
            i: {"prompt": [{"role": "HUMAN", "prompt": p}], "origin_prediction": f"{llm} solves {i}",
                "predictions": "x", "references": "x", "correct": correct[i]}
            for i, p in MATH_PROMPTS.items()
        }}, gz)


CODE_PROMPTS = {"0": "def add(a, b):", "1": "def sub(a, b):"}
CODE_CORRECT = {"m1": {"0": True, "1": False}, "m2": {"0": False, "1": False}}


def write_code_style(folder: Path, gz=False):
    for llm, correct in CODE_CORRECT.items():
        write_json(folder / "predictions" / f"{llm}.json", {
            i: {"origin_prompt": [{"role": "HUMAN", "prompt": p}], "prediction": f"```{llm} code {i}```"}
            for i, p in CODE_PROMPTS.items()
        }, gz)
        write_json(folder / "results" / f"{llm}.json",
                   {"score": 50.0, "details": {i: {"is_correct": c} for i, c in correct.items()}}, gz)


def write_benchmarks(data_dir: Path, gz=False) -> Path:
    test = data_dir / "test"
    write_alpaca_eval(test / "AlpacaEval", gz)
    write_arena_hard(test / "ArenaHard", gz)
    write_mt_bench(test / "MT-Bench", gz)
    for name in ("GSM8k", "MATH"):
        write_math_style(test / name, gz)
    for name in ("HumanEval", "MBPP"):
        write_code_style(test / name, gz)
    return data_dir


@pytest.fixture
def data_dir(tmp_path):
    return write_benchmarks(tmp_path / "data")


# --------------------------------------------------------------------------------------------------
# Benchmark readers on tiny files
# --------------------------------------------------------------------------------------------------

def test_alpaca_eval_records(data_dir):
    records = load_benchmark("AlpacaEval", data_dir, ["m1", "m2"])
    assert [r["prompt_id"] for r in records] == ["0", "1"]
    first, second = records
    assert first["prompt"] == "Say hi" and first["source"] == "AlpacaEval"
    assert first["responses"] == ["hi", "Hello there"]
    assert first["preferences"] == [1.75, 1.25]
    assert first["scores"] == [0.75, 0.25] and first["best_model_idx"] == 0
    assert first["output_lengths"] == [2, 11]
    assert first["reference_output"] == "Hello!" and first["reference_length"] == 6
    assert second["scores"] == [0.0, 0.5] and second["best_model_idx"] == 1
    assert second["responses"] == ["1, 2, 3", "one two three"]


def test_arena_hard_records_and_skipped_question(data_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="data.benchmarks"):
        records = load_benchmark("ArenaHard", data_dir, ["m1", "m2"])
    assert "skipping 1 of 3 questions" in caplog.text
    assert [r["prompt_id"] for r in records] == ["q1", "q2"]  # q3 lacks m2's judgment
    q1, q2 = records
    assert q1["prompt"] == "Explain TCP."
    assert q1["responses"] == ["m1 on q1", "m2 on q1"]
    assert q1["verdicts"] == [["B>>A", "A>>B"], ["A>B", None]]
    # m1: strong win in both games (B>>A as B, A>>B as A) = 1; m2: weak loss 0.25 and missing 0
    assert q1["scores"] == [1.0, 0.125] and q1["best_model_idx"] == 0
    # m1: two ties = 0.5; m2: weak win as B (0.75) and weak loss as A (0.25) = 0.5; tie -> lowest index
    assert q2["scores"] == [0.5, 0.5] and q2["best_model_idx"] == 0
    # with m1 alone, q3 is judged and kept: weak loss as B (0.25), weak loss as A (0.25)
    assert [r["scores"] for r in load_benchmark("ArenaHard", data_dir, ["m1"])] == [[1.0], [0.5], [0.25]]


def test_mt_bench_records(data_dir):
    records = load_benchmark("MT-Bench", data_dir, ["m2", "m1"])  # candidate order is the caller's
    assert [r["prompt_id"] for r in records] == ["81", "82"]
    q81, q82 = records
    assert q81["prompt"] == "Write a poem." and q81["category"] == "writing"
    assert q81["responses"] == ["m2 answer to 81\nwith two lines", "m1 answer to 81\nwith two lines"]
    assert q81["turn_scores"] == [[10, 10], [8, 6]]
    assert q81["scores"] == [10.0, 7.0] and q81["best_model_idx"] == 0
    assert q82["turn_scores"] == [[3, 5], [9, -1]]  # the judge's -1 is kept as given
    # the routing score averages the valid turns only (FastChat drops -1 parse failures)
    assert q82["scores"] == [4.0, 9.0] and q82["best_model_idx"] == 1


@pytest.mark.parametrize("name", ["GSM8k", "MATH"])
def test_math_style_records(data_dir, name):
    records = load_benchmark(name, data_dir, ["m1", "m2"])
    assert [r["prompt_id"] for r in records] == ["0", "1", "10"]  # numeric id order
    assert [r["prompt"] for r in records] == ["What is 0+1?", "What is 1+1?", "What is 10+1?"]
    assert [r["scores"] for r in records] == [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    assert [r["best_model_idx"] for r in records] == [1, 0, 0]
    assert records[0]["responses"] == ["m1 solves 0", "m2 solves 0"]
    assert all(r["source"] == name for r in records)


@pytest.mark.parametrize("name", ["HumanEval", "MBPP"])
def test_code_style_records(data_dir, name):
    records = load_benchmark(name, data_dir, ["m1", "m2"])
    assert [(r["prompt_id"], r["prompt"]) for r in records] == [("0", "def add(a, b):"), ("1", "def sub(a, b):")]
    assert [r["scores"] for r in records] == [[1.0, 0.0], [0.0, 0.0]]
    assert [r["best_model_idx"] for r in records] == [0, 0]
    assert records[1]["responses"] == ["```m1 code 1```", "```m2 code 1```"]


def test_gzipped_data_reads_the_same(data_dir, tmp_path):
    gz_dir = write_benchmarks(tmp_path / "compressed_data", gz=True)
    for name in BENCHMARKS:
        assert available_candidates(name, gz_dir) == ["m1", "m2"]
        assert load_benchmark(name, gz_dir, ["m1", "m2"]) == load_benchmark(name, data_dir, ["m1", "m2"])


def test_unknown_candidate_lists_the_available_ones(data_dir):
    with pytest.raises(DataError, match=r"\['m3'\].*Available candidates for GSM8k: \['m1', 'm2'\]"):
        load_benchmark("GSM8k", data_dir, ["m1", "m3"])


def test_unknown_benchmark_and_bad_candidate_lists(data_dir):
    with pytest.raises(ValueError, match="Unknown benchmark 'gsm8k'"):
        load_benchmark("gsm8k", data_dir, ["m1"])
    with pytest.raises(ValueError, match="more than once"):
        load_benchmark("GSM8k", data_dir, ["m1", "m1"])
    with pytest.raises(ValueError, match="non-empty list"):
        load_benchmark("GSM8k", data_dir, "m1")
    with pytest.raises(DataError, match="test/GSM8k: benchmark folder not found"):
        load_benchmark("GSM8k", data_dir / "test", ["m1"])


# --------------------------------------------------------------------------------------------------
# Benchmark readers on bad files: each message names the file, the line or id, and the field
# --------------------------------------------------------------------------------------------------

def test_math_prompt_mismatch_between_candidates(data_dir):
    path = data_dir / "test" / "GSM8k" / "m2.json"
    obj = json.loads(path.read_text())
    obj["details"]["1"]["prompt"][0]["prompt"] = "What is 1+2?"
    path.write_text(json.dumps(obj))
    with pytest.raises(DataError, match=r"m2\.json, id '1': field 'prompt' differs"):
        load_benchmark("GSM8k", data_dir, ["m1", "m2"])


def test_math_missing_id_in_a_candidate(data_dir):
    path = data_dir / "test" / "MATH" / "m2.json"
    obj = json.loads(path.read_text())
    del obj["details"]["10"]
    path.write_text(json.dumps(obj))
    with pytest.raises(DataError, match=r"m2\.json: misses id '10' \(1 missing, 0 extra"):
        load_benchmark("MATH", data_dir, ["m1", "m2"])


def test_code_result_not_boolean(data_dir):
    path = data_dir / "test" / "HumanEval" / "results" / "m1.json"
    write_json(path, {"details": {"0": {"is_correct": "yes"}, "1": {"is_correct": False}}})
    with pytest.raises(DataError, match=r"results/m1\.json, id '0': field 'is_correct' must be true or false"):
        load_benchmark("HumanEval", data_dir, ["m1"])


def test_arena_hard_unknown_verdict(data_dir):
    path = data_dir / "test" / "ArenaHard" / "model_judgment" / "m1.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"A=B"', '"A=B?"', 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"m1\.jsonl, line 2, question_id 'q2': field 'games\[0\]\.score'"):
        load_benchmark("ArenaHard", data_dir, ["m1"])


def test_arena_hard_duplicate_judgment(data_dir):
    path = data_dir / "test" / "ArenaHard" / "model_judgment" / "m2.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines + [lines[0]]) + "\n")
    with pytest.raises(DataError, match=r"m2\.jsonl, line 3, question_id 'q1': field 'question_id' repeats"):
        load_benchmark("ArenaHard", data_dir, ["m2"])


def test_mt_bench_missing_turn(data_dir):
    path = data_dir / "test" / "MT-Bench" / "judgments" / "gpt-4-0125-preview_judge_m1_single.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    write_jsonl(path, [r for r in rows if (r["question_id"], r["turn"]) != (82, 2)])
    with pytest.raises(DataError, match=r"m1_single\.jsonl: question_id 82 turn 2 has no judgment"):
        load_benchmark("MT-Bench", data_dir, ["m1"])


def test_mt_bench_non_numeric_score(data_dir):
    path = data_dir / "test" / "MT-Bench" / "judgments" / "gpt-4-0125-preview_judge_m2_single.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0]["score"] = "7"
    write_jsonl(path, rows)
    with pytest.raises(DataError, match=r"m2_single\.jsonl, line 1, question_id 82 turn 2: field 'score' "
                                        r"must be a finite number, got '7'"):
        load_benchmark("MT-Bench", data_dir, ["m2"])


def test_alpaca_eval_candidate_missing_an_instruction(data_dir):
    path = data_dir / "test" / "AlpacaEval" / "m2" / "model_outputs.json"
    path.write_text(json.dumps(json.loads(path.read_text())[:1]))
    with pytest.raises(DataError, match=r"m2/model_outputs\.json: field 'instruction' misses 1 instruction\(s\) "
                                        r"of instructions.jsonl, e\.g\. prompt_id 0"):
        load_benchmark("AlpacaEval", data_dir, ["m1", "m2"])


def test_alpaca_eval_preference_out_of_range(data_dir):
    path = data_dir / "test" / "AlpacaEval" / "m1" / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json"
    annotations = json.loads(path.read_text())
    annotations[1]["preference"] = 2.5
    path.write_text(json.dumps(annotations))
    with pytest.raises(DataError, match=r"annotations\.json, prompt_id 1: field 'preference' is 2\.5"):
        load_benchmark("AlpacaEval", data_dir, ["m1"])


# --------------------------------------------------------------------------------------------------
# Field cases from public bug reports: what the official scorers accept, we read the same way
# --------------------------------------------------------------------------------------------------

def test_alpaca_eval_reads_a_zero_preference_as_a_draw_and_null_as_no_verdict(data_dir):
    # alpaca_eval (metrics/helpers.py) maps the older draw encoding 0 to 1.5 and drops null from every average.
    path = data_dir / "test" / "AlpacaEval" / "m1" / "weighted_alpaca_eval_gpt4_turbo" / "annotations.json"
    annotations = json.loads(path.read_text())
    by_instruction = {row["instruction"]: row for row in annotations}
    by_instruction["Say hi"]["preference"] = 0
    by_instruction["Count to 3"]["preference"] = None
    path.write_text(json.dumps(annotations))
    say_hi, count = load_benchmark("AlpacaEval", data_dir, ["m1", "m2"])
    assert say_hi["preferences"] == [1.5, 1.25] and say_hi["scores"] == [0.5, 0.25]
    assert math.isnan(count["preferences"][0]) and count["preferences"][1] == 1.5
    # no verdict routes as a loss to the reference (score 0), so the best candidate is m2 (0.5)
    assert count["scores"] == [0.0, 0.5] and count["best_model_idx"] == 1


def test_mt_bench_question_with_both_turns_unparsed_loads(data_dir, caplog):
    # FastChat's show_result drops every row whose score is -1; a question with both turns -1 must not stop the load.
    path = data_dir / "test" / "MT-Bench" / "judgments" / "gpt-4-0125-preview_judge_m1_single.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        if row["question_id"] == 81:
            row["score"] = -1
    write_jsonl(path, rows)
    with caplog.at_level(logging.WARNING, logger="data.benchmarks"):
        q81, q82 = load_benchmark("MT-Bench", data_dir, ["m1", "m2"])
    assert "question 81, candidate m1: both turn scores are -1" in caplog.text
    assert q81["turn_scores"] == [[-1, -1], [10, 10]]
    assert q81["scores"] == [1.0, 10.0] and q81["best_model_idx"] == 1  # unjudged: the scale's lowest score, 1
    assert q82["scores"] == [9.0, 4.0]  # m1 [9, -1]: the valid turn only


# --------------------------------------------------------------------------------------------------
# Training-set reader
# --------------------------------------------------------------------------------------------------

TRAIN_PROMPTS = {"p1": "Reverse a string.", "p2": "Sum a list.", "p3": "Parse a date."}
TRAIN_SCORES = {"m1": {"p1": 1.0, "p2": 0.25, "p3": 0.5}, "m2": {"p1": 1, "p2": 0.75, "p3": 0.5}}


@pytest.fixture
def set_dir(tmp_path):
    folder = tmp_path / "MyCodeSet"
    write_jsonl(folder / "instructions.jsonl",
                [{"prompt_id": i, "prompt": p, "tags": ["x"]} for i, p in TRAIN_PROMPTS.items()])
    for llm, scores in TRAIN_SCORES.items():
        rows = [{"prompt_id": i, "response": f"{llm} answers {i}", "passed": 3, "score": s}
                for i, s in scores.items()]
        write_jsonl(folder / "responses" / f"{llm}.jsonl", rows[::-1])  # matched by prompt_id
    write_json(folder / "eval_ids.json", ["p2"])
    return folder


def test_train_set_records_and_splits(set_dir):
    records = load_train_set(set_dir, ["m1", "m2"])
    assert [r["prompt_id"] for r in records] == ["p1", "p2", "p3"]
    assert records[0] == {"prompt_id": "p1", "prompt": "Reverse a string.", "source": "MyCodeSet",
                          "responses": ["m1 answers p1", "m2 answers p1"], "scores": [1.0, 1.0],
                          "best_model_idx": 0}
    assert [r["best_model_idx"] for r in records] == [0, 1, 0]
    assert [r["prompt_id"] for r in load_train_set(set_dir, ["m1", "m2"], split="train")] == ["p1", "p3"]
    assert [r["prompt_id"] for r in load_train_set(set_dir, ["m1", "m2"], split="eval")] == ["p2"]
    assert load_train_set(set_dir, ["m2"], split="eval")[0]["scores"] == [0.75]


def test_train_set_other_score_dir_and_gz(set_dir):
    write_jsonl(set_dir / "scored" / "m1.jsonl",
                [{"prompt_id": i, "response": "r", "score": 0.0} for i in TRAIN_PROMPTS], gz=True)
    records = load_train_set(set_dir, ["m1"], score_dir="scored")
    assert [r["scores"] for r in records] == [[0.0], [0.0], [0.0]]


def test_train_set_bad_split_and_missing_eval_ids(set_dir):
    with pytest.raises(ValueError, match="split must be one of"):
        load_train_set(set_dir, ["m1"], split="test")
    (set_dir / "eval_ids.json").unlink()
    assert len(load_train_set(set_dir, ["m1"])) == 3
    with pytest.raises(DataError, match=r"eval_ids\.json: not found, so split='train' is undefined"):
        load_train_set(set_dir, ["m1"], split="train")


def test_train_set_malformed_json_line(set_dir):
    path = set_dir / "instructions.jsonl"
    lines = path.read_text().splitlines()
    lines[1] = '{"prompt_id": "p2", "prompt": '
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"instructions\.jsonl, line 2: malformed JSON"):
        load_train_set(set_dir, ["m1"])


def test_train_set_empty_prompt(set_dir):
    rows = [{"prompt_id": i, "prompt": p} for i, p in TRAIN_PROMPTS.items()]
    rows[2]["prompt"] = "   "
    write_jsonl(set_dir / "instructions.jsonl", rows)
    with pytest.raises(DataError, match=r"instructions\.jsonl, line 3, prompt_id 'p3': field 'prompt' must be "
                                        r"a non-empty string"):
        load_train_set(set_dir, ["m1"])


def test_train_set_duplicate_prompt_id_in_instructions(set_dir):
    rows = [{"prompt_id": i, "prompt": p} for i, p in TRAIN_PROMPTS.items()] + [{"prompt_id": "p1", "prompt": "x"}]
    write_jsonl(set_dir / "instructions.jsonl", rows)
    with pytest.raises(DataError, match=r"instructions\.jsonl, line 4, prompt_id 'p1': field 'prompt_id' "
                                        r"repeats line 1"):
        load_train_set(set_dir, ["m1"])


def candidate_rows(llm="m1"):
    return [{"prompt_id": i, "response": f"{llm} answers {i}", "score": s} for i, s in TRAIN_SCORES[llm].items()]


def test_train_set_candidate_misses_a_prompt(set_dir):
    write_jsonl(set_dir / "responses" / "m1.jsonl", candidate_rows()[:2])
    with pytest.raises(DataError, match=r"m1\.jsonl: prompt_id 'p3' of instructions\.jsonl has no line "
                                        r"\(1 missing; fields 'prompt_id'"):
        load_train_set(set_dir, ["m1"])


def test_train_set_candidate_has_an_extra_prompt(set_dir):
    write_jsonl(set_dir / "responses" / "m1.jsonl",
                candidate_rows() + [{"prompt_id": "p9", "response": "r", "score": 1.0}])
    with pytest.raises(DataError, match=r"m1\.jsonl, line 4, prompt_id 'p9': field 'prompt_id' is not in "
                                        r"instructions\.jsonl"):
        load_train_set(set_dir, ["m1"])


def test_train_set_candidate_has_a_duplicate_prompt(set_dir):
    rows = candidate_rows()
    write_jsonl(set_dir / "responses" / "m1.jsonl", rows + [rows[1]])
    with pytest.raises(DataError, match=r"m1\.jsonl, line 4, prompt_id 'p2': field 'prompt_id' repeats line 2"):
        load_train_set(set_dir, ["m1"])


@pytest.mark.parametrize("bad_score, shown", [
    (None, "None"), ("0.5", "'0.5'"), (True, "True"), (float("nan"), "nan"),
])
def test_train_set_bad_score(set_dir, bad_score, shown):
    rows = candidate_rows("m2")
    rows[1]["score"] = bad_score
    if bad_score is None:
        del rows[1]["score"]
    write_jsonl(set_dir / "responses" / "m2.jsonl", rows)  # json.dumps writes NaN as the NaN literal
    with pytest.raises(DataError, match=rf"m2\.jsonl, line 2, prompt_id 'p2': field 'score' must be a finite "
                                        rf"number, got {shown}"):
        load_train_set(set_dir, ["m1", "m2"])


def test_train_set_missing_candidate_file_lists_the_found_ones(set_dir):
    with pytest.raises(DataError, match=r"m3\.jsonl: candidate file not found\. Candidates in .*responses: "
                                        r"\['m1', 'm2'\]"):
        load_train_set(set_dir, ["m1", "m3"])


def test_train_set_unknown_eval_id(set_dir):
    write_json(set_dir / "eval_ids.json", ["p2", "p7"])
    with pytest.raises(DataError, match=r"eval_ids\.json: prompt_id 'p7' is not in instructions\.jsonl"):
        load_train_set(set_dir, ["m1"], split="eval")


# --------------------------------------------------------------------------------------------------
# decompress_data.sh
# --------------------------------------------------------------------------------------------------

def run_script(cwd, *args):
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], cwd=cwd, capture_output=True, text=True)


def make_gz(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write(text)


def test_decompress_script_writes_skips_and_refreshes(tmp_path):
    src = tmp_path / "released"
    make_gz(src / "test" / "GSM8k" / "m1.json.gz", '{"details": {}}')
    make_gz(src / "train" / "set" / "instructions.jsonl.gz", '{"prompt_id": "a"}\n')
    (src / "README.md").write_text("not gzipped, ignored")
    (tmp_path / "compressed_data").symlink_to(src)  # SRC may be a symlink

    first = run_script(tmp_path, "compressed_data", "data", 2)
    assert first.returncode == 0, first.stderr
    assert "2 file(s) written, 0 already up to date" in first.stdout
    out = tmp_path / "data"
    assert (out / "test" / "GSM8k" / "m1.json").read_text() == '{"details": {}}'
    assert (out / "train" / "set" / "instructions.jsonl").read_text() == '{"prompt_id": "a"}\n'
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["instructions.jsonl", "m1.json"]

    mtime = (out / "test" / "GSM8k" / "m1.json").stat().st_mtime_ns
    again = run_script(tmp_path, "compressed_data/", "data", 2)
    assert again.returncode == 0, again.stderr
    assert "0 file(s) written, 2 already up to date" in again.stdout
    assert (out / "test" / "GSM8k" / "m1.json").stat().st_mtime_ns == mtime

    # a source newer than its output is decompressed again
    make_gz(src / "test" / "GSM8k" / "m1.json.gz", '{"details": {"0": 1}}')
    future = (out / "test" / "GSM8k" / "m1.json").stat().st_mtime + 10
    os.utime(src / "test" / "GSM8k" / "m1.json.gz", (future, future))
    refreshed = run_script(tmp_path, "compressed_data", "data")
    assert "1 file(s) written, 1 already up to date" in refreshed.stdout
    assert (out / "test" / "GSM8k" / "m1.json").read_text() == '{"details": {"0": 1}}'


def test_decompress_script_defaults_and_missing_source(tmp_path):
    missing = run_script(tmp_path)
    assert missing.returncode == 1
    assert "source folder 'compressed_data' not found" in missing.stderr
    assert "ln -s ../shared/data/compressed_data compressed_data" in missing.stderr
    assert "Lookahead Routing for Large Language Models" in missing.stderr
    assert not (tmp_path / "data").exists()

    make_gz(tmp_path / "compressed_data" / "a.txt.gz", "alpha")
    ok = run_script(tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "data" / "a.txt").read_text() == "alpha"


def test_decompress_script_corrupt_file_fails_without_leftovers(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bad.txt.gz").write_bytes(b"not gzip")
    result = run_script(tmp_path, "src", "out", 1)
    assert result.returncode == 1
    assert "failed to decompress src/bad.txt.gz" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []


# --------------------------------------------------------------------------------------------------
# The paper's released data (skipped when absent)
# --------------------------------------------------------------------------------------------------

def find_released_data():
    for candidate in (REPO_ROOT.parent / "shared" / "data" / "compressed_data", REPO_ROOT / "compressed_data"):
        if (candidate / "test").is_dir():
            return candidate
    return None


RELEASED = find_released_data()
needs_released = pytest.mark.skipif(RELEASED is None, reason="the paper's compressed_data is not available")
EXPECTED_COUNTS = {"AlpacaEval": 805, "ArenaHard": 499, "MT-Bench": 80, "GSM8k": 1319, "MATH": 5000,
                   "HumanEval": 164, "MBPP": 257}


@pytest.fixture(scope="module")
def released_benchmarks():
    return {name: load_benchmark(name, RELEASED, PAPER_CANDIDATES) for name in BENCHMARKS}


def read_gz_json(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def read_gz_jsonl(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def candidate_mean(records, k):
    return sum(r["scores"][k] for r in records) / len(records)


@needs_released
@pytest.mark.parametrize("name", BENCHMARKS)
def test_released_counts_and_contract(released_benchmarks, name):
    records = released_benchmarks[name]
    assert len(records) == EXPECTED_COUNTS[name]
    assert len({r["prompt_id"] for r in records}) == len(records)
    for r in records:
        assert r["source"] == name and r["prompt"].strip()
        assert len(r["responses"]) == len(r["scores"]) == 5
        assert r["best_model_idx"] == r["scores"].index(max(r["scores"]))


@needs_released
@pytest.mark.parametrize("name, file_pattern, key", [
    ("GSM8k", "{llm}.json.gz", "accuracy"),
    ("MATH", "{llm}.json.gz", "accuracy"),
    ("HumanEval", "results/{llm}.json.gz", "humaneval_pass@1"),
    ("MBPP", "results/{llm}.json.gz", "score"),
])
def test_released_accuracy_matches_the_reported_one(released_benchmarks, name, file_pattern, key):
    for k, llm in enumerate(PAPER_CANDIDATES):
        reported = read_gz_json(RELEASED / "test" / name / file_pattern.format(llm=llm))[key]
        assert 100 * candidate_mean(released_benchmarks[name], k) == pytest.approx(reported, abs=1e-9)


@needs_released
def test_released_alpaca_eval_matches_the_leaderboard(released_benchmarks):
    records = released_benchmarks["AlpacaEval"]
    for k, llm in enumerate(PAPER_CANDIDATES):
        with gzip.open(RELEASED / "test" / "AlpacaEval" / llm / "weighted_alpaca_eval_gpt4_turbo" /
                       "leaderboard.csv.gz", "rt") as f:
            row = next(r for r in csv.DictReader(f) if r[""] == llm)
        assert 100 * candidate_mean(records, k) == pytest.approx(float(row["win_rate"]), abs=1e-6)
        mean_length = sum(r["output_lengths"][k] for r in records) / len(records)
        assert int(mean_length) == int(row["avg_length"])


@needs_released
def test_released_arena_hard_sides_and_missing_verdicts(released_benchmarks):
    def answer_in_slot(prompt, slot):
        start = f"<|The Start of Assistant {slot}'s Answer|>\n"
        end = f"\n<|The End of Assistant {slot}'s Answer|>"
        return prompt[prompt.index(start) + len(start): prompt.index(end)]

    records = {r["prompt_id"]: r for r in released_benchmarks["ArenaHard"]}
    for k, llm in enumerate(PAPER_CANDIDATES):
        for row in read_gz_jsonl(RELEASED / "test" / "ArenaHard" / "model_judgment" / f"{llm}.jsonl.gz"):
            if row["question_id"] not in records:
                continue
            answer = records[row["question_id"]]["responses"][k].strip()
            game1, game2 = (g["user_prompt"] for g in row["games"])
            # game 1: baseline in A, candidate in B; game 2 swapped. (One released answer is a truncated
            # prefix of the judged text, hence startswith.)
            assert answer_in_slot(game1, "B").strip().startswith(answer)
            assert answer_in_slot(game2, "A").strip().startswith(answer)
            assert answer_in_slot(game1, "A") == answer_in_slot(game2, "B")
    verdicts = [v for r in records.values() for pair in r["verdicts"] for v in pair]
    assert verdicts.count(None) == 9  # Yi 3, internlm 2, Llama 3, Qwen 1 (counted once from the files)
    assert "81048287fde44fd790ad195494a68a22" not in records  # no Llama-3.1-8B-Instruct judgment


@needs_released
def test_released_mt_bench_turn_scores(released_benchmarks):
    records = released_benchmarks["MT-Bench"]
    turn_scores = [s for r in records for pair in r["turn_scores"] for s in pair]
    assert turn_scores.count(-1) == 4  # internlm2_5 on 81, 92, 150 and Phi-3 on 100, all turn 2
    assert records[0]["turn_scores"][1] == [9, -1] and records[0]["scores"][1] == 9.0
    assert {r["category"] for r in records} == {"writing", "roleplay", "reasoning", "math", "coding",
                                                 "extraction", "stem", "humanities"}


@needs_released
def test_released_available_candidates():
    assert len(available_candidates("AlpacaEval", RELEASED)) == 16
    assert len(available_candidates("MT-Bench", RELEASED)) == 13
    for name in ("ArenaHard", "GSM8k", "MATH", "HumanEval", "MBPP"):
        assert set(PAPER_CANDIDATES) <= set(available_candidates(name, RELEASED))


@needs_released
def test_released_self_oss_train_set():
    set_dir = RELEASED / "train" / "SelfOSSInstructSC2_filtered2"
    records = load_train_set(set_dir, PAPER_CANDIDATES)
    assert len(records) == 4335
    assert records[0]["prompt_id"] == "self-oss-instruct-sc2-1"
    assert records[0]["source"] == "SelfOSSInstructSC2_filtered2"
    assert candidate_mean(records, 0) == pytest.approx(0.36016314725361387, abs=1e-12)  # Yi-1.5-34B-Chat
    eval_ids = {r["prompt_id"] for r in load_train_set(set_dir, PAPER_CANDIDATES, split="eval")}
    assert len(eval_ids) == 1000
    train_ids = {r["prompt_id"] for r in load_train_set(set_dir, PAPER_CANDIDATES, split="train")}
    assert len(train_ids) == 3335 and not train_ids & eval_ids
