"""The shell scripts take the paper's variables, exactly as its README names them.

Each experiment script's launch line (``DRY_RUN=1``) is parsed by ``train.py``'s own argument parser with the
paper's variables set in the environment; one script runs end to end on a tiny slice; the data scripts are run
with a stub ``python`` that records its arguments.
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

import train
from model.backbones import resolve_backbone
from synthetic import CANDIDATES, TINY, write_synthetic_data
from utils.cli import as_list

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = {"lookahead_clm.sh": "causal", "lookahead_mlm.sh": "mask_concat", "mlc_router.sh": "sc",
           "router_with_gt_responses.sh": "gt_responses"}
PAPER = {  # the paper's variables, set to values no default has
    "MODEL_PATH": "/models/my-backbone", "DATA_DIR": "/datasets/lookahead",
    "TRAIN_SETS": "UltraFeedback/Skywork-Reward-Gemma-2-27B-v0.2 SelfOSSInstructSC2_filtered2/responses",
    "TEST_SETS": "GSM8k MATH", "CANDIDATE_LLMS": "m1 m2 m3", "LOSS_TYPE": "KL", "BATCH_SIZE": "3",
    "ACCUMULATION_STEPS": "5", "LEARNING_RATE": "2e-05", "EPOCHS": "3",
}
MLM = {"MASK_TYPE": "random", "MASK_LENGTH": "24", "MASK_WARMUP_RATIO": "0.4", "ROUTING_HEAD": "linear"}


def run_script(script: str, env: dict, *args: str, path_prefix: str | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in PAPER and key not in MLM
                   and key not in ("SOURCE_WEIGHTING", "CROSS_FIT_EVAL_FRACTION", "CROSS_FIT_FOLDS",
                                  "TASK_PRIOR_BLEND")}
    environment.update(env)
    if path_prefix:
        environment["PATH"] = f"{path_prefix}:{environment['PATH']}"
    return subprocess.run(["bash", str(REPO / script), *args], env=environment, capture_output=True, text=True,
                          timeout=600)


def launch_line(script: str, env: dict, *args: str) -> list[str]:
    result = run_script(script, {"DRY_RUN": "1", **env}, *args)
    assert result.returncode == 0, result.stderr
    return shlex.split(result.stdout)


def commented_additional_args(script: str, start: str = "") -> str:
    """ADDITIONAL_ARGS after uncommenting every ``# ADDITIONAL_ARGS=...`` line of ``script``."""
    lines = [line[2:] for line in (REPO / script).read_text().splitlines() if line.startswith("# ADDITIONAL_ARGS=")]
    program = f'ADDITIONAL_ARGS={shlex.quote(start)}\n' + "\n".join(lines) + '\nprintf %s "$ADDITIONAL_ARGS"'
    return subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_passes_the_papers_variables_to_train_py(script):
    env = {**PAPER, **(MLM if script == "lookahead_mlm.sh" else {})}
    line = launch_line(script, env)
    assert line[:2] == ["python", "src/train.py"] and line[2] == SCRIPTS[script]
    stage, args = train.parse_args(line[2:])
    assert stage == SCRIPTS[script]
    assert args.backbone_name_or_path == "/models/my-backbone" and args.data_dir == "/datasets/lookahead"
    assert args.train_datasets == PAPER["TRAIN_SETS"].split()
    assert args.test_datasets == ["GSM8k", "MATH"] and args.candidate_llms == ["m1", "m2", "m3"]
    assert args.loss_type == "KL"
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (3, 5)
    assert (args.learning_rate, args.num_train_epochs) == (2e-5, 3.0)
    if script == "lookahead_mlm.sh":
        assert (args.mask_type, args.mask_length, args.mask_warmup_ratio, args.routing_head) == (
            "random", 24, 0.4, "linear")
        assert "_ml24_random_KL_linear_" in Path(args.output_dir).name  # a run folder per head
    # the run folder: output/<train sets>/<config>/<model>/<method>/<hyperparameters>
    output_dir = Path(args.output_dir)
    assert output_dir.parts[:5] == ("output", "UltraFeedback+SelfOSSInstructSC2_filtered2", "cf2_GSM8k+MATH",
                                    "my-backbone", SCRIPTS[script])
    assert output_dir.name.startswith("lr2e-05_ep3_bs15")


