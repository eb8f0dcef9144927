"""The router interface and the helpers every router shares.

A router reads queries and returns a score per candidate per query, shape [n, k]; the routing decision is
the argmax of each row, the lowest index on ties (``choose``). Routers that learn from data implement
``fit(examples)`` on records of the contract in ``data/__init__.py``; the others ignore it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


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
