"""Cost-aware routing: per-query costs, the willingness-to-pay rule, quality–cost curves, AIQ, APGR / CPT and
the calibration of a router's policy to a budget or to a share of the strong candidate.

Units and estimates
    Prices are USD per million input and output tokens per candidate, from a candidates config (YAML, see
    ``candidates.example.yaml``; the paper's five candidates have no official prices, so that file's prices
    are illustrative). Costs are in USD per 1,000 queries (the cost of one query x 1000), which keeps typical
    values between 0.01 and 10 and the willingness to pay readable.
    Output tokens of a response: the count the data records where it has one (``output_tokens`` attached by
    :func:`attach_recorded_output_tokens`, from the Self-OSS training set's ``response_toknes``), else
    len(text) / 4 (``CHARS_PER_TOKEN``). Input tokens: len(prompt) / 4.

Normalised scores
    A router's scores become per-candidate quality estimates in [0, 1] (:func:`normalise_scores`): softmax
    over the candidates for routers trained with a distribution loss (CE, ForwardKL, ReverseKL: the
    probability that a candidate is the best), sigmoid for independent per-candidate losses (BCE, MSE), and
    unchanged for the baseline routers (kNN and cluster scores are mean normalised scores already; the oracle's
    are the true scores).

Cost-aware choice (:class:`RoutingPolicy`)
    ``willingness_to_pay`` rule: argmax_j quality_j - lambda * cost_j (lowest index on ties); lambda = 0
    routes on quality alone. The cost a router can know before the answer exists is the *expected* cost:
    the prompt's input tokens plus the candidate's typical output tokens (:func:`expected_costs`).
    ``threshold`` rule (RouteLLM style, two candidates): the strong candidate when
    quality_strong - quality_weak >= threshold, else the weak one.

Curves and summary metrics
    :func:`quality_cost_curve` sweeps lambda and records each distinct routing's mean realised cost (the
    answers' actual token counts) and benchmark headline score. :func:`aiq` is RouterBench's AIQ: the mean,
    over a cost range, of the non-decreasing convex hull of the points (:func:`nondecreasing_hull`; mixing two
    routings at random reaches any point between them, and no one pays more for less). :func:`apgr` and
    :func:`cpt` are RouteLLM's: for a strong and a weak candidate, PGR(x) = (quality(x) - quality_weak) /
    (quality_strong - quality_weak) at a share x of queries sent to the strong one; APGR is its area over
    x in [0, 1] (trapezoids) and CPT(p) the smallest share whose PGR reaches p.

Calibration (``python src/cost.py``): route a validation split with a trained router and save, next to it
(``routing_policy.json``), the lambda whose mean expected cost meets a budget or the threshold that sends a
target share of queries to the strong candidate.

    python src/cost.py --router output/quality/mask_concat_minilm/fold_0 --config candidates.example.yaml \\
        --budget 0.4
    python src/cost.py --router ... --config ... --strong_share 0.3 --strong Yi-1.5-34B-Chat \\
        --weak Qwen2.5-Coder-7B-Instruct
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import yaml

import metrics
from data import load_train_set, resolve_train_set
from data.train_sets import empty_split_error
from routers.base import normalize_scores_by_source
from utils.io import DataError, exists, read_json, read_jsonl, read_text, writable_dir, write_json

logger = logging.getLogger("cost")

CHARS_PER_TOKEN = 4.0
DEFAULT_TYPICAL_OUTPUT_TOKENS = 500.0  # a candidate's expected answer length when nothing better is known
POLICY_FILE = "routing_policy.json"
CURVE_POINTS = 64        # lambda values tried per curve (all distinct routings when there are fewer)
SHARE_STEPS = 10         # strong-share steps of the APGR curve (0%, 10%, ..., 100%), as RouteLLM
SCORE_KIND_OF_LOSS = {"CE": "softmax", "KL": "softmax", "ForwardKL": "softmax", "ReverseKL": "softmax",
                      "BCE": "sigmoid", "MSE": "sigmoid"}
SCORE_KINDS = ("softmax", "sigmoid", "identity")


# --------------------------------------------------------------------------------------------------
# Prices, tokens, costs
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Price:
    """USD per million input / output tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens, output_tokens):
        """Cost in USD per 1,000 queries of queries with these token counts (numbers or arrays)."""
        return (np.asarray(input_tokens) * self.input_per_million
                + np.asarray(output_tokens) * self.output_per_million) / 1000.0


