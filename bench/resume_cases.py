"""Resume after a kill during a checkpoint write (issue 12 §3), run against one or more checkouts (before / after).

    python bench/resume_cases.py --repo /path/to/old/checkout --repo /path/to/new/checkout [--json out.json]

Per checkout, in a child interpreter with that checkout's ``src`` and ``tests`` first on ``sys.path`` (its own
``train.py``, ``tests/synthetic.py`` data and ``tests/test_train.run`` flags): one uninterrupted 4-step
``mask_concat`` run on a tiny random BERT (as tests/test_train.py builds it) with checkpoints at steps 2 and 4,
then one resume per case, each in a fresh folder holding a whole ``checkpoint-2`` and:

* ``clean kill after checkpoint-2``: nothing else (the job was killed between checkpoints);
* ``killed writing <file>``: a ``checkpoint-4`` with the model's config and tokenizer files, the files the
  Trainer writes before ``<file>`` whole, and ``<file>`` torn (its first half), for each file of
  ``CHECKPOINT_WRITES`` in the order the Trainer writes them.

Each resume is ``--resume_from_checkpoint last-checkpoint``; the table gives the checkpoint it resumed from (its
log's "resuming from" line, else the path in its error), the outcome (finished, or the exception), the training
steps it logged, and whether its test predictions equal the uninterrupted run's (exactly, and router scores
within 1e-6).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r'''
import json, re, shutil, sys, tempfile, traceback
from pathlib import Path
repo = Path(sys.argv[1])
sys.path[:0] = [str(repo / "src"), str(repo / "tests")]
from synthetic import write_synthetic_data
import test_train
from test_pretrained_router import save_tiny_bert

CHECKPOINT_WRITES = ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"]
OPTIONS = ["--max_steps", "4", "--save_steps", "2", "--eval_steps", "2", "--mask_length", "3",
           "--save_total_limit", "3"]
root = Path(tempfile.mkdtemp(prefix="resume-cases-"))
try:
    data_dir = write_synthetic_data(root / "data")
    save_tiny_bert(root / "bert")
    whole = root / "whole"
    test_train.run("mask_concat", str(root / "bert"), data_dir, whole, *OPTIONS)
    expected = test_train.predictions(whole)

    cases = [("clean kill after checkpoint-2", None)] + [(f"killed writing {name}", k)
                                                        for k, name in enumerate(CHECKPOINT_WRITES)]
    rows = []
    for label, kill_after in cases:
        folder = root / f"case-{len(rows)}"
        shutil.copytree(whole / "checkpoint-2", folder / "checkpoint-2")
        if kill_after is not None:
            partial = folder / "checkpoint-4"
            partial.mkdir()
            for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
                if (whole / "checkpoint-4" / name).exists():
                    shutil.copy(whole / "checkpoint-4" / name, partial / name)
            for name in CHECKPOINT_WRITES[:kill_after]:
                shutil.copy(whole / "checkpoint-4" / name, partial / name)
            torn = (whole / "checkpoint-4" / CHECKPOINT_WRITES[kill_after]).read_bytes()
            (partial / CHECKPOINT_WRITES[kill_after]).write_bytes(torn[:len(torn) // 2])
        outcome, error = "finished", ""
        try:
            test_train.run("mask_concat", str(root / "bert"), data_dir, folder, *OPTIONS,
                           "--resume_from_checkpoint", "last-checkpoint")
        except BaseException as exc:  # SystemExit included: what the user would see
            outcome = f"{type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''}"
            error = traceback.format_exc()
        log_path = folder / "train.log"
        log = log_path.read_text() if log_path.exists() else ""
        resumed = re.findall(r"resuming from (\S+)", log)
        if resumed:
            source = Path(resumed[-1].rstrip(".,;")).name
        else:
            named = re.findall(r"checkpoint-\d+", error)
            source = f"{named[-1]} (named in the error)" if named else "-"
        steps = [int(m) for m in re.findall(r"step (\d+):[^\n]*\{\"loss\"", log)]
        same = None
        if outcome == "finished" and (folder / "test_predictions" / "GSM8k.json").exists():
            got = test_train.predictions(folder)
            same = (len(got) == len(expected)
                    and all(a["choice"] == b["choice"] and all(abs(x - y) <= 1e-6 for x, y in
                            zip(a["router_scores"], b["router_scores"])) for a, b in zip(got, expected)))
        rows.append({"case": label, "resumed from": source, "outcome": outcome, "steps logged": steps,
                     "predictions = uninterrupted run": same})
    print("RESULT " + json.dumps(rows))
finally:
    shutil.rmtree(root, ignore_errors=True)
'''


def run_checkout(repo: Path, python: str) -> list[dict]:
    done = subprocess.run(["nice", "-n", "10", python, "-c", CHILD, str(repo)], cwd=repo, capture_output=True,
                          text=True, timeout=3000)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(f"{repo}: the child failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", action="append", required=True, type=Path, help="A checkout (repeatable).")
    parser.add_argument("--python", default=sys.executable, help="Interpreter for the runs.")
    parser.add_argument("--json", type=Path, help="Also write the results here (JSON: checkout -> rows).")
    args = parser.parse_args(argv)
    results = {}
    for repo in args.repo:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        results[commit] = run_checkout(repo.resolve(), args.python)
    print("| checkout | case | resumed from | outcome | steps logged | predictions = uninterrupted run |")
    print("|---|---|---|---|---|---|")
    for commit, rows in results.items():
        for row in rows:
            same = {True: "yes", False: "**no**", None: "-"}[row["predictions = uninterrupted run"]]
            print(f"| {commit} | {row['case']} | {row['resumed from']} | {row['outcome'].replace('|', '/')} | "
                  f"{row['steps logged']} | {same} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
