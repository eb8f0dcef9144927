"""Two-process data-parallel training (torchrun, gloo on CPU) agrees with one process, for every stage.

Each stage trains a tiny random backbone for two steps twice: in this process with a batch of 4 queries,
and under ``torchrun --nproc_per_node 2`` with 2 queries per process. The global batches and their order
are the same (the Trainer's seeded sampler, sharded batch by batch across the processes), dropout is 0,
every response fills what --max_length leaves it / its mask_length slots (so the per-process token means of the
auxiliary losses average to the global mean) and the optimizer is plain SGD (no Adam sign flips on
rounding noise), so both runs must reach the same weights at every checkpoint, the same logged losses
and validation rewards, and the same test predictions.

On a machine without GPUs, RouterConfig sets ``use_cpu`` when WORLD_SIZE > 1, which makes the processes one
data-parallel job (gloo); without it accelerate leaves them unsynchronised and each would train alone.
The runs here pass no such flag, so they check that guard too.

The file is also the torchrun worker: ``python -m torch.distributed.run --standalone
--nproc_per_node 2 tests/test_distributed.py RUNS.json`` runs ``train.main`` on each argument list of RUNS.json.
mask_concat runs by default; the other stages are marked slow (``pytest -m slow tests/test_distributed.py``),
as is the same check with DeepSpeed ZeRO-0 and ZeRO-2 on CPU (skipped without the ``deepspeed`` package).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, LlamaConfig, LlamaForCausalLM

import train
from model.backbones import resolve_backbone

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = ["A", "B"]
WORDS = "sort list add numbers parse string count words merge dict read file print tree".split()
STAGES = {  # stage -> (backbone, stage flags)
    "mask_concat": ("bert", ["--mask_length", "3", "--starting_mask_rate", "0.5", "--mask_warmup_ratio", "1.0"]),
    "sc": ("bert", []),
    "causal": ("llama", ["--max_prompt_length", "2"]),  # every prompt cut to 2 tokens, so every response to 4
    "gt_responses": ("llama", ["--loss_type", "MSE", "--max_prompt_length", "2"]),
}


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Tiny data (16 training + 4 validation queries, 8 GSM8k questions, 2 candidates; every response at
    least 6 tokens) and tiny dropout-free backbones (bert, llama)."""
    root = tmp_path_factory.mktemp("distributed")
    synth = root / "data" / "train" / "Synth"
    ids = [f"q{i}" for i in range(20)]
    write_jsonl(synth / "instructions.jsonl",
                [{"prompt_id": i, "prompt": f"{WORDS[n % 14]} {WORDS[(3 * n) % 14]} {n}"} for n, i in enumerate(ids)])
    (synth / "eval_ids.json").write_text(json.dumps(ids[16:]))
    for c, llm in enumerate(CANDIDATES):
        write_jsonl(synth / "responses" / f"{llm}.jsonl",
                    [{"prompt_id": i, "response": " ".join(WORDS[(n + c + j) % 14] for j in range(6)),
                      "score": float((n + c) % 3) / 2} for n, i in enumerate(ids)])
    gsm = root / "data" / "test" / "GSM8k"
    gsm.mkdir(parents=True)
    for c, llm in enumerate(CANDIDATES):
        details = {str(n): {"prompt": [{"prompt": f"how many {WORDS[n]} are {n}"}], "origin_prediction": f"{n + c}",
                            "correct": (n + c) % 2 == 0} for n in range(8)}
        (gsm / f"{llm}.json").write_text(json.dumps({"details": details}))

    tiny = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    torch.manual_seed(0)
    bert_tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))
    smol_tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:smollm2-135m-instruct"))
    BertForMaskedLM(BertConfig(vocab_size=len(bert_tokenizer), max_position_embeddings=64, hidden_dropout_prob=0.0,
                               attention_probs_dropout_prob=0.0, **tiny)).save_pretrained(root / "bert")
    bert_tokenizer.save_pretrained(root / "bert")
    LlamaForCausalLM(LlamaConfig(vocab_size=len(smol_tokenizer), num_key_value_heads=1, max_position_embeddings=256,
                                 tie_word_embeddings=True, **tiny)).save_pretrained(root / "llama")
    smol_tokenizer.save_pretrained(root / "llama")
    return root


def train_argv(root: Path, stage: str, output_dir: Path, per_device_batch: int) -> list[str]:
    backbone, flags = STAGES[stage]
    return [stage, "--backbone_name_or_path", str(root / backbone), "--data_dir", str(root / "data"),
            "--train_datasets", "Synth", "--candidate_llms", *CANDIDATES, "--test_datasets", "GSM8k",
            "--output_dir", str(output_dir), "--max_steps", "2", "--eval_steps", "1", "--save_steps", "1",
            "--per_device_train_batch_size", str(per_device_batch), "--per_device_eval_batch_size", "4",
            "--max_length", "38", "--head_dropout", "0",
            "--optim", "sgd", "--learning_rate", "0.5", "--logging_steps", "1", "--seed", "0",
            "--disable_tqdm", "True", *flags]


