"""Routers: one interface (``routers.base.Router``) and ``build_router`` to make one by name.

    oracle        the true best candidate (upper bound; needs scores)
    fixed         always candidate ``target_index``
    random        uniform, reproducible with ``seed``
    knn           mean normalised training scores of the ``n_neighbors`` most similar training prompts
    hard_cluster  mean normalised training scores of the query's k-means cluster (``n_clusters``)
    soft_cluster  softmax(-distance / ``temperature``) mixture of the clusters' mean scores
    task          the best candidate (in the training pool) of the query's predicted source (task-aware)
    reward        a reward model's score of each candidate's actual response (needs responses)

A trained router loads with ``routers.pretrained.PretrainedRouter``; ``routers.policy`` turns any router's scores
into quality estimates and the cost-aware choice (the one routing decision, also the server's). Nothing in this
package imports the training code (``tests/test_import_graph.py``).
"""
from __future__ import annotations

import inspect

from routers.base import Router, choose
from routers.embedding import HardClusterRouter, KNNRouter, SoftClusterRouter, TaskRouter
from routers.reward import RewardRouter
from routers.simple import FixedRouter, OracleRouter, RandomRouter

ROUTERS: dict[str, type[Router]] = {
    "oracle": OracleRouter,
    "fixed": FixedRouter,
    "random": RandomRouter,
    "knn": KNNRouter,
    "hard_cluster": HardClusterRouter,
    "soft_cluster": SoftClusterRouter,
    "task": TaskRouter,
    "reward": RewardRouter,
}


def router_class(router_type: str) -> type[Router]:
    if router_type not in ROUTERS:
        raise ValueError(f"Unknown router_type {router_type!r}; choose one of {', '.join(ROUTERS)}.")
    return ROUTERS[router_type]


def build_router(router_type: str, **kwargs) -> Router:
    """Make the router named ``router_type`` with its constructor arguments ``kwargs``."""
    cls = router_class(router_type)
    accepted = [name for name in inspect.signature(cls).parameters if name != "embedder"]
    unknown = sorted(set(kwargs) - set(inspect.signature(cls).parameters))
    if unknown:
        raise ValueError(f"The {router_type} router does not take {', '.join(unknown)}; it takes: "
                         f"{', '.join(accepted) or 'no arguments'}. Fix the argument's name (or drop it).")
    return cls(**kwargs)


__all__ = ["ROUTERS", "Router", "build_router", "choose", "router_class",
           "FixedRouter", "HardClusterRouter", "KNNRouter", "OracleRouter", "RandomRouter", "RewardRouter",
           "SoftClusterRouter", "TaskRouter"]
