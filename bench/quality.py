"""The quality study: routers x seeds on the cross-fitted protocol, one table with spread and intervals.

    python bench/quality.py --config bench/quality_cpu.yaml --output_dir output/quality [--jobs 2]

The config (YAML) names what to compare::

    data_dir: data                       # optional (default: data, else compressed_data)
    train_datasets: [SelfOSSInstructSC2_filtered2/responses]
    test_datasets: [AlpacaEval, ...]     # optional: all seven
    candidate_llms: [...]                # optional: the paper's five
    folds: 2                             # cross-fitting (data.cross_fit)
    seeds: [42, 43, 44]
    bootstrap_draws: 1000
    baselines:                           # routers.ROUTERS name -> constructor arguments (seeded ones get each seed)
      knn: {n_neighbors: 10}
      task: {}
    train_args: [--backbone_name_or_path, packaged:all-minilm-l6-v2, ...]   # train.py flags of every trained router
    routers:                             # trained routers: row name -> stage and its own train.py flags
      "classifier (sc)": {stage: sc, args: [--max_length, "130"]}
      "Lookahead-MLM": {stage: mask_concat, args: [--mask_length, "16"], seeds: [42, 43]}   # seeds: its own
    reference: "classifier (sc)"         # optional: a trained row every other is also compared with

Rows: oracle, best fixed (the best candidate of each benchmark, in hindsight), best fixed (other fold) (each
benchmark's best candidate on its other cross-fit folds: told the benchmark, no hindsight; ``other_fold_best_fixed``),
random, each baseline, each trained router. Columns: each benchmark's headline metric, mean gap_closed and mean
over_random (``metrics``), as mean ± std over the seeds for rows that depend on a seed. Beside each trained router:
the paired bootstrap over queries (each benchmark's queries resampled with replacement, the same draws for every row,
``bootstrap_draws`` draws, seeded) of the difference in mean gap_closed to the strongest baseline row (and to
``reference``): its 95% interval. The bootstrap scores a routing by the mean of its per-query routing scores
(``record["scores"]``: exactly the headline for the accuracy benchmarks and MT-Bench's mean turn score when both turns
are judged; AlpacaEval's raw preference rather than the length-controlled rate, ArenaHard's mean game outcome rather
than the Bradley-Terry rate), with best fixed and oracle recomputed on each draw; the per-seed gap_closed values are
averaged within each draw. Also: the share of queries two seeds of one router route to the same candidate.

Trained routers run ``src/train.py`` once per (router, seed, fold) with ``--cross_fit_only_fold`` (``--jobs``
folds at a time as processes, each with cpu_count / jobs threads; ``--jobs 1``: in this process), then once more
to merge the folds; everything resumes: a
finished fold is not retrained, an interrupted one continues from its newest complete checkpoint, baselines
are cached (in ``--runs_dir``, by default ``--output_dir``: studies that share it share their rows' runs). Writes ``quality.md`` (the table, the intervals, the agreement, the wall times and the command)
and ``quality.json`` in ``--output_dir``, and prints the table.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import inspect
import itertools
import logging
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import metrics  # noqa: E402
from data import BENCHMARKS, PAPER_CANDIDATES, load_benchmark, load_train_set, resolve_train_set  # noqa: E402
from data.cross_fit import cross_fit_predict  # noqa: E402
from eval_baseline import predict  # noqa: E402
from model.backbones import cache_dir  # noqa: E402
from routers import build_router, router_class  # noqa: E402
from runs import METRICS, has_predictions, read_predictions  # noqa: E402
from utils.cli import default_data_dir  # noqa: E402
from utils.io import DataError, atomic_write_text, read_json, write_json  # noqa: E402

logger = logging.getLogger("quality")
ORACLE, BEST_FIXED, OTHER_FOLD_BEST = "oracle", "best fixed (hindsight)", "best fixed (other fold)"
BASELINE_NAMES = {"random": "random", "knn": "kNN", "hard_cluster": "hard clusters", "soft_cluster": "soft clusters",
                  "task": "task-aware"}


# ----- the bootstrap -----

def gap_closed_draws(utilities: dict[str, np.ndarray], choices: dict[str, list[np.ndarray]],
                     indices: dict[str, np.ndarray]) -> np.ndarray:
    """Mean gap_closed over the benchmarks of one row on each bootstrap draw, averaged over the row's seeds.

    utilities[b]  [n_b, k] per-query scores of benchmark b
    choices[b]    one [n_b] choice vector per seed
    indices[b]    [draws, n_b] resampled query indices (the same for every row: paired)
    Returns [draws]. Benchmarks where oracle == best fixed on a draw are left out of that draw's mean."""
    per_benchmark = []
    for name, utility in utilities.items():
        idx = indices[name]
        resampled = utility[idx]                                  # [draws, n_b, k]
        best_fixed = resampled.mean(axis=1).max(axis=1)           # [draws]
        oracle = resampled.max(axis=2).mean(axis=1)
        denominator = oracle - best_fixed
        seeds = []
        for choice in choices[name]:
            routed = np.take_along_axis(utility, choice[:, None], axis=1)[:, 0][idx].mean(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                seeds.append(np.where(denominator > 0, (routed - best_fixed) / np.where(denominator > 0, denominator, 1),
                                      np.nan))
        per_benchmark.append(np.mean(seeds, axis=0))
    stacked = np.stack(per_benchmark)
    defined = (~np.isnan(stacked)).sum(axis=0)
    return np.where(defined > 0, np.nansum(stacked, axis=0) / np.maximum(defined, 1), np.nan)


def bootstrap_indices(sizes: dict[str, int], draws: int, seed: int) -> dict[str, np.ndarray]:
    """[draws, n_b] query indices drawn with replacement per benchmark (seeded)."""
    generator = np.random.default_rng(seed)
    return {name: generator.integers(0, size, size=(draws, size)) for name, size in sizes.items()}


def interval(differences: np.ndarray) -> dict:
    """Mean and 95% percentile interval of a bootstrap distribution."""
    low, high = np.percentile(differences, [2.5, 97.5])
    return {"mean": float(np.mean(differences)), "low": float(low), "high": float(high)}


def seed_agreement(runs: list[dict[str, np.ndarray]]) -> float | None:
    """Share of queries (all benchmarks pooled) two seeds route to the same candidate, averaged over seed pairs."""
    if len(runs) < 2:
        return None
    shares = []
    for first, second in itertools.combinations(runs, 2):
        same = sum(int((first[name] == second[name]).sum()) for name in first)
        shares.append(same / sum(len(first[name]) for name in first))
    return float(np.mean(shares))


def other_fold_best_fixed(benchmarks: dict[str, list[dict]], folds: int) -> dict[str, np.ndarray]:
    """{benchmark: [n] choices}: every query routed to the candidate with the highest mean score over the queries of
    its own benchmark in the other cross-fit folds (ties to the lower index).

    A reference, not a baseline: it is told each query's benchmark, which a router must infer, and it learns from
    the same other-fold labels as the cross-fitted routers, without the hindsight of ``best fixed (hindsight)``
    (the best candidate of the very queries it is scored on). Where two candidates are within noise of each other
    on a benchmark, the hindsight pick is out of reach of anything that chooses before seeing the test fold: the
    gap between this row and 0 is what per-query routing has to make up before mean gap_closed can reach 0. The folds
    are ``cross_fit_predict``'s, the driver that trains the routers."""
    choices = {}
    for name, records in benchmarks.items():
        def predict_fold(fold: int, pool: list[dict], in_fold: dict[str, list[dict]], name: str = name):
            # pool: the benchmark's other-fold records (no training set is passed); [k] mean scores -> one choice
            choice = int(np.argmax(np.mean([record["scores"] for record in pool], axis=0))) if pool else 0
            return {name: [{"prompt_id": record["prompt_id"], "choice": choice} for record in in_fold[name]]}
        rows = cross_fit_predict([], {name: records}, folds, predict_fold)[name]
        choices[name] = np.array([row["choice"] for row in rows], dtype=int)
    return choices


# ----- running the routers -----

class Study:
    """One study: the config, the data, and where its runs live."""

    def __init__(self, config: dict, output_dir: Path, jobs: int, runs_dir: Path | None = None):
        self.config = config
        self.output_dir = output_dir
        self.runs_dir = runs_dir or output_dir  # holds runs/ and baselines/: several studies can share them
        self.jobs = jobs
        self.data_dir = str(config.get("data_dir") or default_data_dir())
        self.candidates = list(config.get("candidate_llms") or PAPER_CANDIDATES)
        self.test_sets = list(config.get("test_datasets") or BENCHMARKS)
        self.train_sets = list(config.get("train_datasets") or ["SelfOSSInstructSC2_filtered2/responses"])
        self.folds = int(config.get("folds", 2))
        self.seeds = [int(seed) for seed in config.get("seeds", [42, 43, 44])]
        self.draws = int(config.get("bootstrap_draws", 1000))
        self.benchmarks = {name: load_benchmark(name, self.data_dir, self.candidates) for name in self.test_sets}
        self.wall_times: dict[str, float] = {}

    def training_records(self) -> list[dict]:
        records = []
        for entry in self.train_sets:
            set_dir, score_dir = resolve_train_set(entry, self.data_dir)
            records += load_train_set(set_dir, self.candidates, score_dir, split="train")
        return records

    # baselines: routers.ROUTERS, cross-fitted like eval_baseline.py, cached per (router, seed)
    def baseline_runs(self, router_type: str, kwargs: dict) -> list[dict[str, np.ndarray]]:
        seeded = "seed" in inspect.signature(router_class(router_type)).parameters
        runs = []
        for seed in self.seeds if seeded else [None]:
            cache = self.runs_dir / "baselines" / f"{router_type}{'' if seed is None else f'_seed{seed}'}.json"
            if cache.exists():
                runs.append({name: np.array(choice) for name, choice in read_json(cache).items()})
                continue
            arguments = {**kwargs, **({"seed": seed} if seeded else {})}
            started = time.perf_counter()
            rows = predict(lambda: build_router(router_type, **arguments), self.training_records(), self.benchmarks,
                           self.folds)
            choices = {name: [row["choice"] for row in rows[name]] for name in self.benchmarks}
            write_json(cache, choices, indent=None)
            self.wall_times[f"{router_type} seed {seed}"] = time.perf_counter() - started
            runs.append({name: np.array(choice) for name, choice in choices.items()})
        return runs

    # trained routers: src/train.py per (router, seed, fold), then a merge
    def run_dir(self, name: str, seed: int) -> Path:
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.runs_dir / "runs" / slug / f"seed{seed}"

    def train_command(self, spec: dict, seed: int, run_dir: Path, fold: int | None) -> list[str]:
        command = [sys.executable, str(REPO / "src" / "train.py"), spec["stage"],
                   "--data_dir", self.data_dir, "--train_datasets", *self.train_sets, "--test_datasets",
                   *self.test_sets, "--candidate_llms", *self.candidates,
                   *[str(arg) for arg in self.config.get("train_args", [])], *[str(arg) for arg in spec.get("args", [])],
                   "--cross_fit_folds", str(self.folds), "--seed", str(seed), "--output_dir", str(run_dir),
                   "--resume_from_checkpoint", "last-checkpoint", "--disable_tqdm", "True"]
        return command + (["--cross_fit_only_fold", str(fold)] if fold is not None else [])

    def check_run_flags(self, name: str, spec: dict, seed: int) -> None:
        """A run folder is reused only for the same flags: the first use records them (``quality_flags.json``)."""
        run_dir = self.run_dir(name, seed)
        flags = self.train_command(spec, seed, run_dir, None)[2:]
        record = run_dir / "quality_flags.json"
        if record.exists() and read_json(record) != flags:
            raise DataError(f"{record}: row {name!r} ran with other flags ({shlex.join(read_json(record))}); name the "
                            f"row differently or remove {run_dir}.")
        write_json(record, flags)

    def fold_done(self, run_dir: Path, fold: int) -> bool:
        return has_predictions(run_dir / f"fold_{fold}", self.test_sets)

    def run_trained(self, routers: dict[str, dict], merge: bool = True) -> None:
        """Train every missing (router, seed, fold): with ``jobs`` > 1 as that many ``src/train.py`` processes at a
        time (each with cpu_count / jobs threads), else in this process; then merge each run's folds (in this
        process: train.py finds every fold's predictions written and only merges them)."""
        import train

        for name, spec in routers.items():
            for seed in self.row_seeds(name):
                self.check_run_flags(name, spec, seed)
        tasks = [(name, seed, fold) for name in routers for seed in self.row_seeds(name) for fold in range(self.folds)
                 if not self.fold_done(self.run_dir(name, seed), fold)]
        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                       "TOKENIZERS_PARALLELISM": "false"}

        def run(task):
            name, seed, fold = task
            run_dir = self.run_dir(name, seed)
            run_dir.mkdir(parents=True, exist_ok=True)
            command = self.train_command(routers[name], seed, run_dir, fold)
            logger.info("start %s seed %d fold %d: %s", name, seed, fold, shlex.join(command[1:]))
            started = time.perf_counter()
            if self.jobs > 1:
                with open(run_dir / f"fold_{fold}.log", "a", encoding="utf-8") as log:
                    code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=environment,
                                          cwd=REPO).returncode
                if code != 0:
                    raise RuntimeError(f"{name} seed {seed} fold {fold} failed (exit {code}); see "
                                       f"{run_dir}/fold_{fold}.log")
            else:
                train.main(command[2:])
            seconds = time.perf_counter() - started
            write_json(run_dir / f"fold_{fold}_wall_time.json", {"seconds": seconds})
            logger.info("done %s seed %d fold %d in %.0fs", name, seed, fold, seconds)

        with concurrent.futures.ThreadPoolExecutor(max_workers=self.jobs) as pool:
            for future in concurrent.futures.as_completed([pool.submit(run, task) for task in tasks]):
                future.result()
        for name in routers if merge else []:
            for seed in self.row_seeds(name):
                if not (self.run_dir(name, seed) / METRICS).exists():
                    train.main(self.train_command(routers[name], seed, self.run_dir(name, seed), None)[2:])

    def row_seeds(self, name: str) -> list[int]:
        """The seeds of a trained row: its own ``seeds`` in the config, else the study's."""
        return [int(seed) for seed in self.config["routers"][name].get("seeds", self.seeds)]

    def trained_runs(self, name: str) -> list[dict[str, np.ndarray]]:
        runs = []
        for seed in self.row_seeds(name):
            run_dir = self.run_dir(name, seed)
            runs.append({bench: np.array([row["choice"] for row in read_predictions(run_dir, bench)])
                         for bench in self.test_sets})
        return runs

    def trained_wall_time(self, name: str) -> float:
        return sum(read_json(path)["seconds"] for seed in self.row_seeds(name)
                   for path in self.run_dir(name, seed).glob("fold_*_wall_time.json"))