@pytest.mark.parametrize("script", SCRIPTS)
def test_protocol_variables_reach_train_py(script):
    # the quality study's protocol: a benchmark hold-out validates; source weighting where it was chosen on it
    _, args = train.parse_args(launch_line(script, {})[2:])
    assert args.cross_fit_folds == 2 and args.cross_fit_eval_fraction == 0.1
    assert args.source_weighting == ("sqrt" if script == "lookahead_mlm.sh" else "none")
    if script == "lookahead_mlm.sh":  # the defaults chosen on the validation hold-out (README, quality study)
        assert (args.mask_length, args.max_length, args.routing_head) == (16, 215, "prediction")
    _, args = train.parse_args(launch_line(script, {"SOURCE_WEIGHTING": "balanced", "CROSS_FIT_EVAL_FRACTION": "0.2"})[2:])
    assert (args.source_weighting, args.cross_fit_eval_fraction) == ("balanced", 0.2)
    assert Path(args.output_dir).name.endswith("_swbalanced_s42")  # a run of its own
    _, args = train.parse_args(launch_line(script, {"CROSS_FIT_FOLDS": "0", "SOURCE_WEIGHTING": "none"})[2:])
    assert args.cross_fit_eval_fraction == 0.0  # the hold-out needs cross-fitting: not passed without it
    assert "_sw" not in Path(args.output_dir).name
    # the task prior: auto is on with BCE (the loss it needs) and off with another, so LOSS_TYPE=KL still runs
    for loss, expected in (("BCE", True), ("KL", False)):
        _, args = train.parse_args(launch_line(script, {"TASK_PRIOR_BLEND": "auto", "LOSS_TYPE": loss})[2:])
        assert args.task_prior_blend is expected and Path(args.output_dir).name.endswith("_tp_s42") is expected
    _, args = train.parse_args(launch_line(script, {"TASK_PRIOR_BLEND": "False"})[2:])
    assert args.task_prior_blend is False and "_tp" not in Path(args.output_dir).name


@pytest.mark.parametrize("script", SCRIPTS)
def test_additional_args_lines_and_environment(script):
    additional = commented_additional_args(script, start="--seed 5")
    for flag in ("--deepspeed config/deepspeed/ds_z3_config.json", "--use_liger", "--gradient_checkpointing",
                 "--resume_from_checkpoint last-checkpoint", "--attn_implementation"):
        assert flag in additional, (script, flag)
    assert additional.startswith("--seed 5 ")  # the environment's ADDITIONAL_ARGS comes first, the lines append
    line = launch_line(script, {"ADDITIONAL_ARGS": additional})
    # DeepSpeed needs a distributed launcher even on one device
    assert line[:4] == ["torchrun", "--standalone", "--nproc_per_node", "1"]
    argv = line[line.index("src/train.py") + 1:]
    assert argv[argv.index("--deepspeed") + 1] == "config/deepspeed/ds_z3_config.json"
    # without the packages they need, train.py names them; the rest parses
    keep = argv[:argv.index("--seed", argv.index("--disable_tqdm"))]
    extra = ["--seed", "5", "--gradient_checkpointing", "--resume_from_checkpoint", "last-checkpoint"]
    _, args = train.parse_args(keep + extra + argv[argv.index("--output_dir"):])
    assert args.seed == 5 and args.gradient_checkpointing and args.resume_from_checkpoint == "last-checkpoint"
    if "--use_liger" in argv:
        try:
            import liger_kernel  # noqa: F401
        except ModuleNotFoundError:
            with pytest.raises(SystemExit, match="--use_liger needs the `liger-kernel` package"):
                train.parse_args(keep + ["--use_liger"] + argv[argv.index("--output_dir"):])


def test_several_machines_launch_torchrun_across_nodes():
    env = {"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.1.2.3", "MASTER_PORT": "29600", "NUM_GPUS": "4"}
    line = launch_line("lookahead_mlm.sh", env)
    assert line[:line.index("src/train.py")] == ["torchrun", "--nnodes", "2", "--node_rank", "1", "--master_addr",
                                                 "10.1.2.3", "--master_port", "29600", "--nproc_per_node", "4"]
    _, args = train.parse_args(line[line.index("src/train.py") + 1:])
    assert "bs128" in Path(args.output_dir).name  # global batch: 16 per device x 4 GPUs x 2 machines


def test_user_flags_win_over_the_scripts(tmp_path):
    line = launch_line("mlc_router.sh", {"ADDITIONAL_ARGS": "--learning_rate 3e-4"}, "--num_train_epochs", "7")
    _, args = train.parse_args(line[2:])
    assert args.learning_rate == 3e-4 and args.num_train_epochs == 7


