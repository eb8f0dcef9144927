"""Reference routers that learn nothing: the oracle (upper bound), a fixed candidate, and random choice."""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from routers.base import Router, num_candidates


class OracleRouter(Router):
    """Routes every query to its truly best candidate: returns the true scores."""

    needs_scores = True

    def route(self, prompts, responses=None, scores=None) -> np.ndarray:
        if scores is None:
            raise ValueError("The oracle router routes by the true scores: pass scores=[[...k], ...] to route().")
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2 or len(scores) != len(prompts):
            raise ValueError(f"The oracle router needs one list of k scores per prompt; got {len(prompts)} "
                             f"prompts and scores of shape {scores.shape}.")
        return scores


class FixedRouter(Router):
    """Routes every query to candidate ``target_index`` (one-hot scores)."""

    def __init__(self, target_index: int = 0, n_candidates: int | None = None):
        self.target_index = int(target_index)
        self.n_candidates = n_candidates

    def route(self, prompts, responses=None, scores=None) -> np.ndarray:
        k = num_candidates(responses, scores, self.n_candidates, "fixed")
        if not 0 <= self.target_index < k:
            raise ValueError(f"The fixed router's target_index={self.target_index} is out of range for "
                             f"{k} candidates; pick 0..{k - 1}.")
        router_scores = np.zeros((len(prompts), k))
        router_scores[:, self.target_index] = 1.0
        return router_scores


class RandomRouter(Router):
    """Routes uniformly at random, reproducibly: each query's draw depends only on ``seed`` and its prompt.

    Seeding per prompt makes the choice independent of batch composition and order.
    """

    def __init__(self, seed: int = 0, n_candidates: int | None = None):
        self.seed = int(seed)
        self.n_candidates = n_candidates

    def route(self, prompts: Sequence[str], responses=None, scores=None) -> np.ndarray:
        k = num_candidates(responses, scores, self.n_candidates, "random")
        router_scores = np.zeros((len(prompts), k))
        for row, prompt in enumerate(prompts):
            prompt_key = int.from_bytes(hashlib.sha256(prompt.encode("utf-8")).digest()[:8], "big")
            router_scores[row] = np.random.default_rng([self.seed, prompt_key]).random(k)
        return router_scores