def estimate_tokens(text: str | None) -> float:
    """Token estimate of ``text``: characters / 4."""
    return len(text or "") / CHARS_PER_TOKEN


def load_config(path: str | Path) -> dict:
    """The candidates config (YAML): a mapping whose ``candidates`` lists one mapping per candidate with a
    unique ``name``; other fields are read by their users (prices here, endpoints by serve.py)."""
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


def output_tokens(record: dict) -> list[float]:
    """Each candidate's output tokens on ``record``: its recorded count, else the estimate from the text."""
    recorded = record.get("output_tokens") or [None] * len(record["responses"])
    return [float(count) if count is not None else estimate_tokens(response)
            for count, response in zip(recorded, record["responses"])]


def realised_costs(records: Sequence[dict], prices: Sequence[Price]) -> np.ndarray:
    """[n, k] cost of each candidate's actual answer to each record (USD per 1,000 queries)."""
    input_tokens = np.array([estimate_tokens(record["prompt"]) for record in records])
    answers = np.array([output_tokens(record) for record in records], dtype=float)
    return np.stack([price.cost(input_tokens, answers[:, j]) for j, price in enumerate(prices)], axis=1)


def typical_output_tokens(records: Sequence[dict]) -> list[float]:
    """Each candidate's mean output tokens over ``records``."""
    return [float(v) for v in np.array([output_tokens(record) for record in records], dtype=float).mean(axis=0)]


def expected_costs(input_tokens: Sequence[float], prices: Sequence[Price],
                   typical_outputs: Sequence[float]) -> np.ndarray:
    """[n, k] cost a router can expect before answering: the input tokens plus each candidate's typical output."""
    input_tokens = np.asarray(input_tokens, dtype=float)
    return np.stack([price.cost(input_tokens, np.full_like(input_tokens, out))
                     for price, out in zip(prices, typical_outputs)], axis=1)


def attach_recorded_output_tokens(records: list[dict], set_dir: str | Path, candidates: Sequence[str],
                                  score_dir: str = "responses") -> list[dict]:
    """Set ``record["output_tokens"]`` (k counts, None where unknown) from the token counts that a training set's
    ``<set_dir>/<score_dir>/<llm>.jsonl`` files record (``response_toknes``, as the Self-OSS files spell it, or
    ``response_tokens``). Returns ``records``."""
    counts = []
    for llm in candidates:
        path = Path(set_dir) / score_dir / f"{llm}.jsonl"
        rows = read_jsonl(path) if exists(path) else []
        counts.append({str(row.get("prompt_id")): row.get("response_toknes", row.get("response_tokens"))
                       for row in rows})
    for record in records:
        record["output_tokens"] = [per_llm.get(str(record["prompt_id"])) for per_llm in counts]
    return records


# --------------------------------------------------------------------------------------------------
# Normalised scores and the routing policy
# --------------------------------------------------------------------------------------------------

def normalise_scores(router_scores, kind: str) -> np.ndarray:
    """[n, k] quality estimates from a router's scores: ``softmax`` / ``sigmoid`` of logits, or ``identity``."""
    scores = np.asarray(router_scores, dtype=float)
    if kind == "softmax":
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-scores))
    if kind == "identity":
        return scores
    raise ValueError(f"Unknown score kind {kind!r}; choose one of {SCORE_KINDS}.")


