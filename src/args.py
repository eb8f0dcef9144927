"""Arguments shared by the evaluation entry points (lists in any form ``utils.cli.as_list`` reads)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data import BENCHMARKS, PAPER_CANDIDATES, resolve_train_set
from utils.cli import as_list, default_data_dir


@dataclass
class EvalArguments:
    """Where the data is, what to evaluate, and where the results go.

    data_dir         holds ``test/<Benchmark>`` and ``train/<set>``
    candidate_llms   the candidates, in routing-index order
    test_datasets    benchmarks to evaluate on (names from ``data.BENCHMARKS``)
    train_datasets   training sets as ``<set>/<score dir>`` (``data.resolve_train_set``), relative to
                     ``data_dir/train`` or absolute
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

    def train_sets(self) -> list[tuple[Path, str]]:
        """``(set folder, score directory)`` of each --train_datasets entry (``data.resolve_train_set``)."""
        return [resolve_train_set(name, self.data_dir) for name in self.train_datasets]
