"""Per-source min-max scaling of the candidates' scores: the one scaler of the project.

Sources score on different scales (MT-Bench 1-10, the others 0-1), so averaging or comparing raw scores across
sources would let one source dominate. ``SourceMinMax`` maps each source's scores to [0, 1] with that source's
minimum and maximum over all of its queries and candidates; a source whose scores are all equal maps to 0.
The trainers fit it on the training pool (and validation set) and scale the routing targets with it; the
data-driven baselines (kNN, clusters) and the policy calibration scale their records with
``scale_scores_by_source`` (fitted on the records themselves). Not to be confused with the per-query
normalisation of the routing targets (``model.losses.normalize_per_query``) or the reading of a router's logits
as quality estimates (``routers.policy.quality_estimates``).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from utils.io import DataError


def record_scores(record: dict) -> list[float]:
    """The record's k scores as floats; DataError when one is missing or not finite."""
    scores = record.get("scores")
    if scores is None or any(s is None or not math.isfinite(s) for s in scores):
        raise DataError(f"record {record.get('prompt_id')!r} (source {record.get('source')!r}): field 'scores' "
                        f"is {scores!r}; every candidate needs a finite score (drop or re-judge the query).")
    return [float(s) for s in scores]


class SourceMinMax:
    """Per-source min-max scaling fitted on some records (``fit``), applied to others (``transform``).

    ``ranges``: {source: (lowest score, highest score)}. Records from a source the scaler was not fitted on
    are an error (their scale is unknown), as are records that score another number of candidates than the
    first one fitted.
    """

    def __init__(self, ranges: dict[str, tuple[float, float]], num_candidates: int | None = None):
        self.ranges = ranges
        self.num_candidates = num_candidates

    @classmethod
    def fit(cls, records: Sequence[dict]) -> "SourceMinMax":
        """The scaler of ``records``' sources; DataError for no records, missing or non-finite scores."""
        if not records:
            raise DataError("No scored records: pass at least one record with `prompt`, `source` and `scores`.")
        scaler = cls({}, len(records[0].get("scores") or []))
        lows, highs = {}, {}
        for record in records:
            scores, source = scaler.checked_scores(record), record["source"]
            lows[source] = min(lows.get(source, math.inf), *scores)
            highs[source] = max(highs.get(source, -math.inf), *scores)
        scaler.ranges = {source: (lows[source], highs[source]) for source in lows}
        return scaler

    def checked_scores(self, record: dict) -> list[float]:
        """``record_scores(record)``, also refusing a record with another number of candidates than the fit's."""
        scores = record_scores(record)
        if self.num_candidates is not None and len(scores) != self.num_candidates:
            raise DataError(f"Record {record.get('prompt_id')!r} of {record.get('source')!r} has {len(scores)} "
                            f"scores, the first record has {self.num_candidates}: every record must score the same "
                            f"candidates (load all sources with the same candidate_llms).")
        return scores

    def transform(self, records: Sequence[dict]) -> np.ndarray:
        """Scaled scores [n, k] (float64, in [0, 1] for the fitted records)."""
        scaled = []
        for record in records:
            source = record["source"]
            if source not in self.ranges:
                raise DataError(f"record {record.get('prompt_id')!r}: source {source!r} is not in the training "
                                f"pool ({sorted(self.ranges)}), so its scores cannot be scaled.")
            low, high = self.ranges[source]
            spread = high - low
            scaled.append([(s - low) / spread if spread > 0 else 0.0 for s in self.checked_scores(record)])
        return np.array(scaled, dtype=np.float64).reshape(len(scaled), self.num_candidates or 0)


def scale_scores_by_source(records: Sequence[dict]) -> np.ndarray:
    """Scores [n, k] of ``records`` min-max scaled per source over these records (``SourceMinMax``)."""
    return SourceMinMax.fit(records).transform(records)


def mean_over_sources(values: np.ndarray, sources: Sequence[str]) -> float:
    """The macro mean: ``values`` [n] averaged within each source (``sources`` [n], one per value), then over the
    sources, so that each source weighs alike (as each benchmark does in mean gap_closed)."""
    values, sources = np.asarray(values, dtype=float), np.asarray(sources)
    return float(np.mean([values[sources == source].mean() for source in np.unique(sources)]))
