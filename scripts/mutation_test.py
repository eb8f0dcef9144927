"""Mutation testing (mutmut) of the modules whose numbers we publish, each against its fast test files only.

    nice -n 19 python scripts/mutation_test.py [MODULE ...] [--output_dir output/mutation] [--max_children 1]

MODULE is a key of ``MODULES`` (default: all). For each module a scratch copy of ``src/``, ``tests/`` and
``pyproject.toml`` is made under ``<output_dir>/work/<module>/`` with a ``[tool.mutmut]`` section that mutates
that module alone and runs its test files; ``mutmut run`` (one worker by default) tries every mutant, each a
one-token change of one function (mutmut runs only the tests that call that function, stopping at the first
failure). Per module the script writes ``<output_dir>/<module>.md``: the score and every mutant that no test
killed, with its diff, marked "equivalent" where ``docs/mutation_testing.md`` lists it (with the reason), and
prints a table of the scores.

Run again over an existing output folder, it keeps the verdicts of mutants already killed while the module's
source is unchanged, copies the current tests and retries only the others (adding tests cannot revive a
killed mutant; a changed source starts the module afresh, and so does a changed test list: mutmut then
re-checks every mutant).

Score = (killed + timed out + crashed) / mutants; "score excl. equivalent" leaves out the mutants listed as equivalent.
A slow target, not part of the default test run: the whole list takes about an hour on two busy cores
(``MODULES`` notes the slow ones). Needs the ``test`` extra (``pip install -e ".[test]"``: mutmut).

``src/rewards/sandbox_runner.py`` is not in the list: it runs only inside the sandboxed child process, whose
environment is cleared, so mutmut's switch (an environment variable read in the test process) never reaches
it; ``tests/hostile_corpus.py`` and the sandbox tests are its check.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "docs" / "mutation_testing.md"

# key: (source file, its fast test files, mutant-name globs (None: every function of the file; "!": leave out))
MODULES: dict[str, tuple[str, list[str], list[str] | None]] = {
    "metrics": ("src/metrics.py", ["tests/test_metrics.py"], None),
    "alpaca_lc": ("src/utils/alpaca_lc.py", ["tests/test_metrics.py"], None),
    "losses": ("src/model/losses.py", ["tests/test_losses.py"], None),
    "cross_fit": ("src/data/cross_fit.py", ["tests/test_cross_fit.py"], None),
    # the cross-fit path of train.py only; its tests train tiny routers (~10 s a mutant)
    "train_cross_fit": ("src/train.py", ["tests/test_train.py"],
                        ["train.x_run_cross_fit__mutmut_*", "train.x_write_fold_eval_results__mutmut_*",
                         "train.x_subsample__mutmut_*"]),
    "packing": ("src/model/packing.py", ["tests/test_packing.py"], None),
    # the cost-aware routing (issue 14 split src/cost.py by job into these four files)
    "policy": ("src/routers/policy.py", ["tests/test_cost.py"], None),
    "cost_curves": ("src/cost_curves.py", ["tests/test_cost.py"], None),
    "candidates": ("src/candidates.py", ["tests/test_cost.py"], None),
    # not main: the calibration command's argument parsing (mostly --help texts); test_cost.py runs it once
    "calibrate": ("src/calibrate.py", ["tests/test_cost.py"], ["calibrate.*", "!calibrate.x_main__mutmut_*"]),
    "sandbox": ("src/rewards/sandbox.py", ["tests/test_rewards_unit_tests.py", "tests/test_sandbox_unit.py"], None),
}
KILLED = {"killed", "timeout", "segfault", "crashed"}  # a test process that crashes on the mutant fails the suite too
# mutmut's exit-code meaning (mutmut.stats.status_by_exit_code), for the ones a run leaves
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", -11: "segfault", -9: "segfault",
          -6: "crashed",  # SIGABRT (not in mutmut's table): the test process aborted
          None: "not checked"}
# what mutmut and prepare() put in the folder the mutants run in; anything else there was written by a test
MUTANTS_FOLDER = {"src", "tests", "data", "compressed_data", "pyproject.toml", "mutmut-stats.json"}


def mutmut_config(source: str, tests: list[str]) -> str:
    return "\n".join([
        "", "[tool.mutmut]",
        'source_paths = ["src"]',
        f'only_mutate = ["{source}"]',
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]',
        'process_isolation = "forkserver"',  # torch is not fork-safe once the suite has run in the parent
        "use_git_change_detection = false", ""])


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(work: Path, source: str, tests: list[str]) -> bool:
    """Lay out ``work`` (a fresh copy of ``src/``, ``tests/`` and the config); True when the verdicts of an
    earlier run there still hold (the module's source is unchanged)."""
    stamp = work / "source.sha256"
    keep = stamp.exists() and stamp.read_text() == source_hash(ROOT / source)
    if not keep and work.exists():
        shutil.rmtree(work)
    for name in ("src", "tests"):
        shutil.rmtree(work / name, ignore_errors=True)
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + mutmut_config(source, tests))
    (work / "mutants").mkdir(exist_ok=True)
    for name in ("data", "compressed_data"):  # the paper's data, for tests that read it
        for folder in (work, work / "mutants"):
            if (ROOT / name).exists() and not (folder / name).is_symlink():
                (folder / name).symlink_to((ROOT / name).resolve())
    stamp.write_text(source_hash(ROOT / source))
    return keep


