"""End-to-end ``train.py`` runs on a tiny synthetic data folder with tiny random backbones."""
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, LlamaConfig, LlamaForCausalLM

import train
from data.cross_fit import fold_of
from model import RouterModelConfig, load_router_model
from model.backbones import resolve_backbone
from synthetic import CANDIDATES, WORDS, write_synthetic_data

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """train/Synth: 12 training + 4 validation queries; test/GSM8k: 8 questions; 2 candidates."""
    return write_synthetic_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    root = tmp_path_factory.mktemp("backbones")
    tiny = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    torch.manual_seed(0)
    bert_tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))
    smol_tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:smollm2-135m-instruct"))
    BertForMaskedLM(BertConfig(vocab_size=len(bert_tokenizer), max_position_embeddings=64, **tiny)).save_pretrained(
        root / "bert")
    bert_tokenizer.save_pretrained(root / "bert")
    LlamaForCausalLM(LlamaConfig(vocab_size=len(smol_tokenizer), num_key_value_heads=1, max_position_embeddings=256,
                                 tie_word_embeddings=True, **tiny)).save_pretrained(root / "llama")
    smol_tokenizer.save_pretrained(root / "llama")
    return {"bert": str(root / "bert"), "llama": str(root / "llama")}


def run(stage, backbone, data_dir, output_dir, *extra):
    train.main([stage, "--backbone_name_or_path", backbone, "--data_dir", str(data_dir), "--train_datasets", "Synth",
                "--candidate_llms", *CANDIDATES, "--test_datasets", "GSM8k", "--output_dir", str(output_dir),
                "--max_steps", "2", "--eval_steps", "1", "--save_steps", "1", "--per_device_train_batch_size", "4",
                "--per_device_eval_batch_size", "8", "--max_length", "44",
                "--logging_steps", "1", "--seed", "0", "--disable_tqdm", "True", *extra])


def predictions(output_dir):
    return json.loads((Path(output_dir) / "test_predictions" / "GSM8k.json").read_text())


@pytest.mark.parametrize("stage, backbone, extra", [
    ("mask_concat", "bert", ["--mask_length", "3"]),
    ("mask_concat", "bert", ["--mask_length", "3", "--foresight", "actual"]),
    ("sc", "bert", []),
    ("causal", "llama", []),
    ("gt_responses", "llama", ["--loss_type", "KL", "--score_normalization", "softmax"]),
])
def test_stage_trains_routes_and_reports(backbones, data_dir, tmp_path, capsys, stage, backbone, extra):
    out = tmp_path / stage
    run(stage, backbones[backbone], data_dir, out, *extra)

    assert json.loads((out / "config.json").read_text())["stage"] == stage
    rows = predictions(out)
    assert [row["prompt_id"] for row in rows] == [str(n) for n in range(8)]
    for row in rows:
        assert len(row["router_scores"]) == 2 and row["choice"] == max((0, 1), key=lambda c: row["router_scores"][c])
    summary = json.loads((out / "metrics.json").read_text())
    assert set(summary) == {"GSM8k", "mean_gap_closed", "mean_over_random"}
    choices = [row["choice"] for row in rows]
    correct = [[(n + c) % 2 == 0 for c in range(2)] for n in range(8)]
    assert summary["GSM8k"]["score"] == pytest.approx(100 * sum(correct[n][c] for n, c in enumerate(choices)) / 8)
    table = (out / "results.md").read_text()
    assert table.splitlines()[0].startswith("| run | GSM8k |") and f"| {stage} |" in table
    assert table.strip() in capsys.readouterr().out
    log = (out / "train.log").read_text()
    assert '"eval_reward"' in log and '"routing_loss"' in log
    assert {"checkpoint-1", "checkpoint-2"} >= {p.name for p in out.glob("checkpoint-*")}
    train_metrics = json.loads((out / "train_metrics.json").read_text())
    assert train_metrics["best_model_checkpoint"].endswith(("checkpoint-1", "checkpoint-2"))

    # The saved router is self-describing: routing again from the folder alone gives the same scores.
    (out / "test_predictions" / "GSM8k.json").unlink()
    run(stage, backbones[backbone], data_dir, out, "--do_train", "False", *extra)
    assert predictions(out) == rows


def test_mask_concat_logs_the_mask_schedule(backbones, data_dir, tmp_path):
    run("mask_concat", backbones["bert"], data_dir, tmp_path, "--mask_length", "3", "--starting_mask_rate", "0.5",
        "--mask_warmup_ratio", "1.0", "--do_predict", "False")
    logged = [json.loads(line.split(": ", 2)[2]) for line in (tmp_path / "train.log").read_text().splitlines()
              if ": step " in line and '"mask_rate"' in line]
    assert [entry["mask_rate"] for entry in logged] == [0.5, 0.75]  # steps 0 and 1 of 2
    assert all("mlm_loss" in entry and "reward" in entry for entry in logged)


def test_mask_concat_actual_foresight_is_a_ceiling_that_reads_the_responses(backbones, data_dir, tmp_path):
    """--foresight actual: no masking and no MLM loss in training; the saved router says it needs the responses."""
    run("mask_concat", backbones["bert"], data_dir, tmp_path, "--mask_length", "3", "--foresight", "actual",
        "--do_predict", "False")
    logged = [json.loads(line.split(": ", 2)[2]) for line in (tmp_path / "train.log").read_text().splitlines()
              if ": step " in line and '"routing_loss"' in line]
    assert logged and not any("mlm_loss" in entry or "mask_rate" in entry for entry in logged)
    assert json.loads((tmp_path / "config.json").read_text())["foresight"] == "actual"
    assert load_router_model(tmp_path)[0].route_reads_responses
    with pytest.raises(SystemExit, match="--foresight actual needs --mask_length >= 2"):
        train.main(["mask_concat", "--output_dir", str(tmp_path / "bad"), "--foresight", "actual", "--mask_length", "1"])


