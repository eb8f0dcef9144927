"""Routers over prompt embeddings: k nearest neighbours, k-means clusters, and the task-aware baseline.

Each learns, from training records, how well every candidate did on prompts like the query. Training
scores are min-max scaled per source first (``data.scaling.scale_scores_by_source``), so sources on different
scales (MT-Bench 1-10, the others 0-1) weigh alike. Embeddings come from ``model.embeddings.embed``
(unit-norm, cached on disk) unless an ``embedder`` (texts -> array [n, d]) is injected.
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np

from data.scaling import scale_scores_by_source
from routers.base import Router
from model.embeddings import DEFAULT_EMBEDDING_MODEL, embed

Embedder = Callable[[Sequence[str]], np.ndarray]
QUERY_CHUNK = 1024  # queries per similarity block in KNNRouter.route (bounds memory)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class EmbeddingRouter(Router):
    """Shared part: embeds prompts and keeps the training embeddings and normalised scores."""

    learns_from_data = True

    def __init__(self, embedding_model: str = DEFAULT_EMBEDDING_MODEL, embedder: Embedder | None = None):
        self.embedding_model = embedding_model
        self.embedder = embedder or functools.partial(embed, model_name_or_path=embedding_model)
        self.train_embeddings: np.ndarray | None = None
        self.train_scores: np.ndarray | None = None

    def embed_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        return _unit_rows(np.asarray(self.embedder(list(prompts)), dtype=np.float64))

    def fit(self, examples: Sequence[dict]) -> "EmbeddingRouter":
        self.train_scores = scale_scores_by_source(examples)
        self.train_embeddings = self.embed_prompts([example["prompt"] for example in examples])
        return self

    def _check_fitted(self) -> None:
        if self.train_scores is None:
            raise RuntimeError(f"{type(self).__name__} routes from training data: call fit(examples) first.")


class KNNRouter(EmbeddingRouter):
    """Mean normalised scores of the ``n_neighbors`` training prompts most cosine-similar to the query.

    With ``weighted`` the mean is weighted by the (positive part of the) similarities.
    """

    def __init__(self, n_neighbors: int = 10, weighted: bool = False,
                 embedding_model: str = DEFAULT_EMBEDDING_MODEL, embedder: Embedder | None = None):
        super().__init__(embedding_model, embedder)
        if n_neighbors < 1:
            raise ValueError(f"n_neighbors must be at least 1, got {n_neighbors}.")
        self.n_neighbors = int(n_neighbors)
        self.weighted = bool(weighted)

    def route(self, prompts, responses=None, scores=None) -> np.ndarray:
        self._check_fitted()
        queries = self.embed_prompts(prompts)
        n_neighbors = min(self.n_neighbors, len(self.train_scores))
        router_scores = np.zeros((len(prompts), self.train_scores.shape[1]))
        for start in range(0, len(queries), QUERY_CHUNK):
            similarity = queries[start:start + QUERY_CHUNK] @ self.train_embeddings.T
            # ties at the boundary are broken by the lower training index (stable sort)
            neighbors = np.argsort(-similarity, axis=1, kind="stable")[:, :n_neighbors]
            neighbor_scores = self.train_scores[neighbors]  # [chunk, n_neighbors, k]
            if self.weighted:
                weights = np.clip(np.take_along_axis(similarity, neighbors, axis=1), 1e-12, None)
            else:
                weights = np.ones(neighbors.shape)
            weights = weights / weights.sum(axis=1, keepdims=True)
            router_scores[start:start + len(neighbors)] = np.einsum("qn,qnk->qk", weights, neighbor_scores)
        return router_scores


class ClusterRouter(EmbeddingRouter):
    """k-means (``n_clusters``, seeded) over the training embeddings; each cluster keeps its mean scores."""

    def __init__(self, n_clusters: int = 10, seed: int = 0,
                 embedding_model: str = DEFAULT_EMBEDDING_MODEL, embedder: Embedder | None = None):
        super().__init__(embedding_model, embedder)
        if n_clusters < 1:
            raise ValueError(f"n_clusters must be at least 1, got {n_clusters}.")
        self.n_clusters = int(n_clusters)
        self.seed = int(seed)
        self.centroids: np.ndarray | None = None
        self.cluster_scores: np.ndarray | None = None

    def fit(self, examples: Sequence[dict]) -> "ClusterRouter":
        from sklearn.cluster import KMeans

        super().fit(examples)
        if len(examples) < self.n_clusters:
            raise ValueError(f"n_clusters={self.n_clusters} exceeds the {len(examples)} training examples; "
                             f"lower n_clusters or add training data.")
        kmeans = KMeans(n_clusters=self.n_clusters, random_state=self.seed, n_init=10)
        labels = kmeans.fit_predict(self.train_embeddings)
        self.centroids = kmeans.cluster_centers_
        self.cluster_scores = np.stack([self.train_scores[labels == c].mean(axis=0)
                                        for c in range(self.n_clusters)])
        return self

    def centroid_distances(self, prompts: Sequence[str]) -> np.ndarray:
        """Euclidean distances [n, n_clusters] from each query embedding to each centroid."""
        self._check_fitted()
        queries = self.embed_prompts(prompts)
        squared = ((queries ** 2).sum(axis=1)[:, None] + (self.centroids ** 2).sum(axis=1)[None, :]
                   - 2.0 * queries @ self.centroids.T)
        return np.sqrt(np.clip(squared, 0.0, None))


class HardClusterRouter(ClusterRouter):
    """The mean normalised scores of the cluster whose centroid is nearest the query."""

    def route(self, prompts, responses=None, scores=None) -> np.ndarray:
        nearest = self.centroid_distances(prompts).argmin(axis=1)
        return self.cluster_scores[nearest]


class SoftClusterRouter(ClusterRouter):
    """A mixture of the clusters' mean scores, weighted by softmax(-distance / ``temperature``)."""

    def __init__(self, n_clusters: int = 10, temperature: float = 0.1, seed: int = 0,
                 embedding_model: str = DEFAULT_EMBEDDING_MODEL, embedder: Embedder | None = None):
        super().__init__(n_clusters, seed, embedding_model, embedder)
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        self.temperature = float(temperature)

    def route(self, prompts, responses=None, scores=None) -> np.ndarray:
        logits = -self.centroid_distances(prompts) / self.temperature
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        return weights @ self.cluster_scores


