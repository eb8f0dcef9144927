"""A markdown report of several runs side by side: benchmark scores, cost-aware metrics and PNG plots.

    python src/report.py output/baselines/knn output/quality/mask_concat_minilm [...] \\
        [--out output/report] [--config candidates.example.yaml] [--data_dir DIR]
    python src/report.py combine RUN_DIR [RUN_DIR ...] [--out results.md]   # the results table only

A run folder holds run_args.json, metrics.json and test_predictions/<benchmark>.json, as ``src/eval_baseline.py``
and ``src/train.py`` write them (``runs``; a cross-fit run's merged predictions). ``combine`` prints one table
with a row per run (``runs.combine_results``), and writes it to ``--out`` when given. The report writes to
``--out``:

    report.md                 the per-benchmark table (``metrics.format_table``); per benchmark, each run's AIQ and
                              the zero router's (mixing the fixed candidates); APGR and CPT(50%) / CPT(80%) for
                              each benchmark's strong / weak pair; the plots below
    quality_cost.png          per benchmark: each run's quality-cost curve over lambda, the fixed candidates and
                              the zero router's hull
    routing_distribution.png  per benchmark: each run's share of queries per candidate
    training_curves.png       training curves (utils.plots) of the runs that were trained here
    cost_analysis.json        every number behind the cost tables and the curves

Cost curves follow ``cost_curves.benchmark_cost_analysis`` (prices from ``--config``: by default
candidates.example.yaml, whose prices are illustrative). They re-read the benchmarks from ``--data_dir``
(default: the first run's data_dir); AlpacaEval's length-controlled win rate along the curves uses the
instruction difficulty fitted on every model's annotations, as eval_baseline.py does. Fixed-candidate runs
(router_type ``fixed``) are points already, so they get no curve. Runs must route the same candidates.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (after choosing the file-only backend)
import numpy as np  # noqa: E402

import cost_curves  # noqa: E402
import metrics  # noqa: E402
from candidates import Price, load_config, prices_from_config  # noqa: E402
from data import BENCHMARKS, load_benchmark  # noqa: E402
from model.backbones import cache_dir  # noqa: E402
from routers.policy import score_kind_of  # noqa: E402
from runs import Run, combine_results, load_run  # noqa: E402
from utils import plots  # noqa: E402
from utils.io import DataError, atomic_write_text, writable_dir, write_json  # noqa: E402

logger = logging.getLogger("report")
PLOT_COLUMNS = 4


def fixed_candidate(run: Run) -> bool:
    """Whether ``run`` sends every query to one candidate (router_type fixed): a point, not a curve."""
    return run.metadata.get("router_type") == "fixed"


def aligned_scores(run: Run, benchmark: str, records: list[dict]) -> np.ndarray:
    """The run's router scores [n, k] in the order of ``records``."""
    by_id = {str(row["prompt_id"]): row["router_scores"] for row in run.predictions[benchmark]}
    missing = [r["prompt_id"] for r in records if str(r["prompt_id"]) not in by_id]
    if missing:
        raise DataError(f"{run.folder / 'test_predictions' / (benchmark + '.json')}: no prediction for prompt_id "
                        f"{missing[0]!r} ({len(missing)} missing); rerun the router on the whole benchmark.")
    return np.array([by_id[str(r["prompt_id"])] for r in records], dtype=float)


# --------------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------------

def analyse(runs: list[Run], data_dir: str, prices: list[Price]) -> dict[str, dict]:
    """{benchmark: {"pair", "fixed", "zero_router_aiq", "runs": {run name: cost_curves.benchmark_cost_analysis}}}."""
    candidates = runs[0].candidates
    benchmarks = [b for b in BENCHMARKS if any(b in run.predictions for run in runs)]
    difficulty = metrics.alpaca_difficulty_for(benchmarks, data_dir, cache_dir())
    analysis = {}
    for benchmark in benchmarks:
        records = load_benchmark(benchmark, data_dir, candidates)
        headline = cost_curves.benchmark_headline(benchmark, records, difficulty)
        per_run = {run.name: cost_curves.benchmark_cost_analysis(headline, records,
                                                                 aligned_scores(run, benchmark, records),
                                                                 score_kind_of(run.folder), prices)
                   for run in runs if benchmark in run.predictions}
        first = next(iter(per_run.values()))
        analysis[benchmark] = {"pair": {role: candidates[j] for role, j in first["pair"].items()},
                               "fixed": first["fixed"], "cost_range": first["cost_range"],
                               "zero_router_aiq": first["aiq_zero_router"], "runs": per_run}
        logger.info("%s: cost curves of %d runs", benchmark, len(per_run))
    return analysis


def cell(value, digits: int = 2, percent: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value * 100:.0f}%" if percent else f"{value:.{digits}f}"


