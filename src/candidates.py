"""The candidates config: one YAML file that lists the candidate LLMs, their prices and (for the server) their
endpoints. ``candidates.example.yaml`` documents every field.

    router_model: router-lookahead        # serving: the model name that routes (optional)
    willingness_to_pay: 0.0               # optional: lambda of the cost-aware rule (routers.policy)
    candidates:
      - name: Qwen2.5-Coder-7B-Instruct   # unique; the router's candidate names
        input_price_per_million: 0.2      # USD per million input tokens
        output_price_per_million: 0.6     # USD per million output tokens
        ...                               # serve.py's fields: base_url, model, api_key_env, caps

This module reads and checks the file and the fields every user shares (names, prices, non-negative numbers);
each user reads its own fields (``serve.py`` the endpoints, ``routers.policy`` and ``calibrate.py`` the prices).
Errors name the file, the candidate, the field and the fix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from utils.io import DataError, exists, read_text


@dataclass(frozen=True)
class Price:
    """USD per million input / output tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens, output_tokens):
        """Cost in USD per 1,000 queries of queries with these token counts (numbers or arrays)."""
        return (np.asarray(input_tokens) * self.input_per_million
                + np.asarray(output_tokens) * self.output_per_million) / 1000.0


def load_config(path: str | Path) -> dict:
    """The candidates config (YAML): a mapping whose ``candidates`` lists one mapping per candidate with a
    unique ``name``; other fields are read by their users (prices here, endpoints by serve.py). DataError naming
    the file (and line) when it is missing, malformed or lists a name twice."""
    path = Path(path)
    if not exists(path):
        raise DataError(f"{path}: candidates config not found. Copy candidates.example.yaml and edit it.")
    try:
        config = yaml.safe_load(read_text(path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error)
        raise DataError(f"{where}: malformed YAML ({problem}). Fix the file (see candidates.example.yaml).") from None
    if not isinstance(config, dict) or not isinstance(config.get("candidates"), list) or not config["candidates"]:
        raise DataError(f"{path}: expected a mapping with a non-empty `candidates:` list "
                        f"(see candidates.example.yaml).")
    names = []
    for index, entry in enumerate(config["candidates"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise DataError(f"{path}: candidates[{index}] must be a mapping with a non-empty string `name`.")
        if entry["name"] in names:
            raise DataError(f"{path}: candidate {entry['name']!r} is listed twice; keep one entry per name.")
        names.append(entry["name"])
    return config


def config_entry(config: dict, name: str, path: str | Path) -> dict:
    """The config entry of candidate ``name``."""
    for entry in config["candidates"]:
        if entry["name"] == name:
            return entry
    raise DataError(f"{path}: candidate {name!r} has no entry; add one under `candidates:` (name, prices, ...).")


def nonnegative_number(entry: dict, field: str, path: str | Path, default: float | None = None) -> float | None:
    """``entry[field]`` (a candidate's entry or the whole config) as a float >= 0 (``default`` when absent)."""
    value = entry.get(field, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        owner = f"candidate {entry['name']!r}: " if "name" in entry else ""
        raise DataError(f"{path}: {owner}field {field!r} must be a number >= 0, got {value!r}. Write a number >= 0.")
    return float(value)


def prices_from_config(config: dict, names: Sequence[str], path: str | Path) -> list[Price]:
    """The price of each candidate in ``names`` (fields ``input_price_per_million``, ``output_price_per_million``)."""
    prices = []
    for name in names:
        entry = config_entry(config, name, path)
        values = [nonnegative_number(entry, field, path) for field in
                  ("input_price_per_million", "output_price_per_million")]
        if None in values:
            raise DataError(f"{path}: candidate {name!r} needs input_price_per_million and output_price_per_million "
                            f"(USD per million tokens). Add both to its entry.")
        prices.append(Price(*values))
    return prices
