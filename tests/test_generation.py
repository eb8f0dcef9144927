"""Response generation: the resumable writer, the Hugging Face engine on a tiny random model, new sets,
and the generate_responses / compute_rewards entry points."""
import importlib.util
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import compute_rewards
import generate_responses
from data import load_train_set
from rewards.sandbox import isolation
from utils.generation import (Generation, HuggingFaceEngine, ResumableJsonl, SamplingParams, VllmEngine,
                              generate_responses as run_generation, make_training_set, read_instructions)
from utils.io import DataError, read_json, read_jsonl, write_jsonl

SRC = Path(__file__).resolve().parents[1] / "src"
WORDS = ["hello", "world", "write", "a", "function", "that", "adds", "two", "numbers", "the", "answer", "is",
         "def", "return", "x", "y", "+", "=", "1", "2", "3", "4", "5", "please", "sum"]
CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} <eos> {% endfor %}"
                 "{% if add_generation_prompt %}<assistant> {% endif %}")


def tiny_tokenizer():
    """A word-level tokenizer with a chat template: <pad>=0, <eos>=1, <unk>=2, roles, then WORDS."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<pad>", "<eos>", "<unk>", "<user>", "<assistant>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>",
                                        unk_token="<unk>", additional_special_tokens=["<user>", "<assistant>"])
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_config(**extra):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(WORDS) + 5, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                       pad_token_id=0, eos_token_id=1, bos_token_id=None, **extra)


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory):
    import torch
    from transformers import LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-causal-lm")
    torch.manual_seed(0)
    LlamaForCausalLM(tiny_config()).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return str(folder)


def instructions(n):
    return [{"prompt_id": f"q{i}", "prompt": " ".join(WORDS[i:i + 3 + i % 4])} for i in range(n)]


class CountingEngine:
    """Deterministic fake engine: response = the prompt reversed, one token per word."""

    def __init__(self, delay_s=0.0):
        self.delay_s, self.calls = delay_s, []

    def generate(self, prompts, sampling):
        self.calls.append(list(prompts))
        time.sleep(self.delay_s)
        return [Generation(" ".join(reversed(p.split())), len(p.split())) for p in prompts]


# --- the resumable writer -----------------------------------------------------------------------------

def test_writer_appends_whole_lines_and_remembers_the_ids(tmp_path):
    path = tmp_path / "out" / "a.jsonl"
    with ResumableJsonl(path) as out:
        out.append([{"prompt_id": "a", "response": "x"}, {"prompt_id": "b", "response": "y\nz"}])
    with ResumableJsonl(path) as out:
        assert out.done_ids == {"a", "b"}
        out.append([{"prompt_id": "c", "response": "w"}])
    assert [row["prompt_id"] for row in read_jsonl(path)] == ["a", "b", "c"]
    assert path.read_text().count("\n") == 3


def test_writer_cuts_a_partial_last_line(tmp_path, capsys):
    path = tmp_path / "a.jsonl"
    path.write_text('{"prompt_id": "a", "response": "x"}\n{"prompt_id": "b", "resp')
    with ResumableJsonl(path) as out:
        assert out.done_ids == {"a"}
    assert path.read_text() == '{"prompt_id": "a", "response": "x"}\n'
    assert "removed a partial last line (24 bytes)" in capsys.readouterr().err


def test_writer_cuts_a_file_that_is_all_partial_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"prompt_id": "a", "res')
    with ResumableJsonl(path) as out:
        assert out.done_ids == set()
    assert path.read_text() == ""


def test_writer_refuses_a_second_writer_and_foreign_files(tmp_path):
    path = tmp_path / "a.jsonl"
    with ResumableJsonl(path):
        with pytest.raises(RuntimeError, match="another process"):
            ResumableJsonl(path)
    other = tmp_path / "b.jsonl"
    other.write_text('{"id": 1}\n')
    with pytest.raises(DataError, match="line 1: no 'prompt_id'"):
        ResumableJsonl(other)


def test_generation_killed_mid_run_resumes_without_duplicate_or_torn_records(tmp_path):
    rows = instructions(20)
    data = tmp_path / "instructions.jsonl"
    write_jsonl(data, rows)
    output = tmp_path / "responses" / "fake.jsonl"
    child = ("import sys, time\nsys.path.insert(0, sys.argv[1])\n"
             "from utils.generation import Generation, SamplingParams, generate_responses, read_instructions\n"
             "class Slow:\n    def generate(self, prompts, sampling):\n        time.sleep(0.3)\n"
             "        return [Generation(' '.join(reversed(p.split())), len(p.split())) for p in prompts]\n"
             "generate_responses(Slow(), read_instructions(sys.argv[2]), sys.argv[3], SamplingParams(), 2)\n")
    process = subprocess.Popen([sys.executable, "-c", child, str(SRC), str(data), str(output)],
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not output.exists() or output.read_text().count("\n") < 4):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = output.read_text().count("\n")
    assert 4 <= done_before < 20
    with open(output, "a") as f:  # what a kill in the middle of a write leaves
        f.write('{"prompt_id": "q19", "response": "torn')
    engine = CountingEngine()
    stats = run_generation(engine, rows, output, SamplingParams(), batch_size=4)
    assert stats["skipped"] == done_before and stats["generated"] == 20 - done_before
    records = read_jsonl(output)
    assert sorted(r["prompt_id"] for r in records) == sorted(r["prompt_id"] for r in rows)
    expected = {r["prompt_id"]: " ".join(reversed(r["prompt"].split())) for r in rows}
    assert all(r["response"] == expected[r["prompt_id"]] for r in records)
    assert sum(len(call) for call in engine.calls) == 20 - done_before


def test_generate_responses_batches_the_pending_prompts_longest_first(tmp_path):
    rows = instructions(5)
    output = tmp_path / "out.jsonl"
    write_jsonl(output, [{"prompt_id": "q0", "response": "old", "response_tokens": 1}])
    engine = CountingEngine()
    stats = run_generation(engine, rows, output, SamplingParams(), batch_size=2)
    lengths = [[len(p) for p in call] for call in engine.calls]
    assert [len(call) for call in engine.calls] == [2, 2]
    assert sorted(sum(lengths, []), reverse=True) == sum(lengths, [])
    assert (stats["generated"], stats["skipped"]) == (4, 1)
    assert stats["tokens"] == sum(len(r["prompt"].split()) for r in rows[1:])
    assert read_jsonl(output)[0]["response"] == "old"


# --- the Hugging Face engine ------------------------------------------------------------------------------

def test_batched_greedy_generation_equals_one_prompt_at_a_time(tiny_causal_lm):
    engine = HuggingFaceEngine(tiny_causal_lm)
    prompts = ["hello world", "write a function that adds two numbers please", "sum x y"]
    greedy = SamplingParams(temperature=0, max_new_tokens=6)
    batched = engine.generate(prompts, greedy)
    alone = [engine.generate([p], greedy)[0] for p in prompts]
    assert batched == alone
    assert all(0 <= g.num_tokens <= 6 for g in batched)
    assert all(set(g.text.split()) <= set(WORDS) for g in batched)


def test_sampling_is_reproducible_with_a_seed(tiny_causal_lm, tmp_path):
    engine = HuggingFaceEngine(tiny_causal_lm)
    rows = instructions(3)
    sampling = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=5, seed=3)
    run_generation(engine, rows, tmp_path / "a.jsonl", sampling, batch_size=2)
    run_generation(engine, rows, tmp_path / "b.jsonl", sampling, batch_size=2)
    assert read_jsonl(tmp_path / "a.jsonl") == read_jsonl(tmp_path / "b.jsonl")


def test_a_different_seed_draws_a_different_sample(tiny_causal_lm, tmp_path):
    """The seed is what fixes the sample: seeds 3 and 4 give different responses (3 prompts x 8 tokens drawn at
    temperature 1.5 from a random model: the chance that all 24 draws coincide is negligible), seed 3 again the
    first ones."""
    engine = HuggingFaceEngine(tiny_causal_lm)
    rows = instructions(3)
    outputs = {}
    for name, seed in (("a", 3), ("b", 4), ("c", 3)):
        sampling = SamplingParams(temperature=1.5, top_p=1.0, max_new_tokens=8, seed=seed)
        run_generation(engine, rows, tmp_path / f"{name}.jsonl", sampling, batch_size=3)
        outputs[name] = [row["response"] for row in read_jsonl(tmp_path / f"{name}.jsonl")]
    assert outputs["a"] != outputs["b"] and outputs["a"] == outputs["c"]


def test_a_model_without_chat_template_is_refused(tiny_causal_lm, tmp_path):
    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = None
    tokenizer.save_pretrained(tmp_path)
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((Path(tiny_causal_lm) / name).read_bytes())
    with pytest.raises(ValueError, match="no chat template"):
        HuggingFaceEngine(str(tmp_path))


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_engine_names_the_missing_package():
    with pytest.raises(ModuleNotFoundError, match="`vllm` package.*--engine huggingface"):
        VllmEngine("any")


# --- sets and the entry points ------------------------------------------------------------------------------

def test_make_training_set_samples_prompts_and_holds_some_out(tmp_path):
    source = tmp_path / "source.jsonl"
    write_jsonl(source, [{**row, "tests": ["assert 1"]} for row in instructions(10)])
    rows = make_training_set(source, tmp_path / "set", num_prompts=5, eval_fraction=0.4, seed=1)
    ids = [row["prompt_id"] for row in rows]
    assert len(ids) == 5 and ids == sorted(ids, key=lambda i: int(i[1:]))
    assert read_instructions(tmp_path / "set" / "instructions.jsonl") == rows
    assert rows[0]["tests"] == ["assert 1"]
    held_out = read_json(tmp_path / "set" / "eval_ids.json")
    assert len(held_out) == 2 and set(held_out) <= set(ids)
    assert make_training_set(source, tmp_path / "set", 5, 0.4, seed=1) == rows
    with pytest.raises(DataError, match="already holds other prompts"):
        make_training_set(source, tmp_path / "set", 5, 0.4, seed=2)


def test_read_instructions_refuses_repeated_ids_and_empty_prompts(tmp_path):
    path = tmp_path / "instructions.jsonl"
    write_jsonl(path, [{"prompt_id": "a", "prompt": "x"}, {"prompt_id": "a", "prompt": "y"}])
    with pytest.raises(DataError, match=r"line 2: field 'prompt_id' \('a'\) repeats line 1"):
        read_instructions(path)
    write_jsonl(path, [{"prompt_id": "a", "prompt": " "}])
    with pytest.raises(DataError, match="prompt_id 'a': field 'prompt'"):
        read_instructions(path)


def test_generate_then_score_makes_a_set_the_readers_load(tiny_causal_lm, tmp_path, capsys):
    source = tmp_path / "source.jsonl"
    write_jsonl(source, [{**row, "answer": "3"} for row in instructions(6)])
    set_dir = tmp_path / "new_set"
    generate_responses.main(data_path=str(source), make_set=str(set_dir), num_prompts=4, eval_fraction=0.25,
                            model_path=tiny_causal_lm, max_new_tokens=4, batch_size=3)
    llm = Path(tiny_causal_lm).name
    generated = read_jsonl(set_dir / "responses" / f"{llm}.jsonl")
    assert len(generated) == 4 and all(set(r) == {"prompt_id", "response", "response_tokens"} for r in generated)
    generate_responses.main(data_path=str(set_dir / "instructions.jsonl"), model_path=tiny_causal_lm)
    assert '"generated": 0, "skipped": 4' in capsys.readouterr().out
    compute_rewards.main(scorer="math_answer", data_dir=str(set_dir), llms=llm)
    scored = read_jsonl(set_dir / "responses" / f"{llm}.jsonl")
    assert [r["response"] for r in scored] == [r["response"] for r in generated]
    assert all(r["score"] in (0.0, 1.0) and r["reference"] == "3" for r in scored)
    assert not list((set_dir / "responses").glob(".*partial*"))
    train = load_train_set(set_dir, [llm], split="train")
    held_out = load_train_set(set_dir, [llm], split="eval")
    assert (len(train), len(held_out)) == (3, 1)


def test_scoring_resumes_from_its_progress_file(tmp_path, capsys):
    set_dir = tmp_path / "set"
    write_jsonl(set_dir / "instructions.jsonl", [{"prompt_id": "a", "prompt": "1+1?", "answer": "2"},
                                                  {"prompt_id": "b", "prompt": "2+2?", "answer": "4"}])
    write_jsonl(set_dir / "responses" / "m.jsonl", [{"prompt_id": "a", "response": "\\boxed{2}"},
                                                     {"prompt_id": "b", "response": "It is 5."}])
    # a previous run scored "a" (with a marker value) before it was stopped
    write_jsonl(set_dir / "scores" / ".m.math_answer.partial.jsonl",
                [{"prompt_id": "a", "response": "\\boxed{2}", "score": 0.5}])
    compute_rewards.main(scorer="math_answer", data_dir=str(set_dir), llms="m", score_dir="scores")
    assert [r["score"] for r in read_jsonl(set_dir / "scores" / "m.jsonl")] == [0.5, 0.0]
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "m": {"scored": 2, "mean_score": 0.25, "errors": 0}}


def test_compute_rewards_refuses_responses_to_unknown_queries(tmp_path):
    set_dir = tmp_path / "set"
    write_jsonl(set_dir / "instructions.jsonl", [{"prompt_id": "a", "prompt": "p", "answer": "1"}])
    write_jsonl(set_dir / "responses" / "m.jsonl", [{"prompt_id": "zz", "response": "1"}])
    with pytest.raises(DataError, match="m.jsonl, line 1: field 'prompt_id' \\('zz'\\)"):
        compute_rewards.main(scorer="math_answer", data_dir=str(set_dir), llms="m")


@pytest.mark.parametrize("responses, message", [
    # a repeated id once wrote 11 scored lines for 10 queries
    (lambda rows: rows + [rows[4]], r"m\.jsonl, line 11, prompt_id 'q4': field 'prompt_id' repeats line 5"),
    (lambda rows: rows[:7], r"m\.jsonl: no response for 3 of the 10 prompts of instructions\.jsonl \(field "
                            r"'prompt_id'; e\.g\. \['q7', 'q8', 'q9'\]\)\. Generate the missing ones"),
    (lambda rows: [], r"m\.jsonl: no responses; the file is empty\. Generate them"),
], ids=["duplicate id", "missing ids", "empty"])
def test_compute_rewards_refuses_an_incomplete_responses_file_before_scoring(tmp_path, responses, message):
    set_dir = tmp_path / "set"
    write_jsonl(set_dir / "instructions.jsonl", [{**row, "answer": "1"} for row in instructions(10)])
    rows = [{"prompt_id": f"q{i}", "response": "\\boxed{1}"} for i in range(10)]
    write_jsonl(set_dir / "responses" / "m.jsonl", responses(rows))
    before = (set_dir / "responses" / "m.jsonl").read_bytes()
    with pytest.raises(DataError, match=message):
        compute_rewards.main(scorer="math_answer", data_dir=str(set_dir), llms="m")
    assert (set_dir / "responses" / "m.jsonl").read_bytes() == before  # nothing scored, nothing rewritten
    assert sorted(p.name for p in (set_dir / "responses").iterdir()) == ["m.jsonl"]  # no progress file


def test_compute_rewards_checks_every_candidate_before_scoring_any(tmp_path):
    set_dir = tmp_path / "set"
    write_jsonl(set_dir / "instructions.jsonl", [{"prompt_id": "a", "prompt": "p", "answer": "1"}])
    write_jsonl(set_dir / "responses" / "m1.jsonl", [{"prompt_id": "a", "response": "1"}])
    write_jsonl(set_dir / "responses" / "m2.jsonl", [{"prompt_id": "a", "response": 1}])
    with pytest.raises(DataError, match=r"m2\.jsonl, line 1, prompt_id 'a': field 'response'"):
        compute_rewards.main(scorer="math_answer", data_dir=str(set_dir), llms="m1,m2")
    assert "score" not in read_jsonl(set_dir / "responses" / "m1.jsonl")[0]  # m1 was not scored either


def test_generate_responses_refuses_an_empty_instructions_file_before_loading_a_model(tmp_path):
    (tmp_path / "instructions.jsonl").write_text("")
    with pytest.raises(DataError, match=r"instructions\.jsonl: no instructions; the file is empty"):
        generate_responses.main(data_path=str(tmp_path / "instructions.jsonl"), model_path=str(tmp_path))
    assert not (tmp_path / "responses").exists()


@pytest.mark.skipif(sys.platform != "linux" or not isolation().bwrap_prefix,
                    reason="bubblewrap cannot run here (the unit_tests scorer refuses without it)")
def test_unit_tests_scoring_through_the_entry_point(tmp_path):
    set_dir = tmp_path / "set"
    prompt = "Write add.\n\nYour code should pass the following assertions:\n```python\nassert add(1, 2) == 3\n```"
    write_jsonl(set_dir / "instructions.jsonl", [{"prompt_id": "a", "prompt": prompt},
                                                  {"prompt_id": "b", "prompt": prompt}])
    write_jsonl(set_dir / "responses" / "m.jsonl", [
        {"prompt_id": "a", "response": "```python\ndef add(x, y):\n    return x + y\n```", "response_tokens": 9},
        {"prompt_id": "b", "response": "```python\ndef add(x, y):\n    return x - y\n```", "response_tokens": 9}])
    compute_rewards.main(scorer="unit_tests", data_dir=str(set_dir), llms=["m"], num_workers=1)
    rows = read_jsonl(set_dir / "responses" / "m.jsonl")
    assert [(r["results"], r["passed"], r["score"], r["error"]) for r in rows] == [
        (["passed"], 1, 1.0, None), (["failed: "], 0, 0.0, None)]
    assert rows[0]["prediction"] == "def add(x, y):\n    return x + y\n" and rows[0]["response_tokens"] == 9