def cost_tables(runs: list[Run], analysis: dict[str, dict]) -> str:
    benchmarks = list(analysis)
    header = "| run | " + " | ".join(benchmarks) + " |\n|" + "---|" * (len(benchmarks) + 1) + "\n"
    aiq_rows = ["| zero router (fixed candidates) | "
                + " | ".join(cell(analysis[b]["zero_router_aiq"]) for b in benchmarks) + " |"]
    pgr_rows = []
    for run in runs:
        if fixed_candidate(run):
            continue
        found = [analysis[b]["runs"].get(run.name) for b in benchmarks]
        aiq_rows.append(f"| {run.name} | " + " | ".join(cell(a["aiq"]) if a else "–" for a in found) + " |")
        pgr_rows.append(f"| {run.name} | " + " | ".join(
            f"{cell(a['apgr'], 3)} / {cell(a['cpt50'], percent=True)} / {cell(a['cpt80'], percent=True)}"
            if a and a["apgr"] is not None else "–" for a in found) + " |")
    pairs = "; ".join(f"{b}: {analysis[b]['pair']['strong']} vs {analysis[b]['pair']['weak']}" for b in benchmarks)
    return ("### AIQ (mean headline over the fixed candidates' cost range, non-decreasing convex hull)\n\n"
            + header + "\n".join(aiq_rows) + "\n\n"
            "### APGR / CPT(50%) / CPT(80%) between each benchmark's strong and weak candidate\n\n"
            f"Pairs (strong vs weak: the best fixed candidate vs the cheapest other one): {pairs}.\n\n"
            + header + "\n".join(pgr_rows) + "\n")


# --------------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------------

def benchmark_grid(count: int, height: float = 3.6):
    rows = math.ceil(count / PLOT_COLUMNS)
    columns = min(count, PLOT_COLUMNS)
    figure, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, height * rows + 1.0), squeeze=False)
    for axis in axes.flat[count:]:
        axis.set_visible(False)
    return figure, list(axes.flat[:count])


def plot_quality_cost(runs: list[Run], analysis: dict[str, dict], candidates: list[str], path: Path) -> None:
    figure, axes = benchmark_grid(len(analysis))
    colours = plt.get_cmap("tab10")
    markers = "os^vDP*Xhp"
    curve_runs = [run for run in runs if not fixed_candidate(run)]
    for axis, (benchmark, found) in zip(axes, analysis.items()):
        for i, run in enumerate(curve_runs):
            if run.name in found["runs"]:
                curve = found["runs"][run.name]["curve"]
                axis.plot([p["cost"] for p in curve], [p["quality"] for p in curve], "-", marker=".", markersize=4,
                          linewidth=1.4, color=colours(i % 10), label=run.name)
        hull = cost_curves.nondecreasing_hull([(p["cost"], p["quality"]) for p in found["fixed"]])
        low, high = found["cost_range"]
        axis.plot(list(hull[:, 0]) + [high], list(hull[:, 1]) + [hull[-1, 1]], "--", color="grey", linewidth=1,
                  label="zero router (fixed candidates mixed)")
        for j, point in enumerate(found["fixed"]):
            axis.plot(point["cost"], point["quality"], markers[j % len(markers)], color="black", markersize=7,
                      markerfacecolor="none", label=candidates[j])
        axis.set_title(benchmark)
        axis.set_xlabel("cost, USD per 1,000 queries")
        axis.set_ylabel("headline score")
        axis.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=9, frameon=False)
    figure.suptitle("Quality–cost curves over the willingness to pay (illustrative prices)")
    figure.tight_layout(rect=(0, 0.06 + 0.02 * math.ceil(len(labels) / 4), 1, 0.97))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_routing_distribution(runs: list[Run], candidates: list[str], path: Path) -> None:
    """Stacked bars of each run's route shares (fixed-candidate runs left out: one full bar each)."""
    routers = [run for run in runs if not fixed_candidate(run)]
    benchmarks = [b for b in BENCHMARKS if any(b in run.metrics for run in routers)]
    figure, axes = benchmark_grid(len(benchmarks), height=0.4 * len(routers) + 1.4)
    colours = plt.get_cmap("tab10")
    for index, (axis, benchmark) in enumerate(zip(axes, benchmarks)):
        present = [run for run in routers if benchmark in run.metrics]
        left = np.zeros(len(present))
        for j, candidate in enumerate(candidates):
            shares = np.array([run.metrics[benchmark]["route_share"].get(candidate, 0.0) for run in present])
            axis.barh(range(len(present)), shares, left=left, color=colours(j % 10), label=candidate)
            left += shares
        axis.set_yticks(range(len(present)),
                        [run.name for run in present] if index % PLOT_COLUMNS == 0 else [""] * len(present),
                        fontsize=8)
        axis.invert_yaxis()
        axis.set_xlim(0, 1)
        axis.set_xlabel("share of queries")
        axis.set_title(benchmark)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    figure.suptitle("Routing distribution per benchmark")
    figure.tight_layout(rect=(0, 0.05, 1, 0.97))
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------

