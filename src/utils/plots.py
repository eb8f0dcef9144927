"""Training curves of a router run as one PNG: ``<run_dir>/training_curves.png``.

Four panels against the optimizer step; each compares like with like, the training value (line) and, when
the same quantity is validated, the validation value (dashed, dots):

    routing loss    routing_loss / eval_routing_loss (the --loss_type on the router's k logits)
    training loss   the total training loss: routing + weighted auxiliary loss (validation reads the
                    routing-time layout, with nothing to predict, so it has no total to compare with)
    auxiliary loss  sft_loss (causal) or mlm_loss (mask_concat), with mask_rate on a right-hand axis
    reward          the batch's reward / eval_reward (mean scaled score of the chosen candidate)

The values come from the Trainer's ``log_history``: ``<run_dir>/trainer_state.json`` (written at the end
of training), else the latest ``checkpoint-*/trainer_state.json`` (a run still in progress). A run with
``fold_<f>/`` folders (``--cross_fit_folds``) is drawn with one colour per fold.

    python src/utils/plots.py RUN_DIR [RUN_DIR ...]      (re-)draw the curves of finished or running runs
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)
from matplotlib.ticker import MaxNLocator  # noqa: E402

if __name__ == "__main__":  # run as a script: import from src/, not from src/utils/
    sys.path[0] = str(Path(__file__).resolve().parents[1])
from utils.io import read_json  # noqa: E402

PLOT_NAME = "training_curves.png"
# (panel title, training key(s), validation key(s))
PANELS = (
    ("routing loss", ("routing_loss",), ("eval_routing_loss",)),
    ("training loss (routing + auxiliary)", ("loss",), ()),
    ("auxiliary loss", ("sft_loss", "mlm_loss"), ()),
    ("reward", ("reward",), ("eval_reward",)),
)


def load_log_history(run_dir: str | Path) -> list[dict] | None:
    """The Trainer's log entries for ``run_dir`` (see the module docstring), or None when there are none."""
    run_dir = Path(run_dir)
    state_file = run_dir / "trainer_state.json"
    if not state_file.exists():
        checkpoints = [path for path in run_dir.glob("checkpoint-*/trainer_state.json")
                       if re.fullmatch(r"checkpoint-\d+", path.parent.name)]
        if not checkpoints:
            return None
        state_file = max(checkpoints, key=lambda path: int(path.parent.name.split("-")[1]))
    return read_json(state_file)["log_history"]


def series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the entries that logged ``key``."""
    points = [(entry["step"], entry[key]) for entry in history if key in entry and "step" in entry]
    return [step for step, _ in points], [value for _, value in points]


def plot_training_curves(histories: dict[str, list[dict]], path: str | Path, title: str = "") -> Path:
    """Draw the four panels for each labelled log history (one colour per label) into ``path`` (PNG)."""
    figure, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, (panel, train_keys, eval_keys) in zip(axes.flat, PANELS):
        drawn, rate_axis = False, None
        for index, (label, history) in enumerate(histories.items()):
            colour = colours[index % len(colours)]
            prefix = f"{label}: " if len(histories) > 1 else ""
            for key in train_keys:
                steps, values = series(history, key)
                if steps:
                    axis.plot(steps, values, color=colour, linewidth=1.2, label=f"{prefix}{key}")
                    drawn = True
            for key in eval_keys:
                steps, values = series(history, key)
                if steps:
                    axis.plot(steps, values, color=colour, linestyle="--", marker="o", markersize=4,
                              label=f"{prefix}{key}")
                    drawn = True
            if panel == "auxiliary loss":
                steps, rates = series(history, "mask_rate")
                if steps:
                    rate_axis = rate_axis or axis.twinx()
                    rate_axis.plot(steps, rates, color=colour, linestyle=":", linewidth=1, label=f"{prefix}mask_rate")
                    rate_axis.set_ylim(0, 1.05)
                    rate_axis.set_ylabel("mask rate (dotted)")
        axis.set_title(panel)
        axis.set_xlabel("step")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        if drawn:
            axis.legend(fontsize=8)
        else:
            axis.text(0.5, 0.5, "nothing logged", ha="center", va="center", transform=axis.transAxes,
                      color="grey")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name: the folds of a cross-fit run, trained in parallel, plot the same run folder.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.png")
    os.close(fd)
    try:
        figure.savefig(temporary, dpi=100)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        plt.close(figure)
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def run_histories(run_dir: str | Path, label: str | None = None) -> dict[str, list[dict]]:
    """{label: log history} of a run: one entry per fold with cross-fitting (``<label> fold_<f>``), else one
    (``label``, default the folder name); empty when nothing was logged yet."""
    run_dir = Path(run_dir)
    label = label or run_dir.name
    folds = sorted((path for path in run_dir.glob("fold_*") if path.is_dir()), key=lambda path: path.name)
    sources = {f"{label} {path.name}": path for path in folds} or {label: run_dir}
    return {name: history for name, folder in sources.items() if (history := load_log_history(folder))}


def plot_run(run_dir: str | Path) -> Path | None:
    """Write ``<run_dir>/training_curves.png`` from the run's log history (its folds' with cross-fitting);
    None when nothing was logged yet."""
    run_dir = Path(run_dir)
    histories = run_histories(run_dir)
    if not histories:
        return None
    title = "/".join(run_dir.resolve().parts[-3:])  # e.g. <backbone>/<method>/<hyperparameters>
    return plot_training_curves(histories, run_dir / PLOT_NAME, title=title)


def main(argv: list[str]) -> None:
    """Draw the curves of each run folder named in ``argv``."""
    if not argv:
        raise SystemExit("usage: python src/utils/plots.py RUN_DIR [RUN_DIR ...]")
    for run_dir in argv:
        written = plot_run(run_dir)
        print(written if written else f"{run_dir}: no trainer_state.json yet, nothing drawn")


if __name__ == "__main__":
    main(sys.argv[1:])