# ----- the table -----

def summarize_runs(study: Study, runs: list[dict[str, np.ndarray]]) -> list[dict]:
    difficulty_cache = cache_dir()
    return [metrics.evaluate_benchmarks(study.benchmarks, {name: run[name].tolist() for name in study.benchmarks},
                                        study.data_dir, candidate_names=study.candidates, cache_dir=difficulty_cache)
            for run in runs]


def row_statistics(summaries: list[dict], benchmarks: list[str]) -> dict:
    """{column: (mean, std)} over the summaries (std 0 for one)."""
    columns = {name: [summary[name]["score"] for summary in summaries] for name in benchmarks}
    columns["mean gap_closed"] = [summary["mean_gap_closed"] for summary in summaries]
    columns["mean over_random"] = [summary["mean_over_random"] for summary in summaries]
    return {column: (float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
            for column, values in columns.items()}


def cell(mean: float, std: float, digits: int, seeded: bool) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if seeded else f"{mean:.{digits}f}"


def format_interval(result: dict | None) -> str:
    if result is None:
        return "–"
    marker = " **>0**" if result["low"] > 0 else (" <0" if result["high"] < 0 else "")
    return f"{result['mean']:+.3f} [{result['low']:+.3f}, {result['high']:+.3f}]{marker}"


def run_study(config: dict, output_dir: Path, jobs: int, command: str, train_only: bool = False,
              runs_dir: Path | None = None) -> dict:
    started = time.perf_counter()
    study = Study(config, output_dir, jobs, runs_dir)
    if train_only:  # e.g. on a GPU machine with a record pack: the folds' predictions, scored later on the full data
        study.run_trained(dict(config.get("routers") or {}), merge=False)
        return {}
    benchmarks = study.test_sets
    rows: dict[str, dict] = {}  # name -> {"kind", "runs"}

    oracle = {name: np.array([record["best_model_idx"] for record in records]) for name, records in study.benchmarks.items()}
    rows[ORACLE] = {"kind": "reference", "runs": [oracle]}
    rows[BEST_FIXED] = {"kind": "reference", "runs": []}
    rows[OTHER_FOLD_BEST] = {"kind": "reference", "runs": [other_fold_best_fixed(study.benchmarks, study.folds)]}
    for router_type, kwargs in {"random": {}, **(config.get("baselines") or {})}.items():
        kwargs = dict(kwargs or {})
        label = BASELINE_NAMES.get(router_type, router_type)
        detail = ", ".join(f"{key}={value}" for key, value in kwargs.items())
        rows[f"{label} ({detail})" if detail else label] = {"kind": "baseline", "runs": study.baseline_runs(router_type, kwargs)}
    routers = dict(config.get("routers") or {})
    study.run_trained(routers)
    for name in routers:
        rows[name] = {"kind": "trained", "runs": study.trained_runs(name)}

    # headline metrics
    for name, row in rows.items():
        if name == BEST_FIXED:
            continue
        row["summaries"] = summarize_runs(study, row["runs"])
    reference_summary = rows[ORACLE]["summaries"][0]
    best_fixed_summary = {name: {"score": reference_summary[name]["best_fixed"]} for name in benchmarks}
    best_fixed_summary["mean_gap_closed"] = 0.0
    over_random = [(reference_summary[name]["best_fixed"] - reference_summary[name]["random"])
                   / (reference_summary[name]["oracle"] - reference_summary[name]["random"]) for name in benchmarks
                   if reference_summary[name]["oracle"] != reference_summary[name]["random"]]
    best_fixed_summary["mean_over_random"] = float(np.mean(over_random)) if over_random else None
    rows[BEST_FIXED]["summaries"] = [best_fixed_summary]
    for row in rows.values():
        row["stats"] = row_statistics(row["summaries"], benchmarks)

    # the bootstrap
    utilities = {name: np.array([record["scores"] for record in records], dtype=float)
                 for name, records in study.benchmarks.items()}
    indices = bootstrap_indices({name: len(u) for name, u in utilities.items()}, study.draws, int(config.get("bootstrap_seed", 0)))
    draws = {name: gap_closed_draws(utilities, {b: [run[b] for run in row["runs"]] for b in benchmarks}, indices)
             for name, row in rows.items() if row["runs"]}
    baselines = [name for name, row in rows.items() if row["kind"] == "baseline"]
    strongest = max(baselines, key=lambda name: rows[name]["stats"]["mean gap_closed"][0]) if baselines else None
    reference = config.get("reference")
    for name, row in rows.items():
        if row["kind"] != "trained":
            continue
        row["versus"] = {other: interval(draws[name] - draws[other]) for other in draws if other != name}
        row["agreement"] = seed_agreement(row["runs"])
        row["wall_time_s"] = study.trained_wall_time(name)

    # the report
    seeded_rows = {name for name, row in rows.items() if len(row["runs"]) > 1}
    header = ["router", *benchmarks, "mean gap_closed", "mean over_random", f"Δ gap_closed vs {strongest} [95% CI]"]
    if reference in rows and rows[reference]["kind"] == "trained":
        header.append(f"Δ vs {reference} [95% CI]")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        stats = row["stats"]
        cells = [cell(*stats[b], 2, name in seeded_rows) for b in benchmarks]
        cells += [cell(*stats["mean gap_closed"], 3, name in seeded_rows),
                  cell(*stats["mean over_random"], 3, name in seeded_rows)]
        versus = row.get("versus", {})
        cells.append(format_interval(versus.get(strongest)))
        if len(header) > len(cells) + 1:
            cells.append(format_interval(versus.get(reference)) if name != reference else "–")
        seeds = len(row["runs"])
        label = (f"{name} ({seeds} seed{'s' if seeds > 1 else ''})"
                 if name in seeded_rows or row["kind"] == "trained" else name)
        lines.append("| " + " | ".join([label, *cells]) + " |")
    table = "\n".join(lines) + "\n"
    trained = [name for name, row in rows.items() if row["kind"] == "trained"]
    notes = [f"Seeds: {', '.join(map(str, study.seeds))}; {study.folds}-fold cross-fitting; bootstrap: {study.draws} "
             f"paired draws over each benchmark's queries (per-query routing scores); strongest baseline: {strongest}."]
    for name in trained:
        agreement = rows[name]["agreement"]
        notes.append(f"- {name}: seeds agree on {agreement:.1%} of the test queries; training wall time "
                     f"{rows[name]['wall_time_s'] / 60:.1f} min (all seeds and folds)." if agreement is not None else
                     f"- {name}: training wall time {rows[name]['wall_time_s'] / 60:.1f} min.")
    wall = time.perf_counter() - started
    notes.append(f"Study wall time (this invocation): {wall / 60:.1f} min. Command: `{command}`")
    report = table + "\n" + "\n".join(notes) + "\n"
    atomic_write_text(output_dir / "quality.md", report)
    write_json(output_dir / "quality.json", {
        "config": config, "command": command, "strongest_baseline": strongest, "seeds": study.seeds,
        "rows": {name: {"kind": row["kind"], "seeds": len(row["runs"]),
                        "stats": {column: {"mean": mean, "std": std} for column, (mean, std) in row["stats"].items()},
                        "per_seed_mean_gap_closed": [summary["mean_gap_closed"] for summary in row["summaries"]],
                        **({"versus": row["versus"], "seed_agreement": row["agreement"],
                            "wall_time_s": row["wall_time_s"]} if row["kind"] == "trained" else {})}
                 for name, row in rows.items()},
        "wall_time_s": wall})
    print(report, end="")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="The study's YAML config (see the module docstring).")
    parser.add_argument("--output_dir", required=True, help="Where the runs, quality.md and quality.json go.")
    parser.add_argument("--jobs", type=int, default=2, help="Folds trained at a time (default 2).")
    parser.add_argument("--data_dir", help="Overrides the config's data_dir (e.g. a record pack on a GPU machine).")
    parser.add_argument("--runs_dir", help="Where the runs/ and baselines/ live (default: --output_dir); a study that "
                                           "shares rows with another (same name, same flags) reuses its runs.")
    parser.add_argument("--train_only", action="store_true",
                        help="Only train the routers' folds (no baselines, no merge, no table): for a machine with a "
                             "record pack (data.packs); a later run on the full data finds the folds done.")
    args = parser.parse_args(argv)
    try:
        config = yaml.safe_load(Path(args.config).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SystemExit(f"error: --config {args.config}: {error}") from None
    if not isinstance(config, dict):
        raise SystemExit(f"error: --config {args.config}: expected a mapping of settings (see bench/quality.py).")
    if args.data_dir:
        config["data_dir"] = args.data_dir
    for name, spec in (config.get("routers") or {}).items():
        if not isinstance(spec, dict) or "stage" not in spec:
            raise SystemExit(f"error: --config {args.config}: router {name!r} needs a stage (and optional args).")
    command = shlex.join(["python", "bench/quality.py", *(argv if argv is not None else sys.argv[1:])])
    try:
        run_study(config, Path(args.output_dir), args.jobs, command, args.train_only,
                  Path(args.runs_dir) if args.runs_dir else None)
    except (DataError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main()