@pytest.mark.parametrize("flags", [["--output_dir", "output/my run"], ["--output_dir=output/my run"]])
def test_output_dir_after_the_script_name_names_the_run_folder(flags):
    """Like OUTPUT_DIR (the script's own --output_dir used to come last and win, silently)."""
    result = run_script("mlc_router.sh", {"DRY_RUN": "1"}, "--seed", "3", *flags)
    assert result.returncode == 0, result.stderr
    argv = shlex.split(result.stdout)
    assert [arg for arg in argv if arg.startswith("--output_dir")] == ["--output_dir"]
    _, args = train.parse_args(argv[2:])
    assert args.output_dir == "output/my run" and args.seed == 3
    assert "run folder's name" not in result.stderr  # the user named the folder: no note
    missing = run_script("mlc_router.sh", {"DRY_RUN": "1"}, "--output_dir")
    assert missing.returncode == 2 and "--output_dir needs a folder" in missing.stderr


def test_flags_the_run_folder_name_does_not_show_are_named():
    """Flags after the script's name (or in ADDITIONAL_ARGS) change the run but not its folder's name: a note says
    so, unless OUTPUT_DIR names the folder; a run with the variables alone gets no note."""
    note = "the run folder's name is made from the script's variables"
    flagged = run_script("lookahead_mlm.sh", {"DRY_RUN": "1", "ADDITIONAL_ARGS": "--seed 3"}, "--mask_length", "8")
    assert flagged.returncode == 0 and note in flagged.stderr and "(--seed 3 --mask_length 8)" in flagged.stderr
    assert "_ml16_" in flagged.stdout  # the name still says the script's MASK_LENGTH
    named = run_script("lookahead_mlm.sh", {"DRY_RUN": "1", "OUTPUT_DIR": "output/mine"}, "--mask_length", "8")
    plain = run_script("lookahead_mlm.sh", {"DRY_RUN": "1", "MASK_LENGTH": "8"})
    assert named.returncode == plain.returncode == 0 and note not in named.stderr + plain.stderr
    assert "_ml8_" in plain.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_flags_of_the_same_run_get_no_note(script):
    """--resume_from_checkpoint continues a run in its folder and --cross_fit_only_fold trains one fold of it there:
    both reuse the folder on purpose; --deepspeed, --run_name, --report_to, --logging_steps, --disable_tqdm and
    --dataloader_num_workers change how the run is launched, logged or named, not what it learns. The note leaves
    them (and their values) out, and says nothing without other flags. The other flags are shown as the shell
    would take them back."""
    note = "the run folder's name is made from the script's variables"
    same_run = run_script(script, {"DRY_RUN": "1", "ADDITIONAL_ARGS": "--resume_from_checkpoint last-checkpoint "
                                   "--deepspeed config/ds_z2.json --report_to=none --logging_steps 5"},
                          "--cross_fit_only_fold=1", "--disable_tqdm", "--dataloader_num_workers", "2",
                          "--run_name", "my run")
    assert same_run.returncode == 0 and note not in same_run.stderr, same_run.stderr
    additional = "--seed 3 --resume_from_checkpoint=last-checkpoint"
    mixed = run_script(script, {"DRY_RUN": "1", "ADDITIONAL_ARGS": additional},
                       "--cross_fit_only_fold", "0", "--run_name", "my run", "--train_datasets", "my set")
    assert mixed.returncode == 0 and "(--seed 3 --train_datasets my\\ set)" in mixed.stderr, mixed.stderr


