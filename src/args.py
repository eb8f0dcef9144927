"""Arguments shared by the entry points, checked before any work starts.

Lists are read by ``utils.cli.as_list`` (a list, a tuple, ``"a,b"``, ``"[a, b]"``, the paper's
``"['a', 'b']"``). ``integer`` and ``number`` turn a flag's value
into a number or raise a ValueError that names the flag, the value and the accepted range.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data import BENCHMARKS, PAPER_CANDIDATES, resolve_train_set
from data.train_sets import SPLITS
from utils.cli import as_list, default_data_dir
from utils.io import DataError


def integer(value: Any, flag: str, minimum: int | None = None) -> int:
    """``value`` of ``--flag`` as an int (an integral float or string is accepted; 2.5, "two" and booleans are not),
    at least ``minimum``; ValueError naming the flag otherwise."""
    if isinstance(value, str):
        try:
            value = float(value.strip()) if value.strip() else math.nan
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value != int(value) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"--{flag} must be an integer{bound}, got {value!r}. Pass a whole number, e.g. --{flag} "
                         f"{2 if minimum is None else max(minimum, 2)}.")
    return int(value)


def number(value: Any, flag: str, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
           high_open: bool = False) -> float:
    """``value`` of ``--flag`` as a finite float in the interval from ``low`` to ``high`` (ends open when
    ``low_open`` / ``high_open``); ValueError naming the flag and the interval otherwise."""
    number_ = value
    if isinstance(value, str):
        try:
            number_ = float(value)
        except ValueError:
            pass
    inside = (isinstance(number_, (int, float)) and not isinstance(number_, bool) and math.isfinite(number_)
              and (number_ > low if low_open else number_ >= low)
              and (number_ < high if high_open else number_ <= high))
    if not inside:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"--{flag} must be a finite number in {interval}, got {value!r}. Pass a value in that "
                         f"range.")
    return float(number_)



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
        if not self.test_datasets:
            raise ValueError(f"--test_datasets is empty; name at least one of {', '.join(BENCHMARKS)} "
                             f"(several separated by commas).")
        unknown = [name for name in self.test_datasets if name not in BENCHMARKS]
        if unknown:
            raise ValueError(f"Unknown --test_datasets {unknown}; choose among {', '.join(BENCHMARKS)} "
                             f"(several separated by commas, e.g. GSM8k,MATH).")
        repeated = sorted({name for name in self.test_datasets if self.test_datasets.count(name) > 1})
        if repeated:
            raise ValueError(f"--test_datasets names {repeated} more than once; name each benchmark once.")
        if not self.candidate_llms:
            raise ValueError("--candidate_llms is empty; name at least one candidate (several separated by commas).")
        if self.train_split not in SPLITS:
            raise ValueError(f"--train_split must be one of {', '.join(SPLITS)}, got {self.train_split!r}. Pass "
                             f"one of those.")
        self.cross_fit_folds = integer(self.cross_fit_folds, "cross_fit_folds", minimum=0)
        if self.cross_fit_folds == 1:
            raise ValueError("--cross_fit_folds must be 0 (off) or at least 2, got 1. Pass 0 or a number of "
                             "folds >= 2.")
        self.seed = integer(self.seed, "seed")
        if not Path(self.data_dir).is_dir():
            raise DataError(f"{self.data_dir}: --data_dir is not a folder. Pass the folder that holds test/ and "
                            f"train/ (`bash decompress_data.sh` prepares data/).")
        self.train_sets()  # each entry names a training set and its score directory (DataError otherwise)

    def train_sets(self) -> list[tuple[Path, str]]:
        """``(set folder, score directory)`` of each --train_datasets entry (``data.resolve_train_set``)."""
        return [resolve_train_set(name, self.data_dir) for name in self.train_datasets]