def remove_leftovers(mutants: Path) -> list[str]:
    """Delete what tests wrote into the mutants' working folder (a mutant that changes an output path can leave a
    run folder there, which later mutants then read: one let ``from_pretrained(None)`` find a ``None/``
    router); returns the names deleted."""
    leftovers = sorted(p.name for p in mutants.iterdir() if p.name not in MUTANTS_FOLDER) if mutants.exists() else []
    for name in leftovers:
        path = mutants / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return leftovers


def verdicts(work: Path, source: str) -> dict[str, str]:
    meta = json.loads((work / "mutants" / (source + ".meta")).read_text())
    return {name: STATUS.get(code, "suspicious") for name, code in meta["exit_code_by_key"].items()}


def selected(names, globs: list[str] | None) -> list[str]:
    """The mutant names matching a glob of ``globs`` and none of its ``!``-globs (None: every name)."""
    if globs is None:
        return list(names)

    def match(glob, name):
        return re.fullmatch(glob.replace(".", r"\.").replace("*", ".*"), name)

    keep, drop = [g for g in globs if not g.startswith("!")], [g[1:] for g in globs if g.startswith("!")]
    return [n for n in names if any(match(g, n) for g in keep) and not any(match(g, n) for g in drop)]


def mutmut(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from mutmut.__main__ import cli; cli()", *args], cwd=work,
                          text=True, capture_output=True)


DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
path = sys.argv[1]
print(json.dumps({name: get_diff_for_mutant(name, path=path) for name in json.loads(sys.stdin.read())}))
"""


def diffs_of(work: Path, source: str, names: list[str]) -> dict[str, tuple[str, str]]:
    """``{mutant: ("function: the mutated lines", diff)}`` (one process for all, as ``mutmut show`` prints them)."""
    if not names:
        return {}
    run = subprocess.run([sys.executable, "-c", DIFFS, source], cwd=work, input=json.dumps(names), text=True,
                         capture_output=True, check=True)
    found = {}
    for name, text in json.loads(run.stdout).items():
        mangled = name.rsplit(".", 1)[1].split("__mutmut_")[0]  # x_function or xǁClassǁmethod
        function = mangled[2:].replace("ǁ", ".")
        added = " / ".join(line[1:].strip() for line in text.splitlines()
                           if line.startswith("+") and not line.startswith("+++"))
        found[name] = (f"{function}: {added}", text)
    return found


def equivalents(module: str) -> dict[str, str]:
    """``{"function: mutated line": reason}`` from the table rows ``| module | function | `line` | reason |`` of
    ``docs/mutation_testing.md`` (a ``|`` inside a cell written ``\\|``; several mutated lines joined by " / ")."""
    found = {}
    if not EQUIVALENTS.exists():
        return found
    for line in EQUIVALENTS.read_text().splitlines():
        cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) == 4 and cells[0] == module:
            found[f"{cells[1]}: {cells[2].strip('`')}"] = cells[3]
    return found


def run_module(module: str, output_dir: Path, max_children: int, report_only: bool = False) -> dict:
    source, tests, globs = MODULES[module]
    work = output_dir / "work" / module
    keep = prepare(work, source, tests)
    meta = work / "mutants" / (source + ".meta")
    args = ["run", "--max-children", str(max_children)]
    if keep and meta.exists():  # retry only the mutants not yet killed (none with --report_only)
        retry = selected([n for n, s in verdicts(work, source).items() if s not in KILLED], globs)
        args = args + retry if retry and not report_only else []
    elif globs:
        args += [g for g in globs if not g.startswith("!")]
    if args:
        remove_leftovers(work / "mutants")
        result = mutmut(work, *args)
        (work / "mutmut_run.log").write_text(result.stdout[-200_000:] + result.stderr[-200_000:])
        leftovers = remove_leftovers(work / "mutants")
        if leftovers:  # written during this run: a mutant checked after them may have read them
            print(f"  warning: tests wrote {', '.join(leftovers)} into the working folder (deleted); run {module} "
                  f"again to recheck its survivors without them", flush=True)
        if "failed to collect stats" in result.stdout + result.stderr:  # mutmut then marks every mutant unkilled
            raise SystemExit(f"error: {', '.join(tests)} fail on the unmutated {source}, so no mutant can be judged; "
                             f"fix the tests first (see {work / 'mutmut_run.log'})")
        if not meta.exists():
            raise SystemExit(f"error: mutmut made no verdicts for {module}; see {work / 'mutmut_run.log'}")
    results = {n: verdicts(work, source)[n] for n in selected(verdicts(work, source), globs)}
    known = equivalents(module)
    survivors = []
    not_killed = sorted((n for n, s in results.items() if s not in KILLED),
                        key=lambda n: (n.split("__mutmut_")[0], int(n.split("__mutmut_")[1])))
    for name, (key, text) in diffs_of(work, source, not_killed).items():
        survivors.append({"name": name, "status": results[name], "key": key, "diff": text,
                          "equivalent": known.get(key)})
    total = len(results)
    killed = sum(s in KILLED for s in results.values())
    n_equivalent = sum(bool(s["equivalent"]) for s in survivors)
    summary = {"module": module, "source": source, "tests": tests, "mutants": total, "killed": killed,
               "equivalent": n_equivalent, "score": killed / total if total else None,
               "score_excl_equivalent": killed / (total - n_equivalent) if total > n_equivalent else None}
    lines = [f"# Mutation testing: {module} ({source})", "",
             f"Tests: {', '.join(tests)}. Mutants: {total}; killed (or timed out, or crashed): {killed}; "
             f"listed as equivalent: {n_equivalent}; score {100 * (summary['score'] or 0):.1f}%, "
             f"excluding equivalents {100 * (summary['score_excl_equivalent'] or 0):.1f}%.", ""]
    stale = sorted(set(known) - {s["key"] for s in survivors})
    summary["stale_equivalents"] = stale
    if stale:  # rows for code that has changed or mutants a test now kills: delete them from the doc
        lines += [f"Rows of {EQUIVALENTS.name} for {module} that match no surviving mutant (delete them):", ""]
        lines += [f"- `{key}`" for key in stale] + [""]
    for s in survivors:
        label = f"equivalent: {s['equivalent']}" if s["equivalent"] else f"**{s['status']}, not explained**"
        lines += [f"## {s['name']} ({label})", "", "```diff", s["diff"].rstrip(), "```", ""]
    (output_dir / f"{module}.md").write_text("\n".join(lines))
    (output_dir / f"{module}.json").write_text(json.dumps({**summary, "survivors": [
        {k: s[k] for k in ("name", "status", "key", "equivalent")} for s in survivors]}, indent=1))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", metavar="MODULE", help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--output_dir", default=str(ROOT / "output" / "mutation"))
    parser.add_argument("--max_children", type=int, default=1)
    parser.add_argument("--report_only", action="store_true",
                        help="rewrite the reports from the verdicts already there (e.g. after editing the list of "
                             "equivalent mutants); run mutmut only for modules without verdicts")
    args = parser.parse_args()
    output_dir = Path(args.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    rows = []
    for module in args.modules or list(MODULES):
        print(f"mutating {module} ...", flush=True)
        summary = run_module(module, output_dir, args.max_children, args.report_only)
        rows.append(summary)
        print(f"  {summary['killed']}/{summary['mutants']} killed, {summary['equivalent']} equivalent"
              + (f", {len(summary['stale_equivalents'])} stale rows of the equivalents list"
                 if summary["stale_equivalents"] else ""), flush=True)
    table = ["| module | mutants | killed | equivalent | score | score excl. equivalent |", "|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['module']} | {r['mutants']} | {r['killed']} | {r['equivalent']} | "
                     f"{100 * (r['score'] or 0):.1f}% | {100 * (r['score_excl_equivalent'] or 0):.1f}% |")
    (output_dir / "summary.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
