"""The router interface and the helpers every router shares.

A router reads queries and returns a score per candidate per query, shape [n, k]; the routing decision is
the argmax of each row, the lowest index on ties (``choose``). Routers that learn from data implement
``fit(examples)`` on records of the contract in ``data/__init__.py``; the others ignore it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from utils.io import DataError


class Router:
    """Base class. Subclasses set the class attributes and implement ``route``."""

    learns_from_data: bool = False  # fit() uses the training examples
    needs_responses: bool = False   # route() reads the candidates' responses
    needs_scores: bool = False      # route() reads the candidates' true scores (oracle only)

    def fit(self, examples: Sequence[dict]) -> "Router":
        return self

    def route(self, prompts: Sequence[str], responses: Sequence[Sequence[str]] | None = None,
              scores: Sequence[Sequence[float]] | None = None) -> np.ndarray:
        """Return float scores [len(prompts), k]; higher means route there."""
        raise NotImplementedError


def choose(router_scores: np.ndarray) -> np.ndarray:
    """The chosen candidate of each query: argmax of its row, the lowest index on ties."""
    return np.asarray(router_scores).argmax(axis=1)


def score_matrix(examples: Sequence[dict]) -> np.ndarray:
    """The examples' ``scores`` as a float array [n, k]; every example must list the same number k."""
    if not examples:
        raise DataError("No training examples: pass at least one record with `prompt` and `scores`.")
    k = len(examples[0]["scores"])
    for example in examples:
        if len(example["scores"]) != k:
            raise DataError(
                f"Example {example.get('prompt_id')!r} of {example.get('source')!r} has "
                f"{len(example['scores'])} scores, the first example has {k}: every record must score the "
                f"same candidates (load all sources with the same candidate_llms)."
            )
    return np.array([example["scores"] for example in examples], dtype=np.float64)


def normalize_scores_by_source(examples: Sequence[dict]) -> np.ndarray:
    """Scores [n, k] min-max normalised to [0, 1] per ``source`` (over all that source's scores).

    Sources score on different scales (MT-Bench 1-10, the others 0-1), so averaging raw scores across
    sources would let one source dominate. A source whose scores are all equal maps to 0.
    """
    scores = score_matrix(examples)
    sources = np.array([example["source"] for example in examples])
    normalized = np.zeros_like(scores)
    for source in np.unique(sources):
        rows = sources == source
        low, high = scores[rows].min(), scores[rows].max()
        if high > low:
            normalized[rows] = (scores[rows] - low) / (high - low)
    return normalized


def num_candidates(responses: Sequence[Sequence[str]] | None, scores: Sequence[Sequence[float]] | None,
                   default: int | None, router_name: str) -> int:
    """k, taken from ``responses`` or ``scores`` when given, else ``default``."""
    for per_query in (responses, scores):
        if per_query is not None and len(per_query) > 0:
            return len(per_query[0])
    if default is None:
        raise ValueError(f"The {router_name} router cannot tell the number of candidates: pass responses or "
                         f"scores to route(), or n_candidates when building it.")
    return default