def write_report(run_dirs: list[str | Path], out: str | Path, config_path: str | Path,
                 data_dir: str | None = None) -> Path:
    """Write the report of ``run_dirs`` to ``out`` (see the module docstring); returns report.md's path."""
    runs = [load_run(folder) for folder in run_dirs]
    candidates = runs[0].candidates
    for run in runs[1:]:
        if run.candidates != candidates:
            raise DataError(f"{run.folder} routes {run.candidates}, {runs[0].folder} routes {candidates}: a report "
                            f"compares runs over the same candidates. Pass runs over the same candidate_llms, in the "
                            f"same order.")
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise DataError(f"Two runs share a name ({names}); give them distinct run names.")
    data_dir = data_dir or runs[0].data_dir
    if not data_dir:
        raise DataError(f"{runs[0].folder}: no data_dir recorded; pass --data_dir.")
    out = writable_dir(out, "--out")
    prices = prices_from_config(load_config(config_path), candidates, config_path)

    analysis = analyse(runs, data_dir, prices)
    write_json(out / "cost_analysis.json", {"prices": {c: vars(p) for c, p in zip(candidates, prices)},
                                            "benchmarks": analysis})
    plot_quality_cost(runs, analysis, candidates, out / "quality_cost.png")
    if any(not fixed_candidate(run) for run in runs):
        plot_routing_distribution(runs, candidates, out / "routing_distribution.png")
    histories = {name: history for run in runs for name, history in plots.run_histories(run.folder, run.name).items()}
    if histories:
        plots.plot_training_curves(histories, out / "training_curves.png")

    price_list = ", ".join(f"{c} {p.input_per_million:g}/{p.output_per_million:g}" for c, p in zip(candidates, prices))
    sections = [
        "# Routing report\n",
        "Runs: " + "; ".join(f"{run.name} (`{run.folder}`)" for run in runs) + ".\n",
        "## Benchmark scores\n",
        "Headline scores as each run's metrics.json records them (per benchmark: the headline metric, and the "
        "per-query score the routers learn and the oracle maximises: "
        + "; ".join(f"{name}: {BENCHMARKS[name].headline}, {BENCHMARKS[name].score}" for name in BENCHMARKS
                    if any(name in run.metrics for run in runs)) + ").\n",
        metrics.format_table({run.name: run.metrics for run in runs}),
        "## Cost-aware routing\n",
        f"Prices from `{config_path}` (USD per million input / output tokens): {price_list}. Costs are in USD per "
        "1,000 queries, with tokens estimated as characters / 4. Each run routes with argmax(quality estimate − "
        "λ·expected cost) over a sweep of λ; see `src/cost_curves.py` for the definitions.\n",
        cost_tables(runs, analysis),
        "![quality-cost curves](quality_cost.png)\n",
    ]
    if any(not fixed_candidate(run) for run in runs):
        sections += ["## Routing distribution\n", "![routing distribution](routing_distribution.png)\n"]
    if histories:
        sections += ["## Training curves\n", "![training curves](training_curves.png)\n"]
    atomic_write_text(out / "report.md", "\n".join(sections))
    return out / "report.md"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["combine"]:
        parser = argparse.ArgumentParser(prog="python src/report.py combine",
                                         description="One results table with a row per run folder.")
        parser.add_argument("runs", nargs="+", help="Run folders (run_args.json and metrics.json).")
        parser.add_argument("--out", help="Also write the table to this file (e.g. output/baselines/results.md).")
        args = parser.parse_args(argv[1:])
        table = combine_results(args.runs)
        if args.out:
            atomic_write_text(args.out, table)
        print(table, end="")
        return
    parser = argparse.ArgumentParser(description="Markdown report with plots of several runs side by side "
                                                 "(`python src/report.py combine RUN ...`: the results table only).")
    parser.add_argument("runs", nargs="+", help="Run folders (metrics.json and test_predictions/).")
    parser.add_argument("--out", default="output/report", help="Report folder (default output/report).")
    parser.add_argument("--config", default="candidates.example.yaml", help="Candidates config with the prices.")
    parser.add_argument("--data_dir", help="Folder holding test/ (default: the first run's data_dir).")
    args = parser.parse_args(argv)
    print(f"wrote {write_report(args.runs, args.out, args.config, args.data_dir)}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        main()
    except (DataError, FileNotFoundError) as error:  # bad input: say what and where, without a traceback
        raise SystemExit(f"error: {error}") from None