def test_cross_fit_routes_each_fold_with_its_own_router(backbones, data_dir, tmp_path):
    run("sc", backbones["bert"], data_dir, tmp_path, "--cross_fit_folds", "2")
    prompts = {str(n): f"how many {train_words} are {n}" for n, train_words in enumerate(WORDS[:8])}
    for fold in range(2):
        fold_rows = predictions(tmp_path / f"fold_{fold}")
        assert {row["prompt_id"] for row in fold_rows} == {i for i, p in prompts.items() if fold_of(p, 2) == fold}
        assert json.loads((tmp_path / f"fold_{fold}" / "config.json").read_text())["stage"]
    merged = predictions(tmp_path)
    assert [row["prompt_id"] for row in merged] == [str(n) for n in range(8)]
    fold_scores = {row["prompt_id"]: row for fold in range(2) for row in predictions(tmp_path / f"fold_{fold}")}
    assert merged == [fold_scores[row["prompt_id"]] for row in merged]
    assert json.loads((tmp_path / "metrics.json").read_text())["GSM8k"]["score"] is not None
    for fold in range(2):  # the kept checkpoint is the one with the best macro reward (Synth and GSM8k alike)
        state = json.loads((tmp_path / f"fold_{fold}" / "trainer_state.json").read_text())
        macro = [entry["eval_macro_reward"] for entry in state["log_history"] if "eval_macro_reward" in entry]
        assert len(macro) == 2 and state["best_metric"] == max(macro)


def recording_stage(monkeypatch, stage):
    """Replace ``stage``'s trainer by a subclass that records, per router folder, the prompts it is given to
    train on and to validate on: ``{folder name: (training prompts, validation prompts)}``."""
    config_class, trainer_class = train.STAGES[stage]
    seen = {}

    class Recording(trainer_class):
        def __init__(self, args, train_dataset=None, eval_dataset=None, **kwargs):
            seen[Path(args.output_dir).name] = ([r["prompt"] for r in train_dataset or []],
                                                [r["prompt"] for r in eval_dataset or []])
            super().__init__(args, train_dataset=train_dataset, eval_dataset=eval_dataset, **kwargs)

    monkeypatch.setitem(train.STAGES, stage, (config_class, Recording))
    return seen


BENCHMARK_PROMPTS = [f"how many {WORDS[n]} are {n}" for n in range(8)]  # test/GSM8k of synthetic.py
SYNTH_TRAIN_PROMPTS = [f"{WORDS[n % 14]} {WORDS[(3 * n) % 14]} {n}" for n in range(12)]  # train/Synth, train split
SYNTH_EVAL_PROMPTS = [f"{WORDS[n % 14]} {WORDS[(3 * n) % 14]} {n}" for n in range(12, 16)]


def test_cross_fit_folds_never_train_or_validate_on_their_own_records(backbones, data_dir, tmp_path, monkeypatch):
    """Every prompt a fold's router trains or validates on, recorded at the trainer: none of the fold's own
    benchmark records; all the other folds' records (half of them, per source, moved to validation by
    --cross_fit_eval_fraction 0.5), the whole training split, and the training sets' validation split."""
    seen = recording_stage(monkeypatch, "sc")
    run("sc", backbones["bert"], data_dir, tmp_path, "--cross_fit_folds", "2", "--cross_fit_eval_fraction", "0.5",
        "--do_predict", "False")
    assert sorted(seen) == ["fold_0", "fold_1"]
    for fold in range(2):
        trained, validated = seen[f"fold_{fold}"]
        own = {p for p in BENCHMARK_PROMPTS if fold_of(p, 2) == fold}
        others = [p for p in BENCHMARK_PROMPTS if fold_of(p, 2) != fold]
        assert own and others  # the 8 questions fill both folds
        assert not own & set(trained) and not own & set(validated)
        assert sorted(p for p in trained + validated if p in BENCHMARK_PROMPTS) == sorted(others)
        assert len([p for p in validated if p in BENCHMARK_PROMPTS]) == round(0.5 * len(others))
        assert sorted(p for p in trained if p not in BENCHMARK_PROMPTS) == sorted(SYNTH_TRAIN_PROMPTS)
        assert sorted(p for p in validated if p not in BENCHMARK_PROMPTS) == sorted(SYNTH_EVAL_PROMPTS)
        assert not set(trained) & set(validated)
    # the top folder's eval_results.json: each validation metric averaged over the folds, and each fold's own
    folds = [json.loads((tmp_path / f"fold_{f}" / "eval_results.json").read_text()) for f in range(2)]
    merged = json.loads((tmp_path / "eval_results.json").read_text())
    assert set(folds[0]) == set(folds[1]) and "eval_reward" in folds[0]
    assert merged == pytest.approx({**{name: (folds[0][name] + folds[1][name]) / 2 for name in folds[0]},
                                    **{f"fold_{f}_{name}": value for f in range(2) for name, value in folds[f].items()}})
    assert (tmp_path / "training_curves.png").exists()


def test_cross_fit_folds_run_one_at_a_time_then_merge(backbones, data_dir, tmp_path, monkeypatch):
    """--cross_fit_only_fold trains and routes one fold; a run with --resume_from_checkpoint last-checkpoint then
    keeps the folds' predictions as written (no training) and merges them into the benchmark's metrics."""
    seen = recording_stage(monkeypatch, "sc")
    run("sc", backbones["bert"], data_dir, tmp_path, "--cross_fit_folds", "2", "--cross_fit_only_fold", "1")
    assert list(seen) == ["fold_1"] and not (tmp_path / "fold_0").exists()
    assert not (tmp_path / "test_predictions").exists() and not (tmp_path / "metrics.json").exists()
    run("sc", backbones["bert"], data_dir, tmp_path, "--cross_fit_folds", "2", "--cross_fit_only_fold", "0")
    assert list(seen) == ["fold_1", "fold_0"]
    seen.clear()
    run("sc", backbones["bert"], data_dir, tmp_path, "--cross_fit_folds", "2", "--resume_from_checkpoint",
        "last-checkpoint")
    assert seen == {}  # nothing trained again
    log = (tmp_path / "train.log").read_text()
    assert "fold 0: predictions already written, kept" in log and "fold 1: predictions already written, kept" in log
    by_id = {row["prompt_id"]: row for f in range(2) for row in predictions(tmp_path / f"fold_{f}")}
    assert predictions(tmp_path) == [by_id[str(n)] for n in range(8)]
    correct = [[(n + c) % 2 == 0 for c in range(2)] for n in range(8)]  # synthetic.py: candidate c right on n + c even
    score = 100 * sum(correct[n][by_id[str(n)]["choice"]] for n in range(8)) / 8
    assert json.loads((tmp_path / "metrics.json").read_text())["GSM8k"]["score"] == pytest.approx(score)


