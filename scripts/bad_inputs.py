"""The bad-input battery: every tool fed malformed, truncated, empty or contradictory input.

    python scripts/bad_inputs.py [--repo DIR] [--only TEXT] [--jobs 2] [--inprocess]

Each case starts from one small valid workspace (seven tiny benchmarks and a training set for candidates A and B,
a set to score, a set to generate for with a tiny local model, two finished evaluation runs, an untrained router
and a prices config), breaks one thing, runs one tool on it and classifies the outcome:

    held    the tool exits non-zero and its error names everything the case asks for: the file, the line (where
            the input has lines and the line is known), the field or flag, and a fix (an imperative such as
            "Fix the line", "Remove ...", "Pass ...", or a usage line)
    weak    non-zero exit, but the message lacks one of those (the table says which)
    failed  exit 0 (the bad input was taken), or no answer within the time limit

Tools: src/compute_rewards.py, src/generate_responses.py, src/eval_baseline.py, src/report.py, src/calibrate.py and the
data readers (``data.load_benchmark`` / ``data.load_train_set``, driven by a three-line ``python -c``).
``--repo DIR`` runs the tools of another checkout (e.g. an older commit, to measure before and after with the same
cases); ``--inprocess`` runs them inside this interpreter (what tests/test_bad_inputs.py does: same verdicts,
no interpreter start per case). Prints a markdown table, one row per case, and the counts.
"""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = ["A", "B"]
TIMEOUT_S = 300
JUDGMENTS = "gpt-4-0125-preview_judge_{}_single.jsonl"
ANNOTATIONS = "weighted_alpaca_eval_gpt4_turbo/annotations.json"
READ_ONLY_DIR = "/sys/lookahead-bad-inputs"  # mkdir fails there even as root
FIX = re.compile(
    r"(?:^|[.;:!?(]\s+|\n|\(|: )(?:fix|remove|delete|pass|use|add|give|write|choose|pick|regenerate|re-?run|re-?judge|"
    r"re-?annotate|re-?generate|re-?score|re-?download|re-?create|annotate|judge|score|keep|copy|check|prepare|move|"
    r"name|set|replace|finish|hold|lower|raise|edit|convert|decompress|restore|make|train|load|list|point|"
    r"generate|run|wait|stop|drop|save|start|free|create|split|separate|rename|install|select|try)\b|usage:",
    re.IGNORECASE)


# --------------------------------------------------------------------------------------------------
# The valid workspace
# --------------------------------------------------------------------------------------------------