def test_script_runs_end_to_end_and_fills_the_run_folder(tmp_path):
    data_dir = write_synthetic_data(tmp_path / "data")
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64, **TINY)).save_pretrained(
        tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    output = tmp_path / "run"
    env = {"MODEL_PATH": str(tmp_path / "bert"), "DATA_DIR": str(data_dir), "TRAIN_SETS": "Synth/responses",
           "TEST_SETS": "GSM8k", "CANDIDATE_LLMS": " ".join(CANDIDATES), "LOSS_TYPE": "BCE", "BATCH_SIZE": "4",
           "ACCUMULATION_STEPS": "1", "LEARNING_RATE": "1e-4", "EPOCHS": "1", "MAX_STEPS": "2", "EVAL_STEPS": "1",
           "MAX_LENGTH": "16", "CROSS_FIT_FOLDS": "0", "OUTPUT_DIR": str(output)}
    result = run_script("mlc_router.sh", env, path_prefix=str(Path(sys.executable).parent))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (output / "train.sh").read_text() == (REPO / "mlc_router.sh").read_text()
    assert "progress: training step 2/2" in (output / "train.log").read_text()
    assert {path.name for path in output.glob("checkpoint-*")} <= {"checkpoint-1", "checkpoint-2"}
    assert any(output.glob("checkpoint-*"))
    results = json.loads((output / "eval_results.json").read_text())
    best = json.loads((output / "train_metrics.json").read_text())
    assert results["eval_reward"] == pytest.approx(best["best_metric"])  # the kept checkpoint's validation
    assert (output / "metrics.json").exists() and (output / "results.md").exists()


def write_stub_python(folder: Path) -> Path:
    """A ``python`` that writes its arguments (one per line) to ``$STUB_ARGS``."""
    folder.mkdir()
    stub = folder / "python"
    stub.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$STUB_ARGS"\n')
    stub.chmod(0o755)
    return folder


def test_generate_responses_script_takes_the_papers_variables(tmp_path):
    stub = write_stub_python(tmp_path / "bin")
    env = {"MODEL_PATH": "/models/llm-a", "DATA_PATH": "/sets/s/instructions.jsonl",
           "OUTPUT_PATH": "/sets/s/responses/llm-a.jsonl", "STUB_ARGS": str(tmp_path / "args")}
    assert run_script("generate_responses.sh", env, path_prefix=str(stub)).returncode == 0
    argv = (tmp_path / "args").read_text().splitlines()
    assert argv[0] == "src/generate_responses.py"
    assert {argv[argv.index(flag) + 1] for flag in ("--model_path", "--data_path", "--output_path")} == {
        "/models/llm-a", "/sets/s/instructions.jsonl", "/sets/s/responses/llm-a.jsonl"}


def test_compute_reward_script_takes_the_papers_variables(tmp_path):
    stub = write_stub_python(tmp_path / "bin")
    env = {"MODEL_NAME_OR_PATH": "/models/rm", "DATA_DIR": "/sets/s", "LLMS": "a,b", "SCORER": "reward_model",
           "STUB_ARGS": str(tmp_path / "args")}
    assert run_script("compute_reward.sh", env, path_prefix=str(stub)).returncode == 0
    argv = (tmp_path / "args").read_text().splitlines()
    assert argv[0] == "src/compute_rewards.py"
    assert [argv[argv.index(flag) + 1] for flag in ("--model_path", "--data_dir", "--llms", "--scorer")] == [
        "/models/rm", "/sets/s", "a,b", "reward_model"]
    missing = run_script("compute_reward.sh", {**env, "MODEL_NAME_OR_PATH": ""}, path_prefix=str(stub))
    assert missing.returncode == 2 and "MODEL_NAME_OR_PATH" in missing.stderr


@pytest.mark.parametrize("task_aware_train", [None, "", "my/set"])
def test_baselines_script_carries_the_task_aware_baseline(tmp_path, task_aware_train):
    """baselines.sh ends with the cross-fitted task-aware row (issue 11: every routing comparison carries it) on
    the paper's training pool by default, on TASK_AWARE_TRAIN when set, and without it when that is empty."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text('#!/usr/bin/env bash\necho "$*" >> "$STUB_ARGS"\n')
    (bin_dir / "python").chmod(0o755)
    env = {"STUB_ARGS": str(tmp_path / "calls"), "OUTPUT_ROOT": str(tmp_path / "out")}
    if task_aware_train is not None:
        env["TASK_AWARE_TRAIN"] = task_aware_train
    result = run_script("baselines.sh", env, path_prefix=str(bin_dir))
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    task = [call for call in calls if "--router_type task" in call]
    if task_aware_train == "":
        assert task == [] and "[baselines 9/9]" in result.stderr
        return
    expected = task_aware_train or "SelfOSSInstructSC2_filtered2/responses"
    assert len(task) == 1 and f"--cross_fit_folds 2 --train_datasets {expected} " in task[0], task
    assert "[baselines 10/10] task_aware" in result.stderr
    assert calls[-1].startswith("src/report.py combine") and calls[-1].split()[-3].endswith("/task_aware")


def test_the_papers_list_syntax():
    assert as_list("['model1', 'model2']") == ["model1", "model2"]
    assert as_list(["['dataset1']"]) == ["dataset1"]
    assert as_list(["a,b", "c"]) == ["a", "b", "c"]  # HfArgumentParser's space-separated items, commas inside


def test_cpu_bf16_flags_follow_the_cpu():
    on = launch_line("lookahead_mlm.sh", {"CPU_BF16": "1"})
    assert on[2:6] == ["mask_concat", "--bf16", "True", "--use_cpu"]
    _, args = train.parse_args(on[2:])
    assert args.bf16 and args.use_cpu
    off = launch_line("lookahead_mlm.sh", {"CPU_BF16": "0"})
    assert "--bf16" not in off
    explicit = launch_line("lookahead_mlm.sh", {"CPU_BF16": "1"}, "--bf16", "False")
    _, args = train.parse_args(explicit[2:])
    assert not args.bf16  # the user's flag wins


def test_cpu_bf16_detection_reads_the_cpu_flags():
    from utils.hardware import cpu_supports_bf16
    assert cpu_supports_bf16("processor : 0\nflags : fpu sse2 avx512f avx512_bf16 amx_tile\n")
    assert cpu_supports_bf16("flags\t\t: fpu amx_bf16 amx_tile\n")
    assert not cpu_supports_bf16("flags : fpu sse2 avx2 avx512f avx512bw\n")
    assert not cpu_supports_bf16("")


def run_setup_env(tmp_path, free_kb: int | None, torch_installed: bool,
                  repo: Path = REPO) -> tuple[subprocess.CompletedProcess, str]:
    """``repo``'s scripts/setup_env.sh with stubs: ``df`` reporting ``free_kb`` free (None: df fails), a present
    ``bwrap``, and a VENV whose python logs its arguments and answers every ``-c`` with ``torch_installed``. Returns
    the run and the stub python's log (a ``pip install`` line per install step)."""
    bin_dir, venv_bin = tmp_path / "bin", tmp_path / "venv" / "bin"
    bin_dir.mkdir()
    venv_bin.mkdir(parents=True)
    df_output = ("Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
                 f"/dev/vda         264212084 37661260 {free_kb}      36% /\n")
    df_script = "exit 1" if free_kb is None else f"printf '%s' '{df_output}'"
    stubs = {bin_dir / "df": df_script, bin_dir / "bwrap": "exit 0",
             venv_bin / "python": f'echo "$*" >> "{tmp_path / "log"}"\n'
                                  f'[ "$1" = -c ] && exit {0 if torch_installed else 1}\nexit 0'}
    for path, body in stubs.items():
        path.write_text(f"#!/usr/bin/env bash\n{body}\n")
        path.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "VENV": str(tmp_path / "venv"),
           "SKIP_DATA": "1"}
    result = subprocess.run(["bash", str(repo / "scripts" / "setup_env.sh")], env=env, capture_output=True,
                            text=True, timeout=60)
    log = tmp_path / "log"
    return result, log.read_text() if log.exists() else ""