def test_cross_fit_refuses_a_resume_path(tmp_path):
    with pytest.raises(SystemExit, match="with --cross_fit_folds use --resume_from_checkpoint last-checkpoint"):
        train.main(["sc", "--output_dir", str(tmp_path), "--cross_fit_folds", "2", "--resume_from_checkpoint",
                    str(tmp_path / "checkpoint-2"), "--test_datasets", "GSM8k"])


def test_cross_fit_max_train_samples_draws_each_fold_from_its_own_pool(backbones, data_dir, tmp_path, monkeypatch):
    """--max_train_samples 9: each fold trains on 9 distinct records of its own pool (training split + the other
    folds' records, never its own), drawn with a seed of its own: the folds keep different training queries."""
    seen = recording_stage(monkeypatch, "sc")
    run("sc", backbones["bert"], data_dir, tmp_path, "--cross_fit_folds", "2", "--max_train_samples", "9",
        "--do_predict", "False")
    kept = []
    for fold in range(2):
        trained, _ = seen[f"fold_{fold}"]
        pool = SYNTH_TRAIN_PROMPTS + [p for p in BENCHMARK_PROMPTS if fold_of(p, 2) != fold]
        assert len(trained) == len(set(trained)) == 9 and set(trained) <= set(pool)
        assert trained == [p for p in pool if p in trained]  # the input order is kept
        kept.append({p for p in trained if p in SYNTH_TRAIN_PROMPTS})
    assert kept[0] != kept[1]


def test_the_task_prior_fits_the_queries_the_router_trains_on(backbones, data_dir, tmp_path, monkeypatch):
    """--max_train_samples with --task_prior_blend: the prior is fitted on the router's own draw of the pool, not on
    the whole pool (alone and in every cross-fitted fold)."""
    from routers.task_prior import TaskPrior

    monkeypatch.setenv("LOOKAHEAD_CACHE", str(tmp_path / "cache"))
    seen, fitted = recording_stage(monkeypatch, "sc"), {}
    original_fit = TaskPrior.fit

    def recording_fit(self, records, threshold):
        fitted[len(fitted)] = [r["prompt"] for r in records]
        return original_fit(self, records, threshold)

    monkeypatch.setattr(TaskPrior, "fit", recording_fit)
    run("sc", backbones["bert"], data_dir, tmp_path / "single", "--max_train_samples", "7", "--task_prior_blend", "True",
        "--do_predict", "False")
    assert len(seen["single"][0]) == 7 and fitted[0] == seen["single"][0]
    run("sc", backbones["bert"], data_dir, tmp_path / "folds", "--cross_fit_folds", "2", "--max_train_samples", "9",
        "--task_prior_blend", "True", "--do_predict", "False")
    assert [fitted[1], fitted[2]] == [seen["fold_0"][0], seen["fold_1"][0]] and len(fitted[1]) == 9


def test_subsample_keeps_a_seeded_subset_in_input_order():
    records = [{"prompt_id": str(i)} for i in range(30)]
    assert train.subsample(records, None, 0) is records and train.subsample(records, 30, 0) is records
    first = train.subsample(records, 10, "0:fold0")
    assert len(first) == 10 and first == sorted(first, key=lambda r: int(r["prompt_id"]))
    assert first == train.subsample(records, 10, "0:fold0")  # the same seed draws the same subset
    assert first != train.subsample(records, 10, "0:fold1")
    assert len(train.subsample(records, 29, 1)) == 29