def jsonl(rows) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def put(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def put_json(path: Path, obj) -> Path:
    return put(path, json.dumps(obj))


ALPACA = {  # instruction -> (reference, {llm: (output, preference)})
    "Say hi": ("Hello!", {"A": ("hi", 1.75), "B": ("Hello there", 1.25)}),
    "Count to 3": ("1 2 3", {"A": ("1, 2, 3", 1.0), "B": ("one two three", 1.5)}),
    "Name a colour": ("Blue.", {"A": ("Red", 1.9), "B": ("Green, a calm colour", 1.1)}),
}
ARENA = {"q1": ("Explain TCP.", {"A": ["B>>A", "A>>B"], "B": ["A>B", "B>A"]}),
         "q2": ("Write a limerick.", {"A": ["A=B", "A=B"], "B": ["B>A", "A>B"]})}
MT_BENCH = {81: ("writing", ["Write a poem.", "Make it shorter."], {"A": [8, 6], "B": [10, 9]}),
            82: ("math", ["What is 3*4?", "And 3*5?"], {"A": [9, 7], "B": [3, 5]})}
QUESTIONS = {str(n): f"What is {n} plus {n}?" for n in range(8)}


def write_benchmarks(test: Path) -> None:
    folder = test / "AlpacaEval"
    put(folder / "instructions.jsonl", jsonl({"instruction": i, "reference": ref} for i, (ref, _) in ALPACA.items()))
    for llm in CANDIDATES:
        put_json(folder / llm / "model_outputs.json",
                 [{"instruction": i, "output": per[llm][0], "generator": llm} for i, (_, per) in ALPACA.items()])
        put_json(folder / llm / ANNOTATIONS,
                 [{"instruction": i, "generator_1": "gpt4_1106_preview", "output_1": ref, "generator_2": llm,
                   "output_2": per[llm][0], "preference": per[llm][1]} for i, (ref, per) in ALPACA.items()])
    folder = test / "ArenaHard"
    put(folder / "question.jsonl", jsonl({"question_id": q, "turns": [{"content": text}]}
                                         for q, (text, _) in ARENA.items()))
    for llm in CANDIDATES:
        put(folder / "model_answer" / f"{llm}.jsonl",
            jsonl({"question_id": q, "choices": [{"turns": [{"content": f"{llm} on {q}"}]}]} for q in ARENA))
        put(folder / "model_judgment" / f"{llm}.jsonl",
            jsonl({"question_id": q, "games": [{"score": v[llm][0]}, {"score": v[llm][1]}]}
                  for q, (_, v) in ARENA.items()))
    folder = test / "MT-Bench"
    put(folder / "question.jsonl", jsonl({"question_id": q, "category": c, "turns": t}
                                         for q, (c, t, _) in MT_BENCH.items()))
    for llm in CANDIDATES:
        rows = []
        for q, (_, turns, scores) in MT_BENCH.items():
            answer = f"{llm} answers {q}"
            rows.append({"question_id": q, "turn": 1, "score": scores[llm][0],
                         "user_prompt": f"[Question]\n{turns[0]}\n\n[The Start of Assistant's Answer]\n{answer}\n"
                                        f"[The End of Assistant's Answer]"})
            rows.append({"question_id": q, "turn": 2, "score": scores[llm][1], "user_prompt": "turn 2"})
        put(folder / "judgments" / JUDGMENTS.format(llm), jsonl(rows))
    for name in ("GSM8k", "MATH"):
        for c, llm in enumerate(CANDIDATES):
            put_json(test / name / f"{llm}.json", {"details": {
                i: {"prompt": [{"prompt": p}], "origin_prediction": f"{llm}: {2 * int(i)}",
                    "correct": (int(i) + c) % 2 == 0}
                for i, p in QUESTIONS.items()}})
    for name in ("HumanEval", "MBPP"):
        for c, llm in enumerate(CANDIDATES):
            put_json(test / name / "predictions" / f"{llm}.json",
                     {i: {"origin_prompt": [{"prompt": f"def f{i}():"}], "prediction": f"    return {i}"}
                      for i in ("0", "1", "2")})
            put_json(test / name / "results" / f"{llm}.json",
                     {"details": {i: {"is_correct": (int(i) + c) % 2 == 0} for i in ("0", "1", "2")}})


def write_train_set(folder: Path) -> None:
    ids = [f"t{n}" for n in range(12)]
    put(folder / "instructions.jsonl",
        jsonl({"prompt_id": i, "prompt": f"sort list number {n}"} for n, i in enumerate(ids)))
    put_json(folder / "eval_ids.json", ids[9:])
    for c, llm in enumerate(CANDIDATES):
        put(folder / "responses" / f"{llm}.jsonl",
            jsonl({"prompt_id": i, "response": f"{llm} sorts {n}", "response_toknes": 50 * (c + 1),
                   "score": float((n + c) % 3) / 2} for n, i in enumerate(ids)))


def write_score_set(folder: Path) -> None:
    """A set for compute_rewards --scorer math_answer: 10 questions with answers, A's responses."""
    put(folder / "instructions.jsonl",
        jsonl({"prompt_id": f"m{n}", "prompt": f"What is {n} + {n}?", "answer": str(2 * n)} for n in range(10)))
    put(folder / "responses" / "A.jsonl",
        jsonl({"prompt_id": f"m{n}", "response": f"So it is \\boxed{{{2 * n + (n % 2)}}}."} for n in range(10)))


GEN_WORDS = ["hello", "world", "write", "a", "function", "that", "adds", "two", "numbers", "please"]


def write_tiny_causal_lm(folder: Path) -> None:
    """A 2-layer Llama with random weights and a word-level tokenizer that has a chat template."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "<eos>", "<unk>", "<user>", "<assistant>", *GEN_WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>",
                                        unk_token="<unk>", additional_special_tokens=["<user>", "<assistant>"])
    tokenizer.chat_template = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} <eos> {% endfor %}"
                               "{% if add_generation_prompt %}<assistant> {% endif %}")
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                                 pad_token_id=0, eos_token_id=1, bos_token_id=None)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def save_tiny_router(src: Path, bert_dir: Path, router_dir: Path) -> None:
    """An untrained ``sc`` router for A and B on a 2-layer BERT (random weights, MiniLM's tokenizer)."""
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from model.backbones import resolve_backbone
    from trainers import save_untrained_router

    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32)
    BertForMaskedLM(config).save_pretrained(bert_dir)
    tokenizer.save_pretrained(bert_dir)
    save_untrained_router(router_dir, "sc", str(bert_dir), CANDIDATES, max_length=18)


def build_workspace(root: Path, src: Path, python: str | None = sys.executable) -> Path:
    """The valid workspace every case starts from (see the module docstring); the tools run with ``python``, or in
    this interpreter when it is None."""
    write_benchmarks(root / "data" / "test")
    write_train_set(root / "data" / "train" / "Synth")
    write_score_set(root / "set")
    put(root / "gen" / "instructions.jsonl",
        jsonl({"prompt_id": f"g{n}", "prompt": f"please write a function that adds {n}"} for n in range(3)))
    write_tiny_causal_lm(root / "tiny-lm")
    put(root / "candidates.yaml", "candidates:\n"
                                  "  - {name: A, input_price_per_million: 1, output_price_per_million: 2}\n"
                                  "  - {name: B, input_price_per_million: 3, output_price_per_million: 12}\n")
    for name, extra in (("oracle", []), ("fixed0", ["--target_index", "0"])):
        args = ["--router_type", name.rstrip("0"), *extra, "--data_dir", str(root / "data"), "--candidate_llms", "A,B",
                "--test_datasets", "GSM8k", "--run_name", name, "--output_dir", str(root / "runs" / name)]
        outcome = run_tool("eval_baseline", args, root, src, python)
        if outcome.exit_code != 0:
            raise RuntimeError(f"building the workspace: eval_baseline.py failed: {outcome.message}")
    if python is None:
        save_tiny_router(src, root / "bert", root / "router")
    else:
        snippet = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); import bad_inputs; "
                   f"bad_inputs.save_tiny_router(*map(bad_inputs.Path, sys.argv[1:]))")
        subprocess.run([python, "-c", snippet, str(src), str(root / "bert"), str(root / "router")], check=True,
                       capture_output=True, cwd=root, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return root


# --------------------------------------------------------------------------------------------------
# Ways to break a file
# --------------------------------------------------------------------------------------------------

def truncate_gz(path: Path) -> None:
    """Replace ``path`` by ``path.gz`` cut to half its compressed size (a download or copy that stopped)."""
    data = gzip.compress(path.read_bytes() * 20)  # long enough that half the stream holds whole lines
    path.with_name(path.name + ".gz").write_bytes(data[: len(data) // 2])
    path.unlink()


def bad_byte(path: Path, line: int) -> None:
    """Put a byte that is not UTF-8 (0xff) into line ``line`` (1-based)."""
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = lines[line - 1][:12] + b"\xff" + lines[line - 1][12:]
    path.write_bytes(b"\n".join(lines))


def set_line(path: Path, line: int, text: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def edit_rows(path: Path, edit: Callable[[list[dict]], list[dict]]) -> None:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    path.write_text(jsonl(edit(rows)), encoding="utf-8")


def edit_json(path: Path, mutate: Callable) -> None:
    """Change the JSON document in ``path`` in place (``mutate``'s return value is ignored)."""
    obj = json.loads(path.read_text(encoding="utf-8"))
    mutate(obj)
    path.write_text(json.dumps(obj), encoding="utf-8")


def replace_json(path: Path, make: Callable) -> None:
    """Replace the JSON document in ``path`` by ``make(document)``."""
    path.write_text(json.dumps(make(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")


def empty(path: Path) -> None:
    path.write_text("", encoding="utf-8")


def row_update(index: int, **fields) -> Callable[[list[dict]], list[dict]]:
    def edit(rows):
        rows[index].update(fields)
        return rows
    return edit


# --------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------

@dataclass
class Case:
    """One bad input: ``breaks`` changes the workspace, ``args`` gives the tool's arguments; the message must name
    ``file`` (a fragment of the path), ``line`` ("line N"), ``field`` (a field or flag name) and, with ``fix``, a
    fix."""

    name: str
    tool: str
    args: Callable[[Path], list[str]]
    breaks: Callable[[Path], None] | None = None
    file: str | None = None
    line: int | None = None
    field: str | None = None
    fix: bool = True


def rewards(*extra: str, set_dir: str = "set", llms: str = "A", scorer: str = "math_answer"):
    return lambda ws: ["--scorer", scorer, "--data_dir", str(ws / set_dir), "--llms", llms, *extra]


def generate(*extra: str, data: str = "gen/instructions.jsonl"):
    return lambda ws: ["--data_path", str(ws / data), "--model_path", str(ws / "tiny-lm"), "--max_new_tokens", "2",
                       "--batch_size", "2", *[e.format(ws=ws) for e in extra]]


def evaluate(*extra: str, router: str = "oracle", tests: str = "GSM8k"):
    def args(ws):
        given = dict(zip(extra[::2], extra[1::2]))
        base = {"--router_type": router, "--data_dir": str(ws / "data"), "--candidate_llms": "A,B",
                "--test_datasets": tests, "--output_dir": str(ws / "out")}
        base.update({key: value.format(ws=ws) for key, value in given.items()})
        return [item for pair in base.items() for item in pair]
    return args


def benchmark(name: str, candidates: str = "A,B"):
    return lambda ws: ["benchmark", name, str(ws / "data"), candidates]


def train_set(split: str = "all", candidates: str = "A,B"):
    return lambda ws: ["train_set", str(ws / "data" / "train" / "Synth"), candidates, split]


def report(*extra: str, runs=("runs/oracle", "runs/fixed0")):
    return lambda ws: [*(str(ws / run) for run in runs), "--out", str(ws / "report"),
                       "--config", str(ws / "candidates.yaml"), *[e.format(ws=ws) for e in extra]]


def calibrate(*extra: str, target=("--budget", "5")):
    def args(ws):
        given = dict(zip(extra[::2], extra[1::2]))
        base = {"--router": str(ws / "router"), "--config": str(ws / "candidates.yaml"), "--data_dir": str(ws / "data"),
                "--validation_sets": "Synth", **dict([target] if target else [])}
        base.update({key: value.format(ws=ws) for key, value in given.items()})
        return [item for pair in base.items() if pair[1] is not None for item in pair]
    return args


SET = "set/instructions.jsonl"
RESPONSES = "set/responses/A.jsonl"
GEN = "gen/instructions.jsonl"
SYNTH = "data/train/Synth"
GSM = "data/test/GSM8k/A.json"
MT_A = f"data/test/MT-Bench/judgments/{JUDGMENTS.format('A')}"


def at(relative: str, action: Callable, *args) -> Callable[[Path], None]:
    return lambda ws: action(ws / relative, *args)


def several(*actions: Callable[[Path], None]) -> Callable[[Path], None]:
    def run(ws):
        for action in actions:
            action(ws)
    return run


CASES: list[Case] = [
    # ---------------- compute_rewards.py
    Case("instructions.jsonl.gz truncated", "compute_rewards", rewards(), at(SET, truncate_gz),
         file="instructions.jsonl.gz"),
    Case("responses: byte that is not UTF-8", "compute_rewards", rewards(), at(RESPONSES, bad_byte, 3),
         file="A.jsonl", line=3),
    Case("responses: malformed JSON line", "compute_rewards", rewards(),
         at(RESPONSES, set_line, 4, '{"prompt_id": "m3",'),
         file="A.jsonl", line=4),
    Case("responses: line is a JSON list", "compute_rewards", rewards(), at(RESPONSES, set_line, 2, '["m1", "x"]'),
         file="A.jsonl", line=2),
    Case("responses: duplicate prompt_id", "compute_rewards", rewards(),
         at(RESPONSES, edit_rows, lambda rows: rows + [rows[4]]), file="A.jsonl", line=11, field="prompt_id"),
    Case("responses: prompt_ids missing", "compute_rewards", rewards(),
         at(RESPONSES, edit_rows, lambda rows: rows[:7]), file="A.jsonl", field="prompt_id"),
    Case("responses: empty file", "compute_rewards", rewards(), at(RESPONSES, empty), file="A.jsonl"),
    Case("instructions: empty file", "compute_rewards", rewards(), at(SET, empty), file="instructions.jsonl"),
    Case("responses: unknown prompt_id", "compute_rewards", rewards(),
         at(RESPONSES, edit_rows, row_update(5, prompt_id="zz")),
         file="A.jsonl", line=6, field="prompt_id"),
    Case("responses: response not a string", "compute_rewards", rewards(),
         at(RESPONSES, edit_rows, row_update(2, response=7)),
         file="A.jsonl", line=3, field="response"),
    Case("responses file missing", "compute_rewards", rewards(llms="A,C"), file="C.jsonl"),
    Case("instruction without an answer (math_answer)", "compute_rewards", rewards(),
         at(SET, edit_rows, lambda rows: [rows[0], {k: v for k, v in rows[1].items() if k != "answer"}, *rows[2:]]),
         file="instructions.jsonl", line=2, field="answer"),
    Case("instructions: duplicate prompt_id", "compute_rewards", rewards(),
         at(SET, edit_rows, lambda rows: rows + [rows[0]]), file="instructions.jsonl", line=11, field="prompt_id"),
    Case("--scorer unknown", "compute_rewards", rewards(scorer="math"), field="scorer"),
    Case("--llms empty", "compute_rewards", rewards(llms=","), field="llms"),
    Case("--scorer reward_model without --model_path", "compute_rewards", rewards(scorer="reward_model"),
         field="model_path"),
    Case("--data_dir missing", "compute_rewards", rewards(set_dir="nowhere"), file="nowhere"),
    Case("--score_dir is a file", "compute_rewards", rewards("--score_dir", "scored"),
         lambda ws: put(ws / "set" / "scored", "x"), file="scored"),

    # ---------------- generate_responses.py
    Case("instructions: empty file", "generate_responses", generate(), at(GEN, empty), file="instructions.jsonl"),
    Case("instructions.jsonl.gz truncated", "generate_responses", generate(data=GEN + ".gz"), at(GEN, truncate_gz),
         file="instructions.jsonl.gz"),
    Case("instructions: byte that is not UTF-8", "generate_responses", generate(), at(GEN, bad_byte, 2),
         file="instructions.jsonl", line=2),
    Case("instructions: prompt missing", "generate_responses", generate(),
         at(GEN, edit_rows, row_update(1, prompt=None)),
         file="instructions.jsonl", line=2, field="prompt"),
    Case("instructions: duplicate prompt_id", "generate_responses", generate(),
         at(GEN, edit_rows, row_update(2, prompt_id="g0")), file="instructions.jsonl", line=3, field="prompt_id"),
    Case("--data_path missing", "generate_responses", generate(data="gen/nothing.jsonl"), file="nothing.jsonl"),
    Case("--num_prompts without --make_set", "generate_responses", generate("--num_prompts", "2"), field="num_prompts"),
    Case("--num_prompts 0 with --make_set", "generate_responses",
         generate("--make_set", "{ws}/new", "--num_prompts", "0"),
         field="num_prompts"),
    Case("--num_prompts above the prompts", "generate_responses",
         generate("--make_set", "{ws}/new", "--num_prompts", "9"), field="num_prompts"),
    Case("--eval_fraction 1.5", "generate_responses", generate("--make_set", "{ws}/new", "--eval_fraction", "1.5"),
         field="eval_fraction"),
    Case("--engine unknown", "generate_responses", generate("--engine", "vllm2"), field="engine"),
    Case("--batch_size 0", "generate_responses", generate("--batch_size", "0"), field="batch_size"),
    Case("--temperature -1", "generate_responses", generate("--temperature", "-1"), field="temperature"),
    Case("--top_p 1.5", "generate_responses", generate("--top_p", "1.5"), field="top_p"),
    Case("--max_new_tokens 0", "generate_responses", generate("--max_new_tokens", "0"), field="max_new_tokens"),
    Case("--model_path missing", "generate_responses", generate("--model_path", "{ws}/no-model"), file="no-model"),
    Case("--output_path is a folder", "generate_responses", generate("--output_path", "{ws}/gen"), file="gen"),
    Case("output holds another tool's lines", "generate_responses", generate("--output_path", "{ws}/gen/out.jsonl"),
         lambda ws: put(ws / "gen" / "out.jsonl", '{"id": 1}\n'), file="out.jsonl", line=1, field="prompt_id"),
    Case("--make_set folder holds other prompts", "generate_responses",
         generate("--make_set", "{ws}/set", "--num_prompts", "2"), file="instructions.jsonl"),

    # ---------------- eval_baseline.py
    Case("--router_type unknown", "eval_baseline", evaluate(router="knnn"), field="router_type"),
    Case("router argument misspelt", "eval_baseline", evaluate("--n_neighbour", "5", router="knn"),
         field="n_neighbour"),
    Case("--test_datasets unknown name", "eval_baseline", evaluate(tests="GSM8K"), field="test_datasets"),
    Case("--test_datasets empty", "eval_baseline", evaluate(tests=","), field="test_datasets"),
    Case("--test_datasets space-separated", "eval_baseline", evaluate(tests="GSM8k MATH"), field="test_datasets"),
    Case("--candidate_llms unknown name", "eval_baseline", evaluate("--candidate_llms", "A,C"), field="C"),
    Case("--candidate_llms repeated", "eval_baseline", evaluate("--candidate_llms", "A,A"), field="candidate_llms"),
    Case("--cross_fit_folds 1", "eval_baseline", evaluate("--cross_fit_folds", "1"), field="cross_fit_folds"),
    Case("--cross_fit_folds not a number", "eval_baseline", evaluate("--cross_fit_folds", "two"),
         field="cross_fit_folds"),
    Case("--cross_fit_folds 2.5", "eval_baseline", evaluate("--cross_fit_folds", "2.5"), field="cross_fit_folds"),
    Case("--seed not a number", "eval_baseline", evaluate("--seed", "x", router="random"), field="seed"),
    Case("--train_split unknown", "eval_baseline", evaluate("--train_datasets", "Synth", "--train_split", "dev"),
         field="train_split"),
    Case("--train_datasets folder missing", "eval_baseline", evaluate("--train_datasets", "Synthh"),
         file="Synthh"),
    Case("--data_dir missing", "eval_baseline", evaluate("--data_dir", "{ws}/nodata"), file="nodata"),
    Case("--output_dir is a file", "eval_baseline", evaluate("--output_dir", "{ws}/candidates.yaml"),
         file="candidates.yaml", field="output_dir"),
    Case("--output_dir read-only", "eval_baseline", evaluate("--output_dir", READ_ONLY_DIR),
         file=READ_ONLY_DIR, field="output_dir"),
    Case("benchmark file .gz truncated", "eval_baseline", evaluate(), at(GSM, truncate_gz), file="A.json.gz"),
    Case("benchmark file: byte that is not UTF-8", "eval_baseline", evaluate(tests="MT-Bench"), at(MT_A, bad_byte, 2),
         file=JUDGMENTS.format("A"), line=2),
    Case("training set: instructions.jsonl empty", "eval_baseline", evaluate("--train_datasets", "Synth"),
         at(f"{SYNTH}/instructions.jsonl", empty), file="instructions.jsonl"),
    Case("training split: every id held out", "eval_baseline",
         evaluate("--train_datasets", "Synth", "--train_split", "train"),
         lambda ws: put_json(ws / SYNTH / "eval_ids.json", [f"t{n}" for n in range(12)]), file="eval_ids.json"),

    # ---------------- data readers
    Case("AlpacaEval annotations .gz truncated", "data", benchmark("AlpacaEval"),
         at(f"data/test/AlpacaEval/A/{ANNOTATIONS}", truncate_gz), file="annotations.json.gz"),
    Case("AlpacaEval preference 2.5", "data", benchmark("AlpacaEval"),
         at(f"data/test/AlpacaEval/B/{ANNOTATIONS}", edit_json, lambda rows: rows[1].update(preference=2.5)),
         file="annotations.json", field="preference"),
    Case("AlpacaEval preference a string", "data", benchmark("AlpacaEval"),
         at(f"data/test/AlpacaEval/A/{ANNOTATIONS}", edit_json, lambda rows: rows[0].update(preference="win")),
         file="annotations.json", field="preference"),
    Case("AlpacaEval annotations not a list", "data", benchmark("AlpacaEval"),
         at(f"data/test/AlpacaEval/A/{ANNOTATIONS}", replace_json, lambda rows: {"rows": rows}),
         file="annotations.json"),
    Case("AlpacaEval output missing an instruction", "data", benchmark("AlpacaEval"),
         at("data/test/AlpacaEval/B/model_outputs.json", replace_json, lambda rows: rows[:2]),
         file="model_outputs.json", field="instruction"),
    Case("AlpacaEval instructions: byte that is not UTF-8", "data", benchmark("AlpacaEval"),
         at("data/test/AlpacaEval/instructions.jsonl", bad_byte, 2), file="instructions.jsonl", line=2),
    Case("ArenaHard unknown verdict", "data", benchmark("ArenaHard"),
         at("data/test/ArenaHard/model_judgment/A.jsonl", edit_rows,
            lambda rows: [rows[0], {**rows[1], "games": [{"score": "A>>>B"}, {"score": "A=B"}]}]),
         file="model_judgment/A.jsonl", line=2, field="games[0].score"),
    Case("ArenaHard one game only", "data", benchmark("ArenaHard"),
         at("data/test/ArenaHard/model_judgment/B.jsonl", edit_rows,
            lambda rows: [{**rows[0], "games": rows[0]["games"][:1]}, rows[1]]),
         file="model_judgment/B.jsonl", line=1, field="games"),
    Case("ArenaHard question_id repeated", "data", benchmark("ArenaHard"),
         at("data/test/ArenaHard/question.jsonl", edit_rows, lambda rows: rows + [rows[0]]),
         file="question.jsonl", line=3, field="question_id"),
    Case("ArenaHard question.jsonl .gz truncated", "data", benchmark("ArenaHard"),
         at("data/test/ArenaHard/question.jsonl", truncate_gz), file="question.jsonl.gz"),
    Case("MT-Bench judgment of a turn missing", "data", benchmark("MT-Bench"),
         at(MT_A, edit_rows, lambda rows: rows[:3]), file=JUDGMENTS.format("A"), field="turn"),
    Case("MT-Bench score not a number", "data", benchmark("MT-Bench"), at(MT_A, edit_rows, row_update(2, score="ten")),
         file=JUDGMENTS.format("A"), line=3, field="score"),
    Case("MT-Bench answer not quoted", "data", benchmark("MT-Bench"),
         at(MT_A, edit_rows, row_update(0, user_prompt="x")),
         file=JUDGMENTS.format("A"), line=1, field="user_prompt"),
    Case("MT-Bench judgments: byte that is not UTF-8", "data", benchmark("MT-Bench"), at(MT_A, bad_byte, 3),
         file=JUDGMENTS.format("A"), line=3),
    Case("GSM8k details missing", "data", benchmark("GSM8k"), at(GSM, replace_json, lambda obj: {"accuracy": 50}),
         file="A.json", field="details"),
    Case("GSM8k correct not a boolean", "data", benchmark("GSM8k"),
         at(GSM, edit_json, lambda obj: obj["details"]["3"].update(correct="yes")), file="A.json", field="correct"),
    Case("GSM8k file not JSON", "data", benchmark("GSM8k"), lambda ws: put(ws / GSM, '{"details": {"0": '),
         file="A.json", line=1),
    Case("HumanEval result missing an id", "data", benchmark("HumanEval"),
         at("data/test/HumanEval/results/B.json", edit_json, lambda obj: obj["details"].pop("2")),
         file="results/B.json", field="2"),
    Case("MBPP prediction not a string", "data", benchmark("MBPP"),
         at("data/test/MBPP/predictions/A.json", edit_json, lambda obj: obj["1"].update(prediction=None)),
         file="predictions/A.json", field="prediction"),
    Case("training set: duplicate prompt_id", "data", train_set(),
         at(f"{SYNTH}/instructions.jsonl", edit_rows, row_update(3, prompt_id="t0")),
         file="instructions.jsonl", line=4, field="prompt_id"),
    Case("training set: score NaN", "data", train_set(), at(f"{SYNTH}/responses/B.jsonl", set_line, 5,
                                                           '{"prompt_id": "t4", "response": "x", "score": NaN}'),
         file="B.jsonl", line=5, field="score"),
    Case("training set: score missing", "data", train_set(),
         at(f"{SYNTH}/responses/A.jsonl", edit_rows, row_update(6, score=None)), file="A.jsonl", line=7, field="score"),
    Case("training set: eval_ids.json not a list", "data", train_set("train"),
         lambda ws: put_json(ws / SYNTH / "eval_ids.json", {"ids": ["t1"]}), file="eval_ids.json"),
    Case("training set: eval_ids.json unknown id", "data", train_set("eval"),
         lambda ws: put_json(ws / SYNTH / "eval_ids.json", ["t1", "t99"]), file="eval_ids.json", field="t99"),
    Case("training set: candidate file missing", "data", train_set(candidates="A,C"), file="C.jsonl"),
    Case("training set: instructions.jsonl empty", "data", train_set("train"), at(f"{SYNTH}/instructions.jsonl", empty),
         file="instructions.jsonl"),
    Case("training set: responses .gz truncated", "data", train_set(), at(f"{SYNTH}/responses/B.jsonl", truncate_gz),
         file="B.jsonl.gz"),
    Case("training set: byte that is not UTF-8", "data", train_set(), at(f"{SYNTH}/instructions.jsonl", bad_byte, 7),
         file="instructions.jsonl", line=7),

    # ---------------- report.py
    Case("run folder without metrics.json", "report", report(runs=("runs/oracle", "runs")), file="metrics.json"),
    Case("metrics.json malformed", "report", report(),
         lambda ws: put(ws / "runs/oracle/metrics.json", "{\n  \"GSM8k\": {"),
         file="metrics.json", line=2),
    Case("metrics.json: byte that is not UTF-8", "report", report(), at("runs/fixed0/metrics.json", bad_byte, 1),
         file="metrics.json", line=1),
    Case("run_args.json without candidate_llms", "report", report(),
         at("runs/oracle/run_args.json", edit_json, lambda obj: obj.pop("candidate_llms")),
         file="run_args.json", field="candidate_llms"),
    Case("predictions miss a prompt_id", "report", report(),
         at("runs/oracle/test_predictions/GSM8k.json", replace_json, lambda rows: rows[:-1]), file="GSM8k.json",
         field="prompt_id"),
    Case("prediction without router_scores", "report", report(),
         at("runs/fixed0/test_predictions/GSM8k.json", edit_json, lambda rows: rows[2].pop("router_scores")),
         file="GSM8k.json", field="router_scores"),
    Case("--config missing", "report", report("--config", "{ws}/prices.yaml"), file="prices.yaml"),
    Case("--config: byte that is not UTF-8", "report", report(), at("candidates.yaml", bad_byte, 2),
         file="candidates.yaml", line=2),
    Case("--config: negative price", "report", report(),
         lambda ws: put(ws / "candidates.yaml",
                        "candidates:\n  - {name: A, input_price_per_million: -1, output_price_per_million: 2}\n"
                        "  - {name: B, input_price_per_million: 3, output_price_per_million: 12}\n"),
         file="candidates.yaml", field="input_price_per_million"),
    Case("runs route other candidates", "report", report(),
         at("runs/fixed0/run_args.json", edit_json, lambda obj: obj.update(candidate_llms=["B", "A"])),
         file="fixed0", field="candidate"),
    Case("--out is a file", "report", report("--out", "{ws}/candidates.yaml"), file="candidates.yaml", field="out"),
    Case("run folder missing", "report", report(runs=("runs/oracle", "runs/nothing")), file="nothing"),

    # ---------------- calibrate.py
    Case("--router folder missing", "calibrate", calibrate("--router", "{ws}/no-router"), file="no-router"),
    Case("--config missing", "calibrate", calibrate("--config", "{ws}/prices.yaml"), file="prices.yaml"),
    Case("--config malformed YAML", "calibrate", calibrate(),
         lambda ws: put(ws / "candidates.yaml", "candidates: [\n  {name: A"),
         file="candidates.yaml", line=2),
    Case("--config: byte that is not UTF-8", "calibrate", calibrate(), at("candidates.yaml", bad_byte, 3),
         file="candidates.yaml", line=3),
    Case("--config lacks a candidate's prices", "calibrate", calibrate(),
         lambda ws: put(ws / "candidates.yaml", "candidates:\n  - {name: A, input_price_per_million: 1, "
                                               "output_price_per_million: 2}\n  - {name: B}\n"),
         file="candidates.yaml", field="price"),
    Case("--budget and --strong_share together", "calibrate", calibrate("--strong_share", "0.5"), field="strong_share"),
    Case("neither --budget nor --strong_share", "calibrate", calibrate(target=None), field="budget"),
    Case("--strong not a candidate", "calibrate",
         calibrate("--strong", "C", "--weak", "A", target=("--strong_share", "0.5")),
         field="strong"),
    Case("--strong_share 1.5", "calibrate", calibrate("--strong", "B", "--weak", "A", target=("--strong_share", "1.5")),
         field="strong_share"),
    Case("--budget below the cheapest routing", "calibrate", calibrate(target=("--budget", "0.0001")), field="budget"),
    Case("--budget nan", "calibrate", calibrate(target=("--budget", "nan")), field="budget"),
    Case("--validation_sets folder missing", "calibrate", calibrate("--validation_sets", "Synthh"), file="Synthh"),
    Case("validation split empty", "calibrate", calibrate(), lambda ws: put_json(ws / SYNTH / "eval_ids.json", []),
         file="eval_ids.json"),
]


# --------------------------------------------------------------------------------------------------
# Running and judging
# --------------------------------------------------------------------------------------------------

DATA_DRIVER = """
import sys
sys.path.insert(0, sys.argv[1])
from data import load_benchmark, load_train_set
kind, *rest = sys.argv[2:]
if kind == "benchmark":
    load_benchmark(rest[0], rest[1], rest[2].split(","))
else:
    load_train_set(rest[0], rest[1].split(","), split=rest[2])
"""


@dataclass
class Outcome:
    exit_code: int | None  # None: timed out
    message: str
    seconds: float


def error_text(stderr: str) -> str:
    """The error a user reads: the exception line(s) after the last traceback frame, else the end of stderr."""
    lines = stderr.rstrip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if starts:
        tail = lines[starts[-1] + 1:]
        frames = [i for i, line in enumerate(tail) if line.startswith('  File "')]
        start = frames[-1] + 1 if frames else 0
        while start < len(tail) and tail[start].startswith("    "):  # the frame's code line and its ^^^ markers
            start += 1
        return "\n".join(tail[start:])
    errors = [i for i, line in enumerate(lines) if re.match(r"(error|ERROR)\b", line)]
    return "\n".join(lines[errors[0]:] if errors else lines[-6:])


def run_tool(tool: str, args: list[str], cwd: Path, src: Path, python: str | None) -> Outcome:
    """Run ``tool`` (a script in ``src``, or "data" for the readers) with ``args`` in ``cwd``: a subprocess of
    ``python``, or inside this interpreter when it is None (``src`` must then be the one on sys.path)."""
    if python is not None:
        command = ([python, "-c", DATA_DRIVER, str(src), *args] if tool == "data"
                   else [python, str(src / f"{tool}.py"), *args])
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TQDM_DISABLE": "1"}
        started = time.perf_counter()
        try:
            done = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S,
                                  cwd=cwd, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Outcome(None, f"no answer in {TIMEOUT_S} s", time.perf_counter() - started)
        return Outcome(done.returncode, error_text(done.stderr), time.perf_counter() - started)

    stderr = io.StringIO()
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    started = time.perf_counter()
    code, message = 0, ""
    try:
        os.chdir(cwd)
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            if tool == "data":
                from data import load_benchmark, load_train_set
                kind, *rest = args
                if kind == "benchmark":
                    load_benchmark(rest[0], rest[1], rest[2].split(","))
                else:
                    load_train_set(rest[0], rest[1].split(","), split=rest[2])
            else:
                sys.argv = [str(src / f"{tool}.py"), *args]
                runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as stop:
        if isinstance(stop.code, str):
            code, message = 1, stop.code
        else:
            code, message = int(stop.code or 0), error_text(stderr.getvalue())
    except Exception as error:  # what would end the process with a traceback
        code, message = 1, "".join(traceback.format_exception_only(error)).strip()
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
    return Outcome(code, message, time.perf_counter() - started)


def judge(case: Case, outcome: Outcome) -> tuple[str, list[str]]:
    """("held" | "weak" | "failed", what the message lacks)."""
    if outcome.exit_code is None or outcome.exit_code == 0:
        return "failed", ["timed out" if outcome.exit_code is None else "exit 0"]
    text = outcome.message
    missing = []
    if case.file and case.file.lower() not in text.lower():
        missing.append("file")
    if case.line is not None and not re.search(rf"\bline {case.line}\b", text):
        missing.append(f"line {case.line}")
    if case.field and case.field.lower() not in text.lower():
        missing.append("field")
    if case.fix and not FIX.search(text):
        missing.append("fix")
    return ("weak" if missing else "held"), missing


def run_case(case: Case, base: Path, scratch: Path, src: Path, python: str | None) -> tuple[str, list[str], Outcome]:
    """Copy the workspace, break it, run the tool (a subprocess with ``python``, or in-process when None), judge."""
    workspace = Path(tempfile.mkdtemp(dir=scratch, prefix="case-"))
    shutil.copytree(base, workspace, dirs_exist_ok=True)
    try:
        if case.breaks is not None:
            case.breaks(workspace)
        outcome = run_tool(case.tool, case.args(workspace), workspace, src, python)
        verdict, missing = judge(case, outcome)
        return verdict, missing, outcome
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def table(rows) -> str:
    lines = ["| # | tool | case | exit | verdict | message lacks | s | message (start) |",
             "|---|---|---|---|---|---|---|---|"]
    for number, (case, verdict, missing, outcome) in enumerate(rows, 1):
        first = " ".join(outcome.message.split())[:110].replace("|", "\\|")
        exit_code = "timeout" if outcome.exit_code is None else outcome.exit_code
        lines.append(f"| {number} | {case.tool} | {case.name} | {exit_code} | {verdict} | {', '.join(missing)} | "
                     f"{outcome.seconds:.1f} | {first} |")
    counts = {v: sum(1 for _, verdict, _, _ in rows if verdict == v) for v in ("held", "weak", "failed")}
    lines.append("")
    lines.append(f"held {counts['held']}, weak {counts['weak']}, failed {counts['failed']} of {len(rows)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(REPO_ROOT), help="Checkout whose src/ tools to run (default: this one).")
    parser.add_argument("--only", help="Run the cases whose tool or name contains this text.")
    parser.add_argument("--jobs", type=int, default=2, help="Cases run at once (subprocesses).")
    parser.add_argument("--inprocess", action="store_true", help="Run the tools in this interpreter.")
    parser.add_argument("--python", default=sys.executable, help="Interpreter for the tools.")
    args = parser.parse_args(argv)
    src = Path(args.repo).resolve() / "src"
    if not (src / "compute_rewards.py").exists():
        raise SystemExit(f"error: {src} has no compute_rewards.py; pass --repo a checkout of this project.")
    cases = [c for c in CASES if not args.only or args.only in c.tool or args.only in c.name]
    if args.inprocess:
        sys.path.insert(0, str(src))
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as scratch:
        started = time.perf_counter()
        base = build_workspace(Path(scratch) / "workspace", src, None if args.inprocess else args.python)
        print(f"workspace built in {time.perf_counter() - started:.0f} s; {len(cases)} cases", file=sys.stderr)
        if args.inprocess:
            results = [run_case(case, base, Path(scratch), src, None) for case in cases]
        else:
            with ThreadPoolExecutor(args.jobs) as pool:
                results = list(pool.map(lambda case: run_case(case, base, Path(scratch), src, args.python), cases))
    print(table([(case, *result) for case, result in zip(cases, results)]), end="")


if __name__ == "__main__":
    main()