def train_both_ways(root: Path, stage: str, label: str, two_process_flags: tuple[str, ...] = (),
                    env: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Train ``stage`` in this process (batch 4) and with two processes (batch 2 each, plus
    ``two_process_flags``, environment additions ``env``); their output folders one/<label>, two/<label>."""
    one, two = root / "one" / label, root / "two" / label
    train.main(train_argv(root, stage, one, 4))
    runs_file = root / f"{label}.json"
    runs_file.write_text(json.dumps([train_argv(root, stage, two, 2) + list(two_process_flags)]))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(Path(__file__).resolve()), str(runs_file)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return one, two


def logged(run_dir: Path) -> list[dict]:
    """The run's training and validation logs without the timing fields."""
    history = json.loads((run_dir / "trainer_state.json").read_text())["log_history"]
    return [{key: value for key, value in entry.items() if "runtime" not in key and "per_second" not in key
             and key != "total_flos"} for entry in history]


@pytest.mark.parametrize("stage", ["mask_concat"] + [pytest.param(stage, marks=pytest.mark.slow)
                                                      for stage in ("sc", "causal", "gt_responses")])
def test_two_processes_agree_with_one(workspace, stage):
    one, two = train_both_ways(workspace, stage, stage)
    run_args = json.loads((two / "run_args.json").read_text())
    assert run_args["per_device_train_batch_size"] == 2 and run_args["stage"] == stage
    assert_same_training(one, two)

    # The output structure of a run: log, state, curves.
    for name in ("train.log", "trainer_state.json", "training_curves.png", "train_metrics.json", "results.md"):
        assert (two / name).is_file(), name


@pytest.mark.slow
@pytest.mark.parametrize("config", ["ds_z0_config.json", "ds_z2_config.json"])
def test_deepspeed_on_cpu_agrees_with_one_process(workspace, config):
    """DeepSpeed ZeRO-0 / ZeRO-2 with two CPU processes (DS_ACCELERATOR=cpu, gloo): same training as one plain
    process. The first run on a machine JIT-compiles DeepSpeed's shared-memory op (minutes)."""
    pytest.importorskip("deepspeed")
    deepspeed_config = str(REPO / "config" / "deepspeed" / config)
    one, two = train_both_ways(workspace, "mask_concat", f"deepspeed_{config.split('_config')[0]}", ("--deepspeed", deepspeed_config),
                               env={"DS_ACCELERATOR": "cpu"})
    assert json.loads((two / "run_args.json").read_text())["deepspeed"] == deepspeed_config
    assert (two / "checkpoint-2" / "global_step2").is_dir()  # a DeepSpeed checkpoint
    assert_same_training(one, two)


def assert_same_training(one: Path, two: Path) -> None:
    """Runs ``one`` and ``two`` reached the same weights, logs and test predictions."""
    # Same weights at both checkpoints, and the second step moved them.
    for step in ("checkpoint-1", "checkpoint-2"):
        weights_one, weights_two = load_file(one / step / "model.safetensors"), load_file(two / step / "model.safetensors")
        assert weights_one.keys() <= weights_two.keys()  # DeepSpeed also writes the tied copies (LM decoder)
        for name, tensor in weights_one.items():
            torch.testing.assert_close(weights_two[name], tensor, rtol=1e-4, atol=1e-5, msg=f"{step} {name}")
    first, second = load_file(one / "checkpoint-1" / "model.safetensors"), load_file(one / "checkpoint-2" / "model.safetensors")
    assert max((first[name] - second[name]).abs().max().item() for name in first) > 1e-3

    # Same losses (routing and auxiliary) and validation rewards at each step.
    history_one, history_two = logged(one), logged(two)
    # DeepSpeed ZeRO-0 logs no grad_norm; every other field is logged by both.
    assert [sorted(set(entry) - {"grad_norm"}) for entry in history_two] == [
        sorted(set(entry) - {"grad_norm"}) for entry in history_one]
    for entry_one, entry_two in zip(history_one, history_two):
        assert entry_two == pytest.approx({key: entry_one[key] for key in entry_two}, rel=1e-4, abs=1e-5)
    losses = [entry for entry in history_one if "loss" in entry]
    assert len(losses) == 2 and all("routing_loss" in entry for entry in losses)
    assert sum("eval_reward" in entry for entry in history_one) == 2

    # Same routing of the test benchmark.
    rows_one = json.loads((one / "test_predictions" / "GSM8k.json").read_text())
    rows_two = json.loads((two / "test_predictions" / "GSM8k.json").read_text())
    assert [row["prompt_id"] for row in rows_two] == [row["prompt_id"] for row in rows_one] == [str(n) for n in range(8)]
    for row_one, row_two in zip(rows_one, rows_two):
        assert row_two["router_scores"] == pytest.approx(row_one["router_scores"], rel=1e-4, abs=1e-5)
    assert (json.loads((two / "metrics.json").read_text())["GSM8k"]["score"]
            == json.loads((one / "metrics.json").read_text())["GSM8k"]["score"])


if __name__ == "__main__":  # the torchrun worker (see the module docstring)
    for argv in json.loads(Path(sys.argv[1]).read_text()):
        train.main(argv)
    train.shutdown_distributed()
