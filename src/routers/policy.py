"""The routing decision: a router's scores -> quality estimates -> the cost-aware choice, and fitting its policy.

Units and estimates
    Prices are USD per million input and output tokens per candidate, from the candidates config
    (``candidates.py``). Costs are in USD per 1,000 queries (the cost of one query x 1000), which keeps typical
    values between 0.01 and 10 and the willingness to pay readable. Output tokens of a response: the count the
    data records where it has one (``output_tokens``, attached by ``calibrate.attach_recorded_output_tokens`` from
    the Self-OSS training set's ``response_toknes``), else len(text) / 4 (``CHARS_PER_TOKEN``). Input tokens:
    len(prompt) / 4.

Quality estimates (:func:`quality_estimates`)
    A router's scores become per-candidate quality estimates in [0, 1] by the *score kind* of the loss it was
    trained with (``model.losses.ROUTING_LOSSES``): softmax over the candidates for the distribution losses (CE,
    ForwardKL, ReverseKL: the probability that a candidate is the best), sigmoid for the independent
    per-candidate losses (BCE, MSE), and unchanged (``identity``) for the baseline routers (kNN and cluster scores
    are mean scaled scores already; the oracle's are the true scores). :func:`score_kind_of` tells a folder's.

Cost-aware choice (:class:`RoutingPolicy`; :meth:`RoutingPolicy.decide` is the one routing decision, used by
``routers.pretrained`` and ``serve.py``)
    ``willingness_to_pay`` rule: argmax_j quality_j - lambda * cost_j (lowest index on ties); lambda = 0
    routes on quality alone. The cost a router can know before the answer exists is the *expected* cost:
    the prompt's input tokens plus the candidate's typical output tokens (:func:`expected_costs`).
    ``threshold`` rule (RouteLLM style, two candidates): the strong candidate when
    quality_strong - quality_weak >= threshold, else the weak one.

Fitting a policy (:func:`calibrate`; the command is ``python src/calibrate.py``)
    The lambda whose mean expected cost on a validation split meets a budget (bisection over the grid of all
    distinct routings, :func:`willingness_grid`), or the threshold that sends a target share of the queries to
    the strong candidate; saved next to the router as ``routing_policy.json`` and loaded by :func:`load_policy`.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from candidates import Price
from data.scaling import scale_scores_by_source
from model import router_stage
from model.losses import ROUTING_LOSSES
from utils.io import DataError, read_json

logger = logging.getLogger("policy")

CHARS_PER_TOKEN = 4.0
DEFAULT_TYPICAL_OUTPUT_TOKENS = 500.0  # a candidate's expected answer length when nothing better is known
POLICY_FILE = "routing_policy.json"
CURVE_POINTS = 64  # lambdas of a willingness grid (all distinct routings when there are fewer)
SCORE_KINDS = ("softmax", "sigmoid", "identity")


# --------------------------------------------------------------------------------------------------
# Tokens and costs
# --------------------------------------------------------------------------------------------------

def estimate_tokens(text: str | None) -> float:
    """Token estimate of ``text``: characters / 4."""
    return len(text or "") / CHARS_PER_TOKEN


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


# --------------------------------------------------------------------------------------------------
# Quality estimates, the choice rules and the policy
# --------------------------------------------------------------------------------------------------

def quality_estimates(router_scores, kind: str) -> np.ndarray:
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
    """How to read the scores of the router or run in ``folder`` as quality estimates (a ``SCORE_KINDS`` entry):
    the score kind of a trained router's routing loss
    (its config.json, else run_args.json in the folder or, for a cross-fit fold, its parent), ``identity`` for a
    baseline run (run_args.json of eval_baseline.py, with its router_type)."""
    folder = Path(folder)
    router = router_stage(folder) is not None
    descriptions = ([folder / "config.json"] if router else []) + [folder / "run_args.json",
                                                                   folder.parent / "run_args.json"]
    for description in descriptions:
        if description.exists():
            loss = read_json(description).get("loss_type")
            if loss is not None:
                if loss not in ROUTING_LOSSES:
                    raise DataError(f"{description}: field 'loss_type' is {loss!r}, not one of "
                                    f"{sorted(ROUTING_LOSSES)}.")
                return ROUTING_LOSSES[loss].score_kind
    if (folder / "run_args.json").exists() and "router_type" in read_json(folder / "run_args.json"):
        return "identity"
    if router:
        logger.warning("%s: no loss_type recorded (config.json or run_args.json); assuming CE (softmax)",
                       folder)
        return "softmax"
    raise DataError(f"{folder}: neither a trained router (config.json with a stage, run_args.json) nor a baseline run "
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

    def decide(self, scores, score_kind: str, input_tokens: Sequence[float],
               max_output_tokens: int | None = None) -> "RoutingDecision":
        """The routing of n prompts from the router's ``scores`` [n, k] (read as ``score_kind``) and the prompts'
        ``input_tokens`` [n] (``estimate_tokens``); ``max_output_tokens`` caps the typical outputs of the
        expected costs (a request's max_tokens)."""
        scores = np.asarray(scores)
        quality = quality_estimates(scores, score_kind)
        costs = self.expected_costs(input_tokens, max_output_tokens)
        return RoutingDecision(self.candidates, scores, quality, costs, self.choose(quality, costs))

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
                            f"Recalibrate with `python src/calibrate.py`.") from None


@dataclass
class RoutingDecision:
    """One routing of n prompts over the k ``candidates`` (``RoutingPolicy.decide``)."""

    candidates: list[str]
    scores: np.ndarray    # [n, k] the router's raw scores
    quality: np.ndarray   # [n, k] quality estimates (quality_estimates)
    costs: np.ndarray     # [n, k] expected costs, USD per 1,000 queries (zeros without prices)
    choices: np.ndarray   # [n] chosen candidate indices

    def chosen(self) -> list[str]:
        """The chosen candidate's name for each prompt."""
        return [self.candidates[c] for c in self.choices]


def load_policy(folder: str | Path, candidates: Sequence[str]) -> RoutingPolicy | None:
    """The policy saved next to the router in ``folder`` (``routing_policy.json``), or None."""
    path = Path(folder) / POLICY_FILE
    if not path.exists():
        return None
    policy = RoutingPolicy.from_json(read_json(path), str(path))
    if policy.candidates != list(candidates):
        raise DataError(f"{path}: calibrated for candidates {policy.candidates}, but the router has "
                        f"{list(candidates)}. "
                        f"Recalibrate with `python src/calibrate.py --router {folder} ...`.")
    return policy


# --------------------------------------------------------------------------------------------------
# Fitting a policy to a target
# --------------------------------------------------------------------------------------------------

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
    quality = quality_estimates(router.route([r["prompt"] for r in records],
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
    rewards = scale_scores_by_source(records)[np.arange(len(records)), choices]
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
