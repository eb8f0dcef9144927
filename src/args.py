"""Arguments shared by the evaluation entry points.

Command lines hand lists over as Python/JSON lists or comma-separated strings; ``as_list`` accepts every
form Fire passes on (a list, a tuple, ``"a,b"``, ``"[a, b]"``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data import BENCHMARKS, PAPER_CANDIDATES

REPO_ROOT = Path(__file__).resolve().parent.parent


def as_list(value: Any) -> list[str]:
    """``value`` as a list of non-empty strings."""
    if isinstance(value, (list, tuple)):
        items = [str(item) for item in value]
    else:
        items = str(value).strip().strip("[]").split(",")
    return [item.strip().strip("'\"").strip() for item in items if item.strip().strip("'\"").strip()]


def default_data_dir() -> str:
    """``data`` if it exists, else ``compressed_data``; looked up in the working directory, then the repo root."""
    for base in (Path.cwd(), REPO_ROOT):
        for name in ("data", "compressed_data"):
            if (base / name).is_dir():
                return str(base / name)
    return "compressed_data"


@dataclass
class EvalArguments:
    """Where the data is, what to evaluate, and where the results go.

    data_dir         holds ``test/<Benchmark>`` and ``train/<set>``
    candidate_llms   the candidates, in routing-index order
    test_datasets    benchmarks to evaluate on (names from ``data.BENCHMARKS``)
    train_datasets   training-set folders, relative to ``data_dir`` or absolute
    train_split      which part of each training set to use: "all", "train" or "eval"
    output_dir       where predictions, metrics.json and results.md are written
    cross_fit_folds  K >= 2: routers that learn from data are cross-fitted over K folds of the benchmarks
                     (each fold predicted by a router trained on the train sets plus the other folds);
                     0 turns cross-fitting off
    seed             for routers with randomness (random choice, k-means)
    """

    data_dir: str = field(default_factory=default_data_dir)
    candidate_llms: list[str] = field(default_factory=lambda: list(PAPER_CANDIDATES))
    test_datasets: list[str] = field(default_factory=lambda: list(BENCHMARKS))
    train_datasets: list[str] = field(default_factory=list)
    train_split: str = "all"
    output_dir: str = "output/baselines"
    cross_fit_folds: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        self.data_dir = str(self.data_dir)
        self.candidate_llms = as_list(self.candidate_llms)
        self.test_datasets = as_list(self.test_datasets)
        self.train_datasets = as_list(self.train_datasets)
        unknown = [name for name in self.test_datasets if name not in BENCHMARKS]
        if unknown:
            raise ValueError(f"Unknown test_datasets {unknown}; choose among {', '.join(BENCHMARKS)}.")
        if not self.candidate_llms:
            raise ValueError("candidate_llms is empty; name at least one candidate.")
        self.cross_fit_folds = int(self.cross_fit_folds)
        if self.cross_fit_folds == 1 or self.cross_fit_folds < 0:
            raise ValueError(f"cross_fit_folds must be 0 (off) or at least 2, got {self.cross_fit_folds}.")
        self.seed = int(self.seed)

    def train_set_dirs(self) -> list[Path]:
        """The training-set folders: absolute paths as given, others under ``data_dir``."""
        return [Path(name) if Path(name).is_absolute() else Path(self.data_dir) / name
                for name in self.train_datasets]
