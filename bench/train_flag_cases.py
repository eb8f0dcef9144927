"""train.py's bad flags (issue 12 §4), run against one or more checkouts (before / after).

    python bench/train_flag_cases.py --repo /path/to/old/checkout --repo /path/to/new/checkout

The scripts/bad_inputs.py battery does not run ``train.py``; this does, on the bad flags issue 12 names. Per
checkout, in a child interpreter with that checkout's ``src`` and ``tests`` first on ``sys.path``: a tiny random
BERT and the synthetic data folder of its ``tests/synthetic.py``, then per case one ``train.main`` through its
``tests/test_train.run`` (a 2-step ``sc`` run with checkpoints and evaluation at every step, test set GSM8k)
with the case's flags added last (they win over run's own). Per case: the outcome (finished, or the exception's
type and first line), whether the message names the flag, whether training had started (a loss line in the
run's train.log), and the seconds until it returned.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CASES = [
    ("--max_train_samples -5", ["--max_train_samples", "-5"], "--max_train_samples"),
    ("--max_train_samples 0", ["--max_train_samples", "0"], "--max_train_samples"),
    ("--eval_steps 0", ["--eval_steps", "0"], "--eval_steps"),
    ("--test_datasets typo (GSM8K)", ["--test_datasets", "GSM8K"], "--test_datasets"),
    ("--test_datasets 'GSM8k,GSM8K' (list with a typo)", ["--test_datasets", "GSM8k,GSM8K"], "--test_datasets"),
    ("--candidate_llms repeated (A A)", ["--candidate_llms", "A", "A"], "--candidate_llms"),
]

CHILD = r'''
import json, shutil, sys, tempfile, time, re
from pathlib import Path
repo, cases = Path(sys.argv[1]), json.loads(sys.argv[2])
sys.path[:0] = [str(repo / "src"), str(repo / "tests")]
from synthetic import write_synthetic_data
import test_train
from test_pretrained_router import save_tiny_bert

root = Path(tempfile.mkdtemp(prefix="train-flag-cases-"))
try:
    data_dir = write_synthetic_data(root / "data")
    save_tiny_bert(root / "bert")
    rows = []
    for index, (label, flags, flag) in enumerate(cases):
        out = root / f"case-{index}"
        started = time.perf_counter()
        outcome, message = "finished", ""
        try:
            test_train.run("sc", str(root / "bert"), data_dir, out, *flags)
        except BaseException as exc:  # SystemExit included: what the user would see
            message = str(exc)
            outcome = f"{type(exc).__name__}: {message.splitlines()[0][:140] if message else ''}"
        seconds = time.perf_counter() - started
        log = (out / "train.log").read_text() if (out / "train.log").exists() else ""
        rows.append({"case": label, "outcome": outcome, "names the flag": flag in message,
                     "trained first": '{"loss"' in log, "seconds": round(seconds, 1)})
    print("RESULT " + json.dumps(rows))
finally:
    shutil.rmtree(root, ignore_errors=True)
'''


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", action="append", required=True, type=Path, help="A checkout (repeatable).")
    parser.add_argument("--python", default=sys.executable, help="Interpreter for the runs.")
    args = parser.parse_args(argv)
    print("| checkout | case | outcome | names the flag | trained first | s |\n|---|---|---|---|---|---|")
    for repo in args.repo:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        done = subprocess.run(["nice", "-n", "10", args.python, "-c", CHILD, str(repo.resolve()), json.dumps(CASES)],
                              cwd=repo, capture_output=True, text=True, timeout=3000)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if not lines:
            raise SystemExit(f"{repo}: the child failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        for row in json.loads(lines[-1].removeprefix("RESULT ")):
            print(f"| {commit} | {row['case']} | {row['outcome'].replace('|', '/')} | "
                  f"{'yes' if row['names the flag'] else '**no**'} | {'**yes**' if row['trained first'] else 'no'} | "
                  f"{row['seconds']} |", flush=True)


if __name__ == "__main__":
    main()
