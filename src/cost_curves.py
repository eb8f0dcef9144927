"""Quality-cost curves of a routing and their summaries: AIQ (RouterBench), APGR and CPT (RouteLLM).

:func:`quality_cost_curve` sweeps the willingness to pay lambda of the cost-aware rule (``routers.policy``) and
records each distinct routing's mean realised cost (the answers' actual token counts, USD per 1,000 queries) and
the benchmark's headline score (``metrics.benchmark_metric``). :func:`aiq` is RouterBench's AIQ: the mean, over a
cost range, of the non-decreasing convex hull of the points (:func:`nondecreasing_hull`; mixing two routings at
random reaches any point between them, and no one pays more for less). :func:`apgr` and :func:`cpt` are
RouteLLM's: for a strong and a weak candidate, PGR(x) = (quality(x) - quality_weak) / (quality_strong -
quality_weak) at a share x of queries sent to the strong one; APGR is its area over x in [0, 1] (trapezoids) and
CPT(p) the smallest share whose PGR reaches p. :func:`benchmark_cost_analysis` gathers them for one router on one
benchmark (``report.py``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

import metrics
from candidates import Price
from routers.policy import (CURVE_POINTS, cost_aware_choice, estimate_tokens, expected_costs, quality_estimates,
                            realised_costs, typical_output_tokens, willingness_grid)

SHARE_STEPS = 10         # strong-share steps of the APGR curve (0%, 10%, ..., 100%), as RouteLLM


def benchmark_headline(benchmark: str, records: Sequence[dict],
                       alpaca_difficulty=None) -> Callable[[np.ndarray], float]:
    """A function choices -> the benchmark's headline score (``metrics.benchmark_metric``: the records are read
    once)."""
    return metrics.benchmark_metric(benchmark, records, alpaca_difficulty).headline


@dataclass
class CurvePoint:
    willingness_to_pay: float
    cost: float                  # mean realised cost, USD per 1,000 queries
    quality: float               # the benchmark's headline score
    route_share: list[float]


def quality_cost_curve(headline: Callable[[np.ndarray], float], quality: np.ndarray, decision_costs: np.ndarray,
                       realised: np.ndarray, max_points: int = CURVE_POINTS) -> list[CurvePoint]:
    """One point per distinct routing over the lambda sweep (choices on ``decision_costs``, cost measured on
    ``realised``), sorted by cost; the first lambda reaching a routing names it."""
    points, seen = [], set()
    k = quality.shape[1]
    for lam in willingness_grid(quality, decision_costs, max_points):
        choices = cost_aware_choice(quality, decision_costs, lam)
        key = choices.tobytes()
        if key in seen:
            continue
        seen.add(key)
        points.append(CurvePoint(float(lam), float(realised[np.arange(len(choices)), choices].mean()),
                                 float(headline(choices)), (np.bincount(choices, minlength=k) / len(choices)).tolist()))
    return sorted(points, key=lambda point: (point.cost, point.quality))


def fixed_points(headline: Callable[[np.ndarray], float], realised: np.ndarray) -> list[tuple[float, float]]:
    """(mean cost, headline) of sending every query to candidate j, for each j."""
    n, k = realised.shape
    return [(float(realised[:, j].mean()), float(headline(np.full(n, j)))) for j in range(k)]


def nondecreasing_hull(points) -> np.ndarray:
    """Vertices [m, 2] (cost, quality), by increasing cost, of the non-decreasing convex hull of ``points``:
    h(c) = the best quality that mixing the points reaches at a mean cost <= c (flat after its last vertex)."""
    array = np.asarray(points, dtype=float).reshape(-1, 2)
    order = np.lexsort((-array[:, 1], array[:, 0]))  # by cost, best quality first among equal costs
    hull: list[np.ndarray] = []
    for point in array[order]:
        if hull and point[0] == hull[-1][0]:
            continue  # same cost, lower quality
        while len(hull) >= 2:
            (x0, y0), (x1, y1) = hull[-2], hull[-1]
            if (x1 - x0) * (point[1] - y0) - (y1 - y0) * (point[0] - x0) >= 0:
                hull.pop()  # hull[-1] lies on or under the chord from hull[-2] to point
            else:
                break
        hull.append(point)
    vertices = np.array(hull)
    return vertices[:int(vertices[:, 1].argmax()) + 1]


def aiq(points, cost_range: tuple[float, float]) -> float:
    """RouterBench's AIQ: the mean of the non-decreasing convex hull of ``points`` over ``cost_range``
    (the integral of the piecewise-linear hull divided by the range's width)."""
    low, high = cost_range
    hull = nondecreasing_hull(points)
    if low < hull[0, 0]:
        raise ValueError(f"The cost range starts at {low}, below the cheapest point ({hull[0, 0]}): add a point "
                         f"there (e.g. the cheapest candidate's) or start the range later.")
    if high <= low:
        return float(np.interp(low, hull[:, 0], hull[:, 1]))
    xs = np.unique(np.concatenate([[low, high], hull[(hull[:, 0] > low) & (hull[:, 0] < high), 0]]))
    ys = np.interp(xs, hull[:, 0], hull[:, 1])
    return float(np.sum((ys[1:] + ys[:-1]) / 2 * np.diff(xs)) / (high - low))


def strong_share_curve(headline: Callable[[np.ndarray], float], quality: np.ndarray, strong: int, weak: int,
                       steps: int = SHARE_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """(shares, headlines): the headline when the share s of queries with the largest quality_strong -
    quality_weak (rounded half up) goes to ``strong`` and the rest to ``weak``, for s = 0, 1/steps, ..., 1 (ties:
    lower index first)."""
    signal = np.asarray(quality)[:, strong] - np.asarray(quality)[:, weak]
    order = np.argsort(-signal, kind="stable")
    shares = np.linspace(0, 1, steps + 1)
    qualities = []
    for share in shares:
        choices = np.full(len(signal), weak)
        choices[order[:int(np.floor(share * len(signal) + 0.5))]] = strong
        qualities.append(headline(choices))
    return shares, np.array(qualities, dtype=float)


def performance_gap_recovered(qualities, weak_quality: float, strong_quality: float) -> np.ndarray | None:
    gap = strong_quality - weak_quality
    return None if gap == 0 else (np.asarray(qualities, dtype=float) - weak_quality) / gap


def apgr(shares, qualities, weak_quality: float, strong_quality: float) -> float | None:
    """RouteLLM's APGR: the area under PGR over the strong share (trapezoids); None when both candidates tie."""
    recovered = performance_gap_recovered(qualities, weak_quality, strong_quality)
    if recovered is None:
        return None
    shares = np.asarray(shares, dtype=float)
    return float(np.sum((recovered[1:] + recovered[:-1]) / 2 * np.diff(shares)))


def cpt(shares, qualities, weak_quality: float, strong_quality: float, target: float) -> float | None:
    """RouteLLM's CPT(target): the smallest strong share whose PGR reaches ``target`` (e.g. 0.5), interpolated
    linearly between curve points at the first crossing; None when never reached or both candidates tie."""
    recovered = performance_gap_recovered(qualities, weak_quality, strong_quality)
    if recovered is None:
        return None
    shares = np.asarray(shares, dtype=float)
    reached = np.flatnonzero(recovered >= target)
    if len(reached) == 0:
        return None
    i = int(reached[0])
    if i == 0:
        return float(shares[0])
    fraction = (target - recovered[i - 1]) / (recovered[i] - recovered[i - 1])
    return float(shares[i - 1] + fraction * (shares[i] - shares[i - 1]))


def benchmark_cost_analysis(headline: Callable[[np.ndarray], float], records: Sequence[dict], router_scores,
                            score_kind: str, prices: Sequence[Price], pair: tuple[int, int] | None = None) -> dict:
    """Quality–cost curve, AIQ (router and zero router) and APGR / CPT of one router on one benchmark.

    Decisions use expected costs with each candidate's typical output tokens taken as its mean on these
    records (k numbers a deployment would estimate from its own traffic); costs are measured on the actual
    answers. AIQ is taken over the fixed candidates' cost range; the router's points include the cheapest
    candidate's (any router reaches it by sending everything there). ``pair`` = (strong, weak): by default the
    best fixed candidate and the cheapest other one.
    """
    quality = quality_estimates(router_scores, score_kind)
    realised = realised_costs(records, prices)
    input_tokens = [estimate_tokens(record["prompt"]) for record in records]
    decision = expected_costs(input_tokens, prices, typical_output_tokens(records))
    curve = quality_cost_curve(headline, quality, decision, realised)
    fixed = fixed_points(headline, realised)
    fixed_costs = [cost for cost, _ in fixed]
    cheapest = int(np.argmin(fixed_costs))
    cost_range = (min(fixed_costs), max(fixed_costs))
    if pair is None:
        strong = int(np.argmax([q for _, q in fixed]))
        weak = min((j for j in range(len(fixed)) if j != strong), key=lambda j: fixed_costs[j])
        pair = (strong, weak)
    strong, weak = pair
    shares, share_qualities = strong_share_curve(headline, quality, strong, weak)
    weak_quality, strong_quality = fixed[weak][1], fixed[strong][1]
    return {
        "curve": [dataclasses.asdict(point) for point in curve],
        "fixed": [{"cost": cost, "quality": q} for cost, q in fixed],
        "cost_range": list(cost_range),
        "aiq": aiq([(p.cost, p.quality) for p in curve] + [fixed[cheapest]], cost_range),
        "aiq_zero_router": aiq(fixed, cost_range),
        "pair": {"strong": strong, "weak": weak},
        "strong_share_curve": {"shares": shares.tolist(), "quality": share_qualities.tolist()},
        "apgr": apgr(shares, share_qualities, weak_quality, strong_quality),
        "cpt50": cpt(shares, share_qualities, weak_quality, strong_quality, 0.5),
        "cpt80": cpt(shares, share_qualities, weak_quality, strong_quality, 0.8),
    }
