"""How far is our offline length-controlled AlpacaEval win rate from the official one?

For every model under ``<data_dir>/test/AlpacaEval`` whose official LC win rate appears in one of the
released ``leaderboard.csv`` files (its own row, checked by its raw win rate), the LC win rate is recomputed
from that model's own annotations with ``utils.alpaca_lc`` and compared. Printed as markdown:

* the per-model table: official LC, ours (instruction difficulty fitted jointly on all models' annotations,
  the default of ``metrics.alpaca_difficulty``), ours with the difficulty fitted on the other models only
  (leave-one-out), and the errors;
* a summary of fit variants (mean absolute error, mean error, largest error): the cross-validated ridge
  and each fixed ridge of the grid, no difficulty term at all, and the difficulty fitted on the paper's
  five candidates only (what ``metrics.evaluate`` does when given no difficulty).

Usage: python scripts/lc_error_report.py [--data_dir ../shared/data/compressed_data]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from data import PAPER_CANDIDATES  # noqa: E402
from utils import alpaca_lc  # noqa: E402


def _lc(table: alpaca_lc.AnnotationTable, features: np.ndarray, model: int, difficulty: np.ndarray) -> float:
    fit = alpaca_lc.fit_model_glm(table.labels[model], features[model], difficulty)
    return fit.length_controlled_win_rate(difficulty)


def _difficulty(table, features, rows, ridge=None) -> np.ndarray:
    labels, feats = table.labels[rows], features[rows]
    ridge = alpaca_lc.choose_ridge(labels, feats) if ridge is None else ridge
    return alpaca_lc.fit_joint_glm(labels, feats, ridge)[2]


def _summary_row(name: str, errors: list[float]) -> str:
    errors = np.asarray(errors)
    return (f"| {name} | {len(errors)} | {np.abs(errors).mean():.3f} | {errors.mean():+.3f} | "
            f"{np.abs(errors).max():.3f} |")


def report(data_dir: str | Path) -> str:
    root = Path(data_dir) / "test" / "AlpacaEval"
    table = alpaca_lc.read_annotations(root)
    official = alpaca_lc.official_leaderboard_lc(root, table)
    if not official:
        raise SystemExit(f"{root}: no leaderboard.csv holds the official LC win rate of an annotated model.")
    features = alpaca_lc.length_feature(table.reference_lengths, table.output_lengths)
    everyone = list(range(len(table.models)))
    scored = [m for m in everyone if table.models[m] in official]

    chosen_ridge = alpaca_lc.choose_ridge(table.labels, features)
    joint = _difficulty(table, features, everyone, chosen_ridge)
    ours = {m: _lc(table, features, m, joint) for m in scored}
    leave_one_out = {m: _lc(table, features, m, _difficulty(table, features, [o for o in everyone if o != m]))
                     for m in scored}

    lines = [f"Offline LC win rate vs official ({len(scored)} models with an official value; "
             f"difficulty fitted on {len(everyone)} models, cross-validated ridge {chosen_ridge:g}).", "",
             "| model | official LC | ours | error | ours, leave-one-out | error |", "|---|---|---|---|---|---|"]
    for m in scored:
        truth = official[table.models[m]]
        lines.append(f"| {table.models[m]} | {truth:.2f} | {ours[m]:.2f} | {ours[m] - truth:+.2f} | "
                     f"{leave_one_out[m]:.2f} | {leave_one_out[m] - truth:+.2f} |")
    errors = [ours[m] - official[table.models[m]] for m in scored]
    loo_errors = [leave_one_out[m] - official[table.models[m]] for m in scored]
    lines += ["", f"Mean absolute error: {np.abs(errors).mean():.3f} (leave-one-out: "
                  f"{np.abs(loo_errors).mean():.3f}).", "",
              "| variant | models | MAE | mean error | max abs error |", "|---|---|---|---|---|",
              _summary_row(f"joint difficulty, cross-validated ridge ({chosen_ridge:g})", errors),
              _summary_row("same, leave-one-out difficulty", loo_errors)]
    for ridge in alpaca_lc.RIDGE_GRID:
        difficulty = _difficulty(table, features, everyone, ridge)
        lines.append(_summary_row(f"joint difficulty, ridge {ridge:g}",
                                  [_lc(table, features, m, difficulty) - official[table.models[m]] for m in scored]))
    no_difficulty = np.zeros(len(table.instructions))
    lines.append(_summary_row("no difficulty term",
                              [_lc(table, features, m, no_difficulty) - official[table.models[m]] for m in scored]))
    paper = [m for m in everyone if table.models[m] in PAPER_CANDIDATES]
    if paper and set(paper) & set(scored):
        difficulty = _difficulty(table, features, paper)
        lines.append(_summary_row("difficulty from the paper's candidates only",
                                  [_lc(table, features, m, difficulty) - official[table.models[m]]
                                   for m in paper if m in scored]))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data" / "compressed_data"),
                        help="folder holding test/AlpacaEval of the released data")
    print(report(parser.parse_args().data_dir))


if __name__ == "__main__":
    main()
