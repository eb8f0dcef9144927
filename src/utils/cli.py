"""Command-line values shared by the entry points.

Command lines hand lists over as Python/JSON lists or comma-separated strings (the paper's scripts pass
``--candidate_llms "['model1', 'model2']"``; HfArgumentParser passes space-separated items); ``as_list``
accepts every form: a list or tuple (whose items may themselves be ``"a,b"``), ``"a,b"`` or ``"[a, b]"``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def as_list(value: Any) -> list[str]:
    """``value`` as a list of non-empty strings, split at commas, quotes and brackets stripped."""
    items = [str(item) for item in value] if isinstance(value, (list, tuple)) else [str(value)]
    parts = [part for item in items for part in item.strip().strip("[]").split(",")]
    cleaned = [part.strip().strip("[]").strip().strip("'\"").strip() for part in parts]
    return [part for part in cleaned if part]


def default_data_dir() -> str:
    """``data`` if it exists, else ``compressed_data``; looked up in the working directory, then the repo root."""
    for base in (Path.cwd(), REPO_ROOT):
        for name in ("data", "compressed_data"):
            if (base / name).is_dir():
                return str(base / name)
    return "compressed_data"