def score_kind_of(folder: str | Path) -> str:
    """How to normalise the scores of the router or run in ``folder``: from the routing loss of a trained router
    (router_config.json, else run_args.json in the folder or, for a cross-fit fold, its parent), ``identity`` for a
    baseline run (run_args.json of eval_baseline.py, with its router_type)."""
    folder = Path(folder)
    for description in (folder / "router_config.json", folder / "run_args.json", folder.parent / "run_args.json"):
        if description.exists():
            loss = read_json(description).get("loss_type")
            if loss is not None:
                if loss not in SCORE_KIND_OF_LOSS:
                    raise DataError(f"{description}: field 'loss_type' is {loss!r}, not one of "
                                    f"{sorted(SCORE_KIND_OF_LOSS)}.")
                return SCORE_KIND_OF_LOSS[loss]
    if (folder / "run_args.json").exists() and "router_type" in read_json(folder / "run_args.json"):
        return "identity"
    if (folder / "router_config.json").exists():
        logger.warning("%s: no loss_type recorded (router_config.json or run_args.json); assuming CE (softmax)",
                       folder)
        return "softmax"
    raise DataError(f"{folder}: neither a trained router (router_config.json, run_args.json) nor a baseline run "
                    f"(run_args.json with router_type); cannot tell how to read its scores.")


def cost_aware_choice(quality: np.ndarray, costs: np.ndarray, willingness_to_pay: float) -> np.ndarray:
    """argmax_j quality_j - willingness_to_pay * cost_j per row, the lowest index on ties."""
    return (np.asarray(quality) - willingness_to_pay * np.asarray(costs)).argmax(axis=1)


def threshold_choice(quality: np.ndarray, strong: int, weak: int, threshold: float) -> np.ndarray:
    """``strong`` where quality_strong - quality_weak >= threshold, else ``weak``."""
    quality = np.asarray(quality)
    return np.where(quality[:, strong] - quality[:, weak] >= threshold, strong, weak)


@dataclass
class RoutingPolicy:
    """How a router turns quality estimates into a choice, and the cost model that goes with it.

    rule                    ``willingness_to_pay`` (argmax quality - lambda * expected cost) or ``threshold``
    willingness_to_pay      lambda, in quality per (USD per 1,000 queries); 0 = quality alone
    strong, weak, threshold the threshold rule's two candidates (names) and threshold
    prices, typical_output_tokens   per candidate, for the expected costs (needed when lambda > 0)
    calibration             how the values were chosen (target, validation results), for the record
    """

    candidates: list[str]
    rule: str = "willingness_to_pay"
    willingness_to_pay: float = 0.0
    strong: str | None = None
    weak: str | None = None
    threshold: float | None = None
    prices: list[Price] | None = None
    typical_output_tokens: list[float] | None = None
    calibration: dict | None = None

    def __post_init__(self):
        if self.rule not in ("willingness_to_pay", "threshold"):
            raise DataError(f"routing policy: rule {self.rule!r} must be 'willingness_to_pay' or 'threshold'.")
        if self.rule == "threshold":
            for name in (self.strong, self.weak):
                if name not in self.candidates:
                    raise DataError(f"routing policy: threshold candidate {name!r} is not one of {self.candidates}.")
            if self.threshold is None:
                raise DataError("routing policy: the threshold rule needs a threshold.")
        elif self.willingness_to_pay < 0:
            raise DataError(f"routing policy: willingness_to_pay must be >= 0, got {self.willingness_to_pay}.")
        elif self.willingness_to_pay > 0 and self.prices is None:
            raise DataError("routing policy: willingness_to_pay > 0 needs the candidates' prices.")

    def expected_costs(self, input_tokens: Sequence[float], max_output_tokens: int | None = None) -> np.ndarray:
        """[n, k] expected costs (zeros without prices); ``max_output_tokens`` caps the typical output."""
        if self.prices is None:
            return np.zeros((len(input_tokens), len(self.candidates)))
        typical = self.typical_output_tokens or [DEFAULT_TYPICAL_OUTPUT_TOKENS] * len(self.candidates)
        if max_output_tokens is not None:
            typical = [min(out, max_output_tokens) for out in typical]
        return expected_costs(input_tokens, self.prices, typical)

    def choose(self, quality: np.ndarray, costs: np.ndarray) -> np.ndarray:
        """The chosen candidate index per row of ``quality`` [n, k] (``costs`` [n, k]: expected costs)."""
        if self.rule == "threshold":
            return threshold_choice(quality, self.candidates.index(self.strong), self.candidates.index(self.weak),
                                    self.threshold)
        return cost_aware_choice(quality, costs, self.willingness_to_pay)

    def to_json(self) -> dict:
        values = dataclasses.asdict(self)
        if self.prices is not None:
            values["prices"] = [dataclasses.asdict(price) for price in self.prices]
        return values

    @classmethod
    def from_json(cls, values: dict, where: str) -> "RoutingPolicy":
        try:
            values = dict(values)
            if values.get("prices") is not None:
                values["prices"] = [Price(**price) for price in values["prices"]]
            return cls(**values)
        except TypeError as error:
            raise DataError(f"{where}: not a routing policy ({error}). "
                            f"Recalibrate with `python src/cost.py`.") from None