class TaskRouter(EmbeddingRouter):
    """Task-aware baseline: predict the query's source, route to that source's best candidate.

    ``fit`` keeps, per training-pool source (``record["source"]``: a benchmark or a training set), the centroid
    of its prompt embeddings and its mean normalised scores. ``route`` assigns each query to the source of the
    nearest centroid (Euclidean) and returns that source's mean scores [n, k], so the choice is the candidate
    that was best on average on that source in the training pool. Cheap, and strong wherever one candidate
    dominates a task; a router that learns per-query differences should beat it.
    """

    def __init__(self, embedding_model: str = DEFAULT_EMBEDDING_MODEL, embedder: Embedder | None = None):
        super().__init__(embedding_model, embedder)
        self.sources: list[str] = []
        self.centroids: np.ndarray | None = None
        self.source_scores: np.ndarray | None = None

    def fit(self, examples: Sequence[dict]) -> "TaskRouter":
        super().fit(examples)
        sources = np.array([example["source"] for example in examples])
        self.sources = sorted(set(sources.tolist()))
        self.centroids = np.stack([self.train_embeddings[sources == source].mean(axis=0) for source in self.sources])
        self.source_scores = np.stack([self.train_scores[sources == source].mean(axis=0) for source in self.sources])
        return self

    def predict_sources(self, prompts: Sequence[str]) -> np.ndarray:
        """Index into ``self.sources`` of each query's nearest source centroid, shape [n]."""
        if self.centroids is None:
            raise RuntimeError("TaskRouter predicts sources from their centroids: call fit(examples) first.")
        queries = self.embed_prompts(prompts)
        squared = (self.centroids ** 2).sum(axis=1)[None, :] - 2.0 * queries @ self.centroids.T
        return squared.argmin(axis=1)

    def route(self, prompts, responses=None, scores=None) -> np.ndarray:
        return self.source_scores[self.predict_sources(prompts)]