def test_resume_from_last_checkpoint_matches_an_uninterrupted_run(backbones, data_dir, tmp_path, monkeypatch):
    options = ["--max_steps", "4", "--save_steps", "2", "--eval_steps", "2", "--mask_length", "3"]
    # Record the optimizer step count at every batch each run trains on in this process.
    from trainers import RouterTrainer
    taken, step = [], RouterTrainer.training_step
    monkeypatch.setattr(RouterTrainer, "training_step",
                        lambda self, *a, **k: taken.append(self.state.global_step) or step(self, *a, **k))
    run("mask_concat", backbones["bert"], data_dir, tmp_path / "whole", *options)
    whole_batches = list(taken)
    assert whole_batches[0] == 0 and whole_batches[-1] == 3
    taken.clear()
    # A run killed right after saving checkpoint-2 leaves only that checkpoint in its folder.
    interrupted = tmp_path / "interrupted"
    shutil.copytree(tmp_path / "whole" / "checkpoint-2", interrupted / "checkpoint-2")
    state = json.loads((interrupted / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    run("mask_concat", backbones["bert"], data_dir, interrupted, *options,
        "--resume_from_checkpoint", "last-checkpoint")
    # it trains only the batches of steps 3 and 4, starting from the checkpoint's step count (a restart trains all)
    assert taken == [s for s in whole_batches if s >= 2]

    whole, resumed = predictions(tmp_path / "whole"), predictions(interrupted)
    assert [row["choice"] for row in resumed] == [row["choice"] for row in whole]
    for a, b in zip(whole, resumed):
        assert a["router_scores"] == pytest.approx(b["router_scores"], abs=1e-6)
    assert (json.loads((interrupted / "metrics.json").read_text())
            == json.loads((tmp_path / "whole" / "metrics.json").read_text()))
    log = (interrupted / "train.log").read_text()
    assert "resuming from" in log and "step 1:" not in log and "step 2:" not in log
    losses = [json.loads(line.split(": ", 2)[2])["loss"] for line in log.splitlines() if '{"loss"' in line]
    whole_log = (tmp_path / "whole" / "train.log").read_text()
    assert losses == [json.loads(line.split(": ", 2)[2])["loss"] for line in whole_log.splitlines()
                      if '{"loss"' in line][2:]  # steps 3 and 4 repeat exactly


# What Trainer._save_checkpoint writes, in order (trainer_state.json last); a kill can land after any of them.
CHECKPOINT_WRITES = ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"]


@pytest.fixture(scope="module")
def whole_run(backbones, data_dir, tmp_path_factory):
    """An uninterrupted 4-step mask_concat run with checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("whole")
    run("mask_concat", backbones["bert"], data_dir, out, "--max_steps", "4", "--save_steps", "2", "--eval_steps", "2",
        "--mask_length", "3", "--save_total_limit", "3")
    return out


@pytest.mark.parametrize("kill_after", range(len(CHECKPOINT_WRITES)))
def test_resume_skips_a_checkpoint_killed_while_being_written(backbones, data_dir, tmp_path, whole_run, kill_after):
    """A run killed while writing checkpoint-4: the files written before the kill are whole, the one being written
    is torn (half its bytes). The resume takes checkpoint-2, says so, and ends as the uninterrupted run."""
    interrupted = tmp_path / "interrupted"
    shutil.copytree(whole_run / "checkpoint-2", interrupted / "checkpoint-2")
    partial = interrupted / "checkpoint-4"
    partial.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(whole_run / "checkpoint-4" / name, partial / name)
    for name in CHECKPOINT_WRITES[:kill_after]:
        shutil.copy(whole_run / "checkpoint-4" / name, partial / name)
    torn = (whole_run / "checkpoint-4" / CHECKPOINT_WRITES[kill_after]).read_bytes()
    (partial / CHECKPOINT_WRITES[kill_after]).write_bytes(torn[:len(torn) // 2])
    assert not train.is_complete_checkpoint(partial) and train.is_complete_checkpoint(interrupted / "checkpoint-2")

    run("mask_concat", backbones["bert"], data_dir, interrupted, "--max_steps", "4", "--save_steps", "2",
        "--eval_steps", "2", "--mask_length", "3", "--save_total_limit", "3",
        "--resume_from_checkpoint", "last-checkpoint")
    log = (interrupted / "train.log").read_text()
    assert f"{partial} is incomplete" in log and f"resuming from {interrupted / 'checkpoint-2'}" in log
    assert predictions(interrupted) == predictions(whole_run)
    resumed_steps = [int(line.split("step ")[1].split(":")[0]) for line in log.splitlines() if '{"loss"' in line]
    assert resumed_steps == [3, 4]  # a restart would train (and log) steps 1 and 2 again
    state = json.loads((interrupted / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4 and train.is_complete_checkpoint(interrupted / "checkpoint-4")


@pytest.mark.parametrize("changed, differs, fix", [
    # lookahead_mlm.sh's old default head resumed under its new one (a folder named by OUTPUT_DIR): the Trainer
    # loaded what fitted and failed on the optimizer state ("parameter group that doesn't match")
    (["--routing_head", "linear"], "routing_head prediction (this run: linear)", "--routing_head prediction"),
    # the same parameter shapes: the Trainer resumed silently, a router trained half on 3 slots and half on 4
    (["--mask_length", "4"], "mask_length 3 (this run: 4)", "--mask_length 3"),
    # no shape changes at all: a router trained half with one dropout and half with another
    (["--head_dropout", "0.3"], "head_dropout 0.1 (this run: 0.3)", "--head_dropout 0.1"),
])
def test_resume_refuses_a_checkpoint_of_another_router(backbones, data_dir, tmp_path, whole_run, changed, differs,
                                                       fix):
    """whole_run's checkpoint-2 (the prediction head, 3 slots, dropout 0.1) resumed with another head, mask length or
    head dropout: a clear error naming the checkpoint, the field and the fix, before any training step."""
    interrupted = tmp_path / "interrupted"
    shutil.copytree(whole_run / "checkpoint-2", interrupted / "checkpoint-2")
    flags = {"--max_steps": "4", "--save_steps": "2", "--eval_steps": "2", "--mask_length": "3",
             "--save_total_limit": "3", changed[0]: changed[1]}
    with pytest.raises(SystemExit) as error:
        run("mask_concat", backbones["bert"], data_dir, interrupted, *[x for flag in flags.items() for x in flag],
            "--resume_from_checkpoint", "last-checkpoint")
    assert str(error.value) == (
        f"error: {interrupted / 'checkpoint-2' / 'config.json'}: the checkpoint's router differs from this run's: "
        f"{differs}. Resume it with its own settings ({fix}), or train in another --output_dir.")
    assert not (interrupted / "trainer_state.json").exists() and not list(interrupted.glob("checkpoint-[!2]*"))


def test_a_checkpoint_missing_its_optimizer_is_incomplete(whole_run, tmp_path):
    """A kill while the Trainer deletes an old checkpoint (rotation) can leave its trainer_state.json behind."""
    folder = tmp_path / "checkpoint-2"
    shutil.copytree(whole_run / "checkpoint-2", folder)
    assert train.is_complete_checkpoint(folder)
    (folder / "optimizer.pt").unlink()
    assert not train.is_complete_checkpoint(folder)
    assert train.is_complete_checkpoint(folder, save_only_model=True)
    assert train.last_complete_checkpoint(str(tmp_path)) is None


@pytest.mark.parametrize("flags, package", [
    (["--deepspeed", "ds_config.json"], "deepspeed"),
    (["--use_liger_kernel", "True"], "liger-kernel"),
    (["--attn_implementation", "flash_attention_2"], "flash-attn"),
])
def test_missing_optional_package_is_named(tmp_path, flags, package):
    import importlib.util
    module = {"deepspeed": "deepspeed", "liger-kernel": "liger_kernel", "flash-attn": "flash_attn"}[package]
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{package} is installed")
    with pytest.raises(SystemExit, match=f"pip install {package}"):
        train.main(["sc", "--output_dir", str(tmp_path), *flags])


def test_unknown_stage_prints_usage():
    with pytest.raises(SystemExit, match="usage: python src/train.py"):
        train.main(["lookahead"])


@pytest.mark.parametrize("flags, message", [
    (["--max_train_samples", "-5"], "--max_train_samples: -5 must be a positive number of queries"),
    (["--max_train_samples", "0"], "--max_train_samples: 0 must be a positive number of queries"),
    (["--eval_steps", "0"], "--eval_steps: 0.0 must be > 0"),
    (["--test_datasets", "GSM8k,GSM8K"], r"--test_datasets: unknown benchmark\(s\) \['GSM8K'\]"),
    (["--train_slice", "(0.5,0.2)"], r"--train_slice: '\(0.5,0.2\)' needs 0 <= start < end <= 1"),
    (["--candidate_llms", "A", "A"], "--candidate_llms"),
    (["--task_prior_blend", "True", "--loss_type", "CE"], "--task_prior_blend: the prior is on the BCE targets"),
    (["--task_prior_blend", "True", "--eval_strategy", "no"], "--task_prior_blend: its weight is chosen on the valid"),
])
def test_bad_flags_stop_before_any_work_naming_the_flag(tmp_path, flags, message):
    with pytest.raises(SystemExit, match=message):
        train.main(["sc", "--output_dir", str(tmp_path), *flags])
    assert not (tmp_path / "train.log").exists() or "training on" not in (tmp_path / "train.log").read_text()


def test_a_value_outside_the_choices_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.main(["sc", "--output_dir", str(tmp_path), "--loss_type", "Hinge"])
    assert "--loss_type/--loss-type: invalid choice: 'Hinge' (choose from 'CE', 'BCE'" in capsys.readouterr().err


def test_bad_data_stops_before_training(backbones, data_dir, tmp_path):
    """A missing benchmark candidate, a bad training-set entry or a split with no training queries is reported
    before any model is built or trained (a typo must not cost a whole run)."""
    base = ["sc", "--backbone_name_or_path", backbones["bert"], "--data_dir", str(data_dir), "--output_dir",
            str(tmp_path / "run"), "--max_steps", "1", "--max_length", "16"]
    with pytest.raises(SystemExit, match=r"Synth/responses/C.jsonl: candidate file not found. Candidates in .*\['A', "
                                         r"'B'\]. Pick candidate_llms among them"):
        train.main([*base, "--train_datasets", "Synth", "--candidate_llms", "A", "C", "--test_datasets", "GSM8k"])
    with pytest.raises(SystemExit, match=r"--train_datasets 'Synth/scored': score directory .* has responses"):
        train.main([*base, "--train_datasets", "Synth/scored", "--candidate_llms", "A", "B"])
    held_out = tmp_path / "data"
    shutil.copytree(data_dir, held_out)
    ids = [json.loads(line)["prompt_id"] for line in (held_out / "train" / "Synth" / "instructions.jsonl").open()]
    (held_out / "train" / "Synth" / "eval_ids.json").write_text(json.dumps(ids))
    with pytest.raises(SystemExit, match="no training queries left"):
        train.main([*base, "--data_dir", str(held_out), "--train_datasets", "Synth", "--candidate_llms", "A", "B"])
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_lists_take_commas_and_the_papers_syntax(tmp_path):
    _, args = train.parse_args(["sc", "--output_dir", str(tmp_path), "--test_datasets", "GSM8k,MATH",
                                "--candidate_llms", "['m1', 'm2']", "--train_datasets", "A/x", "B/y"])
    assert (args.test_datasets, args.candidate_llms, args.train_datasets) == (
        ["GSM8k", "MATH"], ["m1", "m2"], ["A/x", "B/y"])


def test_train_slice_keeps_a_fraction_of_each_set_in_file_order(data_dir, tmp_path):
    _, args = train.parse_args(["sc", "--output_dir", str(tmp_path), "--data_dir", str(data_dir),
                                "--train_datasets", "Synth", "--candidate_llms", *CANDIDATES,
                                "--train_slice", "(0.25,0.75)"])
    records = train.training_split(args, "train")
    assert [r["prompt_id"] for r in records] == [f"q{i}" for i in range(3, 9)]  # 12 training queries: 3..8


def test_cross_fit_validation_holds_out_a_share_of_each_other_fold_benchmark(backbones, data_dir, tmp_path):
    """--cross_fit_eval_fraction 0.5: half of each fold's out-of-fold GSM8k records leave the training pool for the
    validation set; with a --max_train_samples draw of 2 that may miss GSM8k entirely, the validation records of
    GSM8k are still scaled (their source's range is fitted on the validation set too)."""
    run("sc", backbones["bert"], data_dir, tmp_path, "--cross_fit_folds", "2", "--cross_fit_eval_fraction", "0.5",
        "--max_train_samples", "2", "--metric_for_best_model", "eval_macro_reward")
    log = (tmp_path / "train.log").read_text()
    prompts = [f"how many {word} are {n}" for n, word in enumerate(WORDS[:8])]
    for fold in range(2):
        out_of_fold = sum(fold_of(prompt, 2) != fold for prompt in prompts)
        held = max(1, round(0.5 * out_of_fold))
        assert (f"fold {fold + 1}/2: {12 + out_of_fold - held} training queries ({out_of_fold - held} from the "
                f"benchmarks), {4 + held} validation queries") in log
    assert json.loads((tmp_path / "metrics.json").read_text())["GSM8k"]["score"] is not None
    for fold in range(2):  # the kept checkpoint is the one with the best macro reward (Synth and GSM8k alike)
        state = json.loads((tmp_path / f"fold_{fold}" / "trainer_state.json").read_text())
        macro = [entry["eval_macro_reward"] for entry in state["log_history"] if "eval_macro_reward" in entry]
        assert len(macro) == 2 and state["best_metric"] == max(macro)


def test_macro_reward_weighs_each_validation_source_alike():
    """Source a: 3 queries, the router picks the best (1.0) in all; source b: 1 query, it picks 0.0. Pooled reward
    3/4; macro (1 + 0) / 2."""
    from transformers import EvalPrediction
    from trainers.base import routing_metrics
    scores = np.array([[1.0, 0.0], [1.0, 0.5], [0.0, 1.0], [0.0, 1.0]])
    logits = np.array([[2.0, 1.0], [2.0, 1.0], [1.0, 2.0], [1.0, 2.0]])
    logits[3] = [2.0, 1.0]  # source b's query: the worse candidate
    result = routing_metrics(EvalPrediction(predictions=logits, label_ids=scores), sources=["a", "a", "a", "b"])
    assert result["reward"] == pytest.approx(0.75) and result["macro_reward"] == pytest.approx(0.5)
    assert result["best_pick_rate"] == pytest.approx(0.75)
    assert "macro_reward" not in routing_metrics(EvalPrediction(predictions=logits, label_ids=scores))
    with pytest.raises(ValueError, match="4 validated queries"):
        routing_metrics(EvalPrediction(predictions=logits, label_ids=scores), sources=["a", "b"])


def test_task_prior_blend_is_saved_with_the_router_and_used_when_it_routes(backbones, data_dir, tmp_path, monkeypatch):
    """--task_prior_blend: task_prior.json beside the router (fitted on the 12 training queries, the weight chosen
    on the 4 validation ones); the test predictions are the blended logits, and PretrainedRouter, loading the folder
    alone, routes to the same scores; --do_train False routes with the saved prior again."""
    from routers.pretrained import PretrainedRouter
    from routers.task_prior import BLEND_WEIGHTS

    monkeypatch.setenv("LOOKAHEAD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    run("sc", backbones["bert"], data_dir, out, "--task_prior_blend", "True")
    saved = json.loads((out / "task_prior.json").read_text())
    assert saved["weight"] in BLEND_WEIGHTS and saved["weight"] < 1.0 and saved["sources"] == ["Synth"]  # (seed 0)
    assert [float(w) for w in saved["validation_macro_reward"]] == list(BLEND_WEIGHTS)
    assert "task prior: weight" in (out / "train.log").read_text()
    rows = predictions(out)
    prompts = [f"how many {word} are {n}" for n, word in enumerate(WORDS[:8])]
    routed = PretrainedRouter.from_pretrained(out, precision="fp32").route(prompts)
    assert np.allclose(routed, [row["router_scores"] for row in rows], atol=1e-4)
    alone = PretrainedRouter.from_pretrained(out, precision="fp32", use_task_prior=False).route(prompts)
    assert not np.allclose(alone, routed, atol=1e-3)  # the router's own logits (w < 1 changed them)
    (out / "test_predictions" / "GSM8k.json").unlink()
    run("sc", backbones["bert"], data_dir, out, "--do_train", "False", "--task_prior_blend", "True")
    assert np.allclose([row["router_scores"] for row in predictions(out)], [row["router_scores"] for row in rows])


def test_a_task_prior_left_by_an_earlier_run_never_routes_another_router(backbones, data_dir, tmp_path, monkeypatch):
    """The folder describes the router (PretrainedRouter routes with any task_prior.json in it): --do_train False
    without the flag is refused rather than routing otherwise than the folder does, and training again without the
    flag removes the earlier run's prior (its weight was chosen for the earlier router)."""
    from routers.pretrained import PretrainedRouter

    monkeypatch.setenv("LOOKAHEAD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    run("sc", backbones["bert"], data_dir, out, "--task_prior_blend", "True")
    assert (out / "task_prior.json").exists()
    with pytest.raises(SystemExit, match=r"task_prior.json.*--task_prior_blend True.*or delete"):
        run("sc", backbones["bert"], data_dir, out, "--do_train", "False")
    run("sc", backbones["bert"], data_dir, out, "--seed", "1")  # a new router, trained without the blend
    assert not (out / "task_prior.json").exists()
    prompts = [f"how many {word} are {n}" for n, word in enumerate(WORDS[:8])]
    routed = PretrainedRouter.from_pretrained(out, precision="fp32").route(prompts)
    assert np.allclose(routed, [row["router_scores"] for row in predictions(out)], atol=1e-4)


# ------------------------------------------------------------------ run configs, model card, TensorBoard, hub

def test_a_config_file_sets_the_flags_and_the_command_line_overrides_it(tmp_path):
    (tmp_path / "run.yaml").write_text("learning_rate: 3e-4\nnum_train_epochs: 2\ntest_datasets: [GSM8k, MATH]\n"
                                       "loss_type: KL\nstage: sc\n")
    stage, args = train.parse_args(["sc", "--config", str(tmp_path / "run.yaml"), "--num_train_epochs", "5",
                                    "--output_dir", str(tmp_path / "out")])
    assert (stage, args.learning_rate, args.num_train_epochs, args.test_datasets, args.loss_type) == \
        ("sc", 3e-4, 5.0, ["GSM8k", "MATH"], "KL")
    (tmp_path / "run.json").write_text(json.dumps({"learning_rate": 2e-5, "cross_fit_folds": 2}))
    _, args = train.parse_args(["sc", f"--config={tmp_path / 'run.json'}", "--output_dir", str(tmp_path / "out")])
    assert (args.learning_rate, args.cross_fit_folds) == (2e-5, 2)


@pytest.mark.parametrize("name, text, message", [
    ("run.yaml", "learning_rate: [1", r"run.yaml, line 1, column 18: not valid YAML"),
    ("run.json", '{"learning_rate": 1e-5,\n', r"run.json, line 2: malformed JSON"),
    ("run.yaml", None, r"run.yaml \(nor run.yaml.gz\) not found"),
    ("run.yaml", "- 1\n- 2\n", "run.yaml: expected a mapping of flag names to values, got list"),
    ("run.yaml", "stage: causal\n", r"run.yaml: field 'stage' is 'causal', but the command trains 'sc'"),
    ("run.yaml", "learning_rat: 1e-5\n", r"run.yaml: \['learning_rat'\] are not flags of stage 'sc'"),
    ("run.yaml", "loss_type: Hinge\n", "loss_type"),
])
def test_a_bad_config_file_is_named(tmp_path, name, text, message, capsys):
    if text is not None:
        (tmp_path / name).write_text(text)
    with pytest.raises(SystemExit) as error:
        train.main(["sc", "--config", str(tmp_path / name), "--output_dir", str(tmp_path / "out")])
    assert re.search(message, str(error.value) + capsys.readouterr().err)
    assert not (tmp_path / "out" / "train.log").exists()


@pytest.fixture(scope="module")
def logged_run(backbones, data_dir, tmp_path_factory):
    """A tiny sc run that logs to TensorBoard."""
    out = tmp_path_factory.mktemp("logged") / "sc"
    run("sc", backbones["bert"], data_dir, out, "--report_to", "tensorboard", "--run_name", "tiny sc")
    return out


def test_tensorboard_logs_offline(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = logged_run.glob("runs/*/events.out.tfevents.*")
    accumulator = EventAccumulator(str(events.parent))
    accumulator.Reload()
    assert {"train/loss", "eval/reward"} <= set(accumulator.Tags()["scalars"])
    assert [event.step for event in accumulator.Scalars("eval/reward")] == [1, 2]


def test_the_saved_arguments_rerun_the_same_experiment(logged_run, tmp_path, backbones):
    rerun = tmp_path / "rerun"
    train.main(["sc", "--config", str(logged_run / "run_args.json"), "--output_dir", str(rerun)])
    assert predictions(rerun) == predictions(logged_run)
    first, second = (json.loads((folder / "metrics.json").read_text()) for folder in (logged_run, rerun))
    assert first == second
    saved = [{key: value for key, value in json.loads((folder / "run_args.json").read_text()).items()
              if key not in ("output_dir",)} for folder in (logged_run, rerun)]
    assert saved[0] == saved[1]


def test_the_router_folder_has_a_model_card(logged_run, backbones, data_dir):
    card = (logged_run / "README.md").read_text()
    header, body = card.split("---\n")[1:3]
    assert '"sc"' in header and "lookahead-routing" in header
    assert "| stage | `sc` |" in body and f"| backbone | `{backbones['bert']}` |" in body
    assert "| candidates, in output order | `A`, `B` |" in body and "| training sets | `Synth` " in body
    summary = json.loads((logged_run / "metrics.json").read_text())
    assert f"| GSM8k | {summary['GSM8k']['score']:.4g} | 50 | 100 |" in body  # each fixed candidate: 4 of 8
    eval_reward = json.loads((logged_run / "eval_results.json").read_text())["eval_reward"]
    assert f"eval_reward {eval_reward:.4g}" in body
    assert "PretrainedRouter.from_pretrained" in body and "python src/serve.py --router" in body


def test_push_to_hub_goes_through_the_trainer_with_the_card(backbones, data_dir, tmp_path, monkeypatch):
    """No network here: the hub client is replaced by one that records what would be uploaded."""
    import transformers.trainer

    uploads = []

    class Hub:
        def create_repo(self, repo_id, **kwargs):
            return type("RepoUrl", (), {"repo_id": f"me/{repo_id}"})()

        def upload_folder(self, repo_id, folder_path, **kwargs):
            uploads.append((repo_id, (Path(folder_path) / "README.md").read_text()))

    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: Hub())
    out = tmp_path / "pushed"
    run("sc", backbones["bert"], data_dir, out, "--push_to_hub", "True", "--save_strategy", "no",
        "--eval_strategy", "no")
    assert uploads and {repo for repo, _ in uploads} == {"me/pushed"}
    assert "| stage | `sc` |" in uploads[-1][1] and "| GSM8k |" in uploads[-1][1]  # the card with test metrics
    with pytest.raises(SystemExit, match="--push_to_hub uploads one router"):
        run("sc", backbones["bert"], data_dir, tmp_path / "cf", "--push_to_hub", "True", "--cross_fit_folds", "2")


# ----- run_cross_fit's own logic, with the training, the data loading and the scoring replaced by recorders -----

def _fake_records(prefix, n, source):
    return [{"prompt_id": f"{prefix}{i}", "prompt": f"{prefix} prompt {i}", "source": source,
             "scores": [1.0, 0.0]} for i in range(n)]


@pytest.fixture
def fake_cross_fit(tmp_path, monkeypatch):
    """``run(*flags)`` runs ``train.run_cross_fit`` for ``sc`` with 2 candidates on fake inputs (6 training and 2
    validation records; benchmarks A with 10 records and Empty with none) and records every call it makes:
    ``calls["fit"]`` (fold, pool prompt ids, validation prompt ids), ``calls["route"]`` (description,
    number of records), ``calls["reset"]`` (AcceleratorState._reset_state keyword arguments), ``calls["results"]``
    (write_results' arguments). The fake router scores record i of a benchmark [i % 2, 1 - i % 2]."""
    train_records, eval_records = _fake_records("t", 6, "Train"), _fake_records("v", 2, "Train")
    benchmarks = {"A": _fake_records("a", 10, "A"), "Empty": []}
    calls = {"fit": [], "route": [], "reset": [], "results": []}

    class FakeTrainer:
        def route(self, records, description):
            calls["route"].append((description, len(records)))
            return np.array([[i % 2, 1 - i % 2] for i in range(len(records))], dtype=float)

        def is_world_process_zero(self):
            return True

    def fake_fit(trainer_class, fold_args, pool, fold_eval):
        fold = int(Path(fold_args.output_dir).name.split("_")[1])
        calls["fit"].append((fold, [r["prompt_id"] for r in pool], [r["prompt_id"] for r in fold_eval]))
        RouterModelConfig(stage="sc", backbone_name_or_path="tiny", candidate_llms=CANDIDATES, loss_type="BCE",
                          score_normalization="min-max", max_seq_length=16).save_pretrained(fold_args.output_dir)
        return FakeTrainer()

    class FakeState:
        @staticmethod
        def _reset_state(**kwargs):
            calls["reset"].append(kwargs)

    def fake_results(folder, name, benchmarks_, predictions, data_dir, candidates):
        calls["results"].append({"folder": folder, "predictions": predictions, "data_dir": data_dir,
                                 "candidates": list(candidates)})
        return "| the table |\n"

    monkeypatch.setattr(train, "load_inputs", lambda args: (train_records, eval_records, benchmarks))
    monkeypatch.setattr(train, "fit_router", fake_fit)
    monkeypatch.setattr(train, "AcceleratorState", FakeState)
    monkeypatch.setattr(train.runs, "write_results", fake_results)

    def run_fake(*flags):
        _, args = train.parse_args(["sc", "--output_dir", str(tmp_path / "run"), "--candidate_llms", *CANDIDATES,
                                    "--data_dir", str(tmp_path / "the-data"), "--seed", "7", "--report_to", "none",
                                    "--cross_fit_folds", *flags])
        train.run_cross_fit(train.STAGES["sc"][1], args)

    run_fake.calls, run_fake.benchmarks, run_fake.out = calls, benchmarks, tmp_path / "run"
    return run_fake


def test_run_cross_fit_trains_each_fold_on_its_pool_and_routes_its_own_records(fake_cross_fit, capsys, caplog):
    from data.cross_fit import hold_out_by_source

    caplog.set_level("INFO", logger="lookahead")
    fake_cross_fit("3", "--cross_fit_eval_fraction", "0.5")
    calls, records = fake_cross_fit.calls, fake_cross_fit.benchmarks["A"]
    assert [fit[0] for fit in calls["fit"]] == [0, 1, 2]
    for fold, pool, validation in calls["fit"]:
        others = [r for r in records if fold_of(r["prompt"], 3) != fold]
        kept, held = hold_out_by_source(others, 0.5, 7)  # seeded by --seed 7
        assert pool == [f"t{i}" for i in range(6)] + [r["prompt_id"] for r in kept]
        assert validation == ["v0", "v1"] + [r["prompt_id"] for r in held]
        message = (f"fold {fold + 1}/3: {len(pool)} training queries ({len(kept)} from the benchmarks), "
                   f"{len(validation)} validation queries")
        assert message in [r.getMessage() for r in caplog.records]
    # a second seed holds out other records (the seed reaches the hold-out)
    assert hold_out_by_source(records, 0.5, 7) != hold_out_by_source(records, 0.5, 8)
    # one Accelerator state reset before each fold after the first, keeping the partial state
    assert calls["reset"] == [{"reset_partial_state": False}] * 2
    # each fold routes its own records of A, labelled for the progress bar; Empty (no records) is never routed
    in_fold = {fold: [r for r in records if fold_of(r["prompt"], 3) == fold] for fold in range(3)}
    assert calls["route"] == [(f"fold {fold} routing A", len(in_fold[fold])) for fold in range(3) if in_fold[fold]]
    rows = json.loads((fake_cross_fit.out / "fold_1" / "test_predictions" / "A.json").read_text())
    assert [(r["prompt_id"], r["fold"], r["choice"]) for r in rows] == [
        (r["prompt_id"], 1, 1 - i % 2) for i, r in enumerate(in_fold[1])]  # scores [i % 2, 1 - i % 2]
    assert json.loads((fake_cross_fit.out / "fold_1" / "test_predictions" / "Empty.json").read_text()) == []
    # the merged predictions go to write_results with the run's data folder; its table is printed as returned
    (result,) = calls["results"]
    assert result["data_dir"] == str(fake_cross_fit.out.parent / "the-data")
    assert [r["prompt_id"] for r in result["predictions"]["A"]] == [r["prompt_id"] for r in records]
    assert capsys.readouterr().out == "| the table |\n"
    for fold in range(3):  # each fold's model card: its stage, and the cross-fitting it was trained under
        card = (fake_cross_fit.out / f"fold_{fold}" / "README.md").read_text()
        assert f"# fold_{fold}: a `sc` router over 2 candidates" in card
        assert "| cross-fitting | 3 folds: this router also trained on the other folds of" in card


def test_run_cross_fit_draws_max_train_samples_seeded_per_fold(fake_cross_fit):
    """--max_train_samples 5 with --seed 7: fold f trains on the 5 records of its pool at the positions
    random.Random("7:fold<f>") samples (README: each fold seeded ``<seed>:fold<f>``), in pool order, so that a
    resumed or a --cross_fit_only_fold run draws what the first one drew, and the folds do not share one draw."""
    import random

    fake_cross_fit("2", "--max_train_samples", "5")
    records = fake_cross_fit.benchmarks["A"]
    assert [fit[0] for fit in fake_cross_fit.calls["fit"]] == [0, 1]
    for fold, trained, _ in fake_cross_fit.calls["fit"]:
        pool = [f"t{i}" for i in range(6)] + [r["prompt_id"] for r in records if fold_of(r["prompt"], 2) != fold]
        drawn = {seed: [pool[i] for i in sorted(random.Random(seed).sample(range(len(pool)), 5))]
                 for seed in (f"7:fold{fold}", 7)}
        assert trained == drawn[f"7:fold{fold}"] and drawn[7] != trained  # (the plain --seed draws other records)


def test_run_cross_fit_reuses_predictions_only_when_resuming(fake_cross_fit, caplog):
    caplog.set_level("INFO", logger="lookahead")
    fake_cross_fit("2")
    assert [fit[0] for fit in fake_cross_fit.calls["fit"]] == [0, 1]
    fake_cross_fit.calls["fit"].clear()
    fake_cross_fit("2")  # a fresh run (no --resume_from_checkpoint) trains again over written predictions
    assert [fit[0] for fit in fake_cross_fit.calls["fit"]] == [0, 1]
    fake_cross_fit.calls["fit"].clear()
    caplog.clear()
    fake_cross_fit("2", "--resume_from_checkpoint", "last-checkpoint")
    assert fake_cross_fit.calls["fit"] == []
    messages = [r.getMessage() for r in caplog.records]
    assert "fold 0: predictions already written, kept" in messages
    assert "fold 1: predictions already written, kept" in messages


def test_run_cross_fit_refuses_push_to_hub(fake_cross_fit):
    with pytest.raises(SystemExit) as error:
        fake_cross_fit("2", "--push_to_hub", "True")
    assert str(error.value) == (
        "error: --push_to_hub uploads one router, and a cross-fit run trains one per fold on the test benchmarks' "
        "other folds (for evaluation, not for use): train without --cross_fit_folds to push.")
    assert fake_cross_fit.calls["fit"] == []