@pytest.mark.parametrize("free_kb, torch_installed, refused", [
    (2 * 1024 * 1024, False, True),   # a fresh install (about 2 GB) on 2 GB free: stop before pip
    (4 * 1024 * 1024, False, False),  # 4 GB free: enough
    (2 * 1024 * 1024, True, False),   # a rerun after pyproject.toml changed: PyTorch is there, pip adds little
    (None, False, False),             # df cannot tell: install as before rather than stop without a word
])
def test_setup_env_checks_the_free_disk_before_a_fresh_install(tmp_path, free_kb, torch_installed, refused):
    result, log = run_setup_env(tmp_path, free_kb, torch_installed)
    pip_runs = log.count("-m pip install")
    if refused:
        assert result.returncode == 1 and pip_runs == 0
        assert f"error: 2048 MB free on the disk of {tmp_path / 'venv'}" in result.stderr
        assert "needs about 3 GB" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert pip_runs == 3 and "--no-cache-dir" in log  # PyTorch, the project, the packaged backbones
        assert (tmp_path / "venv" / ".lookahead-installed").exists()


@pytest.mark.parametrize("changed, reinstalled", [(None, False), ("pyproject.toml", True),
                                                  ("scripts/setup_env.sh", True)])
def test_setup_env_reinstalls_when_the_dependencies_or_the_torch_pin_change(tmp_path, changed, reinstalled):
    """The install stamp is older than pyproject.toml (the dependencies) or setup_env.sh (the PyTorch pin): install
    again; newer than both: nothing to do. On a copy of the two files, their times set here."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("pyproject.toml", "scripts/setup_env.sh"):
        shutil.copy(REPO / name, repo / name)
        os.utime(repo / name, (1_000_000, 1_000_000))
    stamp = tmp_path / "venv" / ".lookahead-installed"
    stamp.parent.mkdir(parents=True)
    stamp.touch()
    os.utime(stamp, (2_000_000, 2_000_000))
    if changed:
        os.utime(repo / changed, (3_000_000, 3_000_000))
    result, log = run_setup_env(tmp_path, 8 * 1024 * 1024, torch_installed=True, repo=repo)
    assert result.returncode == 0, result.stderr
    assert log.count("-m pip install") == (3 if reinstalled else 0)