def load_policy(folder: str | Path, candidates: Sequence[str]) -> RoutingPolicy | None:
    """The policy saved next to the router in ``folder`` (``routing_policy.json``), or None."""
    path = Path(folder) / POLICY_FILE
    if not path.exists():
        return None
    policy = RoutingPolicy.from_json(read_json(path), str(path))
    if policy.candidates != list(candidates):
        raise DataError(f"{path}: calibrated for candidates {policy.candidates}, but the router has "
                        f"{list(candidates)}. "
                        f"Recalibrate with `python src/cost.py --router {folder} ...`.")
    return policy


# --------------------------------------------------------------------------------------------------
# Curves and their summaries
# --------------------------------------------------------------------------------------------------

def benchmark_headline(benchmark: str, records: Sequence[dict],
                       alpaca_difficulty=None) -> Callable[[np.ndarray], float]:
    """A function choices -> the benchmark's headline score (metrics' scorer: the records are read once)."""
    return metrics.benchmark_metric(benchmark, records, alpaca_difficulty).headline


def crossing_points(quality: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Sorted distinct lambdas > 0 at which some query's cost-aware choice may change: where a dearer, better
    candidate's line quality - lambda * cost crosses a cheaper one's."""
    quality, costs = np.asarray(quality, dtype=float), np.asarray(costs, dtype=float)
    crossings = []
    k = quality.shape[1]
    for a in range(k):
        for b in range(k):
            dq, dc = quality[:, a] - quality[:, b], costs[:, a] - costs[:, b]
            valid = (dq > 0) & (dc > 0)
            crossings.append(dq[valid] / dc[valid])
    return np.unique(np.concatenate(crossings)) if crossings else np.zeros(0)


def willingness_grid(quality: np.ndarray, costs: np.ndarray, max_points: int = CURVE_POINTS) -> np.ndarray:
    """Lambdas that visit every distinct cost-aware routing (0, a point between each two consecutive crossings,
    one past the last) when there are at most ``max_points`` of them, else ``max_points`` spread by quantile."""
    crossings = crossing_points(quality, costs)
    if len(crossings) == 0:
        return np.zeros(1)
    between = np.concatenate([[0.0], (crossings[:-1] + crossings[1:]) / 2, [2 * crossings[-1]]])
    if len(between) <= max_points:
        return between
    return np.unique(np.quantile(between, np.linspace(0, 1, max_points)))


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
    quality = normalise_scores(router_scores, score_kind)
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


# --------------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------------

def calibrate_willingness_to_pay(quality: np.ndarray, costs: np.ndarray, budget: float) -> float:
    """The smallest lambda (within the interval of lambdas giving the same routing: its midpoint) whose mean
    ``costs`` of the cost-aware choices is at most ``budget``; 0 when quality alone fits the budget. The mean cost
    never increases with lambda, so the search bisects the grid of all distinct routings."""
    costs = np.asarray(costs, dtype=float)
    rows = np.arange(len(costs))

    def mean_cost(lam: float) -> float:
        return float(costs[rows, cost_aware_choice(quality, costs, lam)].mean())

    grid = willingness_grid(quality, costs, max_points=len(costs) * costs.shape[1] ** 2 + 2)
    if mean_cost(grid[-1]) > budget:
        raise DataError(f"A budget of {budget} (USD per 1,000 queries) is below the cheapest routing's mean cost "
                        f"{mean_cost(grid[-1]):.4g}; raise the budget.")
    low, high = 0, len(grid) - 1  # invariant: grid[high] meets the budget
    while low < high:
        middle = (low + high) // 2
        if mean_cost(grid[middle]) <= budget:
            high = middle
        else:
            low = middle + 1
    return float(grid[high])


def calibrate_threshold(quality: np.ndarray, strong: int, weak: int, share: float) -> float:
    """The threshold on quality_strong - quality_weak that sends share x n queries (rounded half up) to ``strong`` (the
    midpoint between the last one sent and the first one kept; ties with that value are all sent)."""
    if not 0 <= share <= 1:
        raise DataError(f"The strong share must lie in [0, 1], got {share}.")
    signal = np.sort(np.asarray(quality)[:, strong] - np.asarray(quality)[:, weak])[::-1]
    count = int(np.floor(share * len(signal) + 0.5))
    if count == 0:
        return float(signal[0] + 1.0)
    if count == len(signal):
        return float(signal[-1] - 1.0)
    return float((signal[count - 1] + signal[count]) / 2)


def check_target(candidates: Sequence[str] | None, budget: float | None, strong_share: float | None,
                 strong: str | None, weak: str | None) -> None:
    """A calibration target is exactly one of ``budget`` (finite, >= 0, USD per 1,000 queries) and ``strong_share`` (in
    [0, 1]); with a strong share, ``strong`` and ``weak`` are two different names of ``candidates`` (not checked when
    ``candidates`` is None). DataError naming the flag otherwise."""
    if (budget is None) == (strong_share is None):
        raise DataError("Give exactly one target: --budget or --strong_share.")
    if budget is not None and not (math.isfinite(budget) and budget >= 0):
        raise DataError(f"--budget must be a finite number >= 0 (USD per 1,000 queries), got {budget}. Pass a "
                        f"budget >= 0.")
    if strong_share is not None:
        if not (math.isfinite(strong_share) and 0 <= strong_share <= 1):
            raise DataError(f"--strong_share must lie in [0, 1], got {strong_share}. Pass a share between 0 and 1.")
        if candidates is not None and (strong not in candidates or weak not in candidates or strong == weak):
            raise DataError(f"--strong and --weak must name two different candidates of the router {list(candidates)}, "
                            f"got {strong!r} and {weak!r}. Pass two of those.")


def calibrate(router, records: list[dict], prices: list[Price], budget: float | None = None,
              strong_share: float | None = None, strong: str | None = None, weak: str | None = None) -> RoutingPolicy:
    """A policy for ``router`` (a ``PretrainedRouter``) fitted on the validation ``records``: lambda for a mean
    expected-cost ``budget``, or the threshold that sends ``strong_share`` of the queries to ``strong``."""
    check_target(router.candidates, budget, strong_share, strong, weak)
    candidates = router.candidates
    quality = normalise_scores(router.route([r["prompt"] for r in records],
                                            responses=[r["responses"] for r in records]), router.score_kind)
    typical = typical_output_tokens(records)
    costs = expected_costs([estimate_tokens(r["prompt"]) for r in records], prices, typical)
    if budget is not None:
        policy = RoutingPolicy(candidates, willingness_to_pay=calibrate_willingness_to_pay(quality, costs, budget),
                               prices=list(prices), typical_output_tokens=typical)
        target = {"budget": budget}
    else:
        threshold = calibrate_threshold(quality, candidates.index(strong), candidates.index(weak), strong_share)
        policy = RoutingPolicy(candidates, rule="threshold", strong=strong, weak=weak, threshold=threshold,
                               prices=list(prices), typical_output_tokens=typical)
        target = {"strong_share": strong_share, "strong": strong, "weak": weak}
    choices = policy.choose(quality, costs)
    rewards = normalize_scores_by_source(records)[np.arange(len(records)), choices]
    policy.calibration = {
        "target": target,
        "validation_queries": len(records),
        "mean_expected_cost": float(costs[np.arange(len(records)), choices].mean()),
        "mean_realised_cost": float(realised_costs(records, prices)[np.arange(len(records)), choices].mean()),
        "route_share": {name: float(share) for name, share in
                        zip(candidates, np.bincount(choices, minlength=len(candidates)) / len(records))},
        "mean_normalised_score": float(rewards.mean()),
    }
    return policy


def main(argv: list[str] | None = None) -> None:
    from routers.pretrained import PretrainedRouter  # here, not at the top: routers.pretrained imports this module

    parser = argparse.ArgumentParser(description="Calibrate a trained router's cost-aware policy on a validation "
                                                 "split and save it next to the router (routing_policy.json).")
    parser.add_argument("--router", required=True, help="A trained router folder (with router_config.json).")
    parser.add_argument("--config", required=True, help="Candidates config with prices (candidates.example.yaml).")
    parser.add_argument("--budget", type=float, help="Target mean expected cost, USD per 1,000 queries.")
    parser.add_argument("--strong_share", type=float, help="Target share of queries sent to --strong.")
    parser.add_argument("--strong", help="The strong candidate of --strong_share.")
    parser.add_argument("--weak", help="The weak candidate of --strong_share.")
    parser.add_argument("--data_dir", help="Folder holding train/ (default: the router's training run's).")
    parser.add_argument("--validation_sets", nargs="+", help="Training sets (<set>/<score dir>) whose eval split is "
                                                             "the validation split (default: the router's training "
                                                             "sets).")
    args = parser.parse_args(argv)

    # Flags, config, router and data are checked in that order, before any routing.
    check_target(None, args.budget, args.strong_share, args.strong, args.weak)
    config = load_config(args.config)
    router = PretrainedRouter.from_pretrained(args.router)
    check_target(router.candidates, args.budget, args.strong_share, args.strong, args.weak)
    prices = prices_from_config(config, router.candidates, args.config)
    writable_dir(args.router, "--router")
    run_args = next((read_json(path) for path in (Path(args.router) / "run_args.json",
                                                  Path(args.router).parent / "run_args.json") if path.exists()), {})
    data_dir = args.data_dir or run_args.get("data_dir")
    sets = args.validation_sets or run_args.get("train_datasets")
    if not data_dir or not sets:
        raise SystemExit("error: pass --data_dir and --validation_sets (the router's run_args.json has neither).")
    resolved = [resolve_train_set(name, data_dir) for name in sets]  # DataError naming a bad entry
    records = []
    for set_dir, score_dir in resolved:
        records += attach_recorded_output_tokens(load_train_set(set_dir, router.candidates, score_dir, split="eval"),
                                                 set_dir, router.candidates, score_dir)
    if not records:
        raise empty_split_error([set_dir for set_dir, _ in resolved], "eval")
    policy = calibrate(router, records, prices, args.budget, args.strong_share, args.strong, args.weak)
    write_json(Path(args.router) / POLICY_FILE, policy.to_json())
    print(f"saved {Path(args.router) / POLICY_FILE}:")
    print(yaml.safe_dump({key: value for key, value in policy.to_json().items() if key != "prices"}, sort_keys=False))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main()
