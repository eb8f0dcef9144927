"""Cost-aware routing: costs, the lambda rule, curves, AIQ, APGR / CPT and calibration, against hand-computed values."""
import json
import math

import numpy as np
import pytest

import calibrate
import candidates
import cost_curves
from routers import policy as routing_policy
from routers.pretrained import PretrainedRouter
from trainers import save_untrained_router
from synthetic import CANDIDATES, write_synthetic_data
from test_pretrained_router import save_tiny_bert
from utils.io import DataError

# Three queries, two candidates. Quality estimates and decision costs (candidate 0 costs 2, candidate 1 costs 1):
#   query 0: 0.9 vs 0.5 -> candidate 0 until lambda = 0.4/1 = 0.4
#   query 1: 0.6 vs 0.5 -> candidate 0 until lambda = 0.1
#   query 2: 0.2 vs 0.8 -> candidate 1 always (better and cheaper)
QUALITY = np.array([[0.9, 0.5], [0.6, 0.5], [0.2, 0.8]])
COSTS = np.array([[2.0, 1.0]] * 3)
TRUE_SCORES = np.array([[1, 0], [0, 1], [0, 1]])  # accuracy headline = 100 x mean score of the choices


def accuracy(choices):
    return float(TRUE_SCORES[np.arange(len(choices)), choices].mean() * 100)


def test_prices_tokens_and_realised_costs():
    assert routing_policy.estimate_tokens("abcdefgh") == 2.0 and routing_policy.estimate_tokens(None) == 0.0
    price = candidates.Price(input_per_million=2.0, output_per_million=8.0)
    assert price.cost(100, 50) == pytest.approx((100 * 2 + 50 * 8) / 1000)  # USD per 1,000 queries
    records = [{"prompt": "x" * 40, "responses": ["y" * 400, "z" * 4], "output_tokens": [None, 30]}]
    realised = routing_policy.realised_costs(records, [price, candidates.Price(1.0, 1.0)])
    # candidate 0: 10 input + 100 estimated output tokens; candidate 1: 10 input + 30 recorded output tokens
    np.testing.assert_allclose(realised, [[(10 * 2 + 100 * 8) / 1000, (10 + 30) / 1000]])
    assert routing_policy.typical_output_tokens(records + [{"prompt": "", "responses": ["y" * 40, "z" * 40]}]) == [
        55.0, 20.0]
    np.testing.assert_allclose(routing_policy.expected_costs([10, 20], [price], [5]),
                               [[(20 + 40) / 1000], [(40 + 40) / 1000]])


def test_quality_estimates():
    scores = np.array([[0.0, np.log(3.0)], [2.0, 2.0]])
    np.testing.assert_allclose(routing_policy.quality_estimates(scores, "softmax"), [[0.25, 0.75], [0.5, 0.5]])
    np.testing.assert_allclose(routing_policy.quality_estimates([[0.0, np.log(3.0)]], "sigmoid"), [[0.5, 0.75]])
    np.testing.assert_allclose(routing_policy.quality_estimates(scores, "identity"), scores)
    with pytest.raises(ValueError, match="Unknown score kind"):
        routing_policy.quality_estimates(scores, "tanh")


def test_cost_aware_and_threshold_choices():
    assert routing_policy.cost_aware_choice(QUALITY, COSTS, 0.0).tolist() == [0, 0, 1]
    assert routing_policy.cost_aware_choice(QUALITY, COSTS, 0.25).tolist() == [0, 1, 1]
    assert routing_policy.cost_aware_choice(QUALITY, COSTS, 0.5).tolist() == [1, 1, 1]
    assert routing_policy.threshold_choice(QUALITY, strong=0, weak=1, threshold=0.2).tolist() == [0, 1, 1]


def test_quality_cost_curve_visits_every_distinct_routing():
    np.testing.assert_allclose(routing_policy.crossing_points(QUALITY, COSTS), [0.1, 0.4])
    np.testing.assert_allclose(routing_policy.willingness_grid(QUALITY, COSTS), [0.0, 0.25, 0.8])
    curve = cost_curves.quality_cost_curve(accuracy, QUALITY, COSTS, COSTS)
    np.testing.assert_allclose([(p.willingness_to_pay, p.cost, p.quality) for p in curve],
                               [(0.8, 1.0, 200 / 3), (0.25, 4 / 3, 100.0), (0.0, 5 / 3, 200 / 3)])
    assert curve[1].route_share == pytest.approx([1 / 3, 2 / 3])
    np.testing.assert_allclose(cost_curves.fixed_points(accuracy, COSTS), [(2.0, 100 / 3), (1.0, 200 / 3)])
    # Many crossings: the grid keeps max_points lambdas spread by quantile, from 0 to past the last crossing.
    rng = np.random.default_rng(0)
    quality, costs = rng.random((200, 3)), rng.random((200, 3))
    grid = routing_policy.willingness_grid(quality, costs, max_points=16)
    assert len(grid) == 16 and grid[0] == 0 and grid[-1] == 2 * routing_policy.crossing_points(quality, costs)[-1]


def test_nondecreasing_hull_and_aiq():
    points = [(0, 1), (1, 3), (1.5, 2), (2, 4), (3, 4.5), (4, 4), (1, 2.5)]
    np.testing.assert_allclose(cost_curves.nondecreasing_hull(points), [(0, 1), (1, 3), (2, 4), (3, 4.5)])
    np.testing.assert_allclose(cost_curves.nondecreasing_hull([(0, 0), (1, 1), (2, 2)]), [(0, 0), (2, 2)])  # collinear
    np.testing.assert_allclose(cost_curves.nondecreasing_hull([(0, 5), (1, 3), (2, 4)]), [(0, 5)])  # cheapest is best
    # trapezoids: (1+3)/2 + (3+4)/2 + (4+4.5)/2 + 4.5 (flat after the last vertex) = 14.25 over a width of 4
    assert cost_curves.aiq(points, (0, 4)) == pytest.approx(14.25 / 4)
    # from 0.5 (h = 2) to 2.5 (h = 4.25): 0.5 x 2.5 + 1 x 3.5 + 0.5 x 4.125 = 6.8125 over a width of 2
    assert cost_curves.aiq(points, (0.5, 2.5)) == pytest.approx(6.8125 / 2)
    with pytest.raises(ValueError, match="below the cheapest point"):
        cost_curves.aiq(points, (-1, 4))


def test_apgr_and_cpt():
    true_scores = np.array([[1, 0], [1, 0], [0, 0], [1, 1]])  # strong (0): 75%, weak (1): 25%
    quality = np.array([[0.9, 0.1], [0.2, 0.6], [0.5, 0.5], [0.7, 0.3]])  # strong - weak: 0.8, -0.4, 0, 0.4

    def headline(choices):
        return float(true_scores[np.arange(4), choices].mean() * 100)

    shares, qualities = cost_curves.strong_share_curve(headline, quality, strong=0, weak=1, steps=4)
    np.testing.assert_allclose(shares, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(qualities, [25, 50, 50, 50, 75])  # queries sent in the order 0, 3, 2, 1
    # PGR = [0, .5, .5, .5, 1]; trapezoids of width .25: .25 x (.25 + .5 + .5 + .75)
    assert cost_curves.apgr(shares, qualities, 25, 75) == pytest.approx(0.5)
    assert cost_curves.cpt(shares, qualities, 25, 75, 0.5) == pytest.approx(0.25)
    assert cost_curves.cpt(shares, qualities, 25, 75, 0.8) == pytest.approx(0.75 + 0.3 / 0.5 * 0.25)
    assert cost_curves.cpt(shares, qualities, 25, 75, 1.2) is None
    assert cost_curves.apgr(shares, qualities, 50, 50) is None
    assert cost_curves.cpt(shares, qualities, 50, 50, 0.5) is None


def test_calibration_to_a_budget_and_to_a_strong_share():
    # mean costs: lambda 0 -> 5/3, 0.25 -> 4/3, 0.8 -> 1
    assert routing_policy.calibrate_willingness_to_pay(QUALITY, COSTS, budget=2.0) == 0.0
    assert routing_policy.calibrate_willingness_to_pay(QUALITY, COSTS, budget=1.5) == pytest.approx(0.25)
    assert routing_policy.calibrate_willingness_to_pay(QUALITY, COSTS, budget=1.0) == pytest.approx(0.8)
    with pytest.raises(DataError, match="below the cheapest routing"):
        routing_policy.calibrate_willingness_to_pay(QUALITY, COSTS, budget=0.5)
    quality = np.array([[0.9, 0.1], [0.2, 0.6], [0.5, 0.5], [0.7, 0.3]])  # strong - weak: 0.8, -0.4, 0, 0.4
    assert routing_policy.calibrate_threshold(quality, 0, 1, 0.5) == pytest.approx(0.2)
    assert routing_policy.calibrate_threshold(quality, 0, 1, 0.25) == pytest.approx(0.6)
    assert routing_policy.calibrate_threshold(quality, 0, 1, 0.0) == pytest.approx(1.8)
    assert routing_policy.calibrate_threshold(quality, 0, 1, 1.0) == pytest.approx(-1.4)
    assert routing_policy.threshold_choice(quality, 0, 1, 0.2).tolist() == [0, 1, 1, 0]


def test_benchmark_cost_analysis_on_records():
    # prices make candidate 0's 8-character answers cost 2 and candidate 1's 4-character answers cost 1
    records = [{"prompt": "abcd", "responses": ["x" * 8, "y" * 4]} for _ in range(3)]
    prices = [candidates.Price(0.0, 1000.0), candidates.Price(0.0, 1000.0)]
    analysis = cost_curves.benchmark_cost_analysis(accuracy, records, QUALITY, "identity", prices)
    np.testing.assert_allclose([(p["cost"], p["quality"]) for p in analysis["curve"]],
                               [(1.0, 200 / 3), (4 / 3, 100.0), (5 / 3, 200 / 3)])
    assert analysis["fixed"] == [{"cost": 2.0, "quality": pytest.approx(100 / 3)},
                                 {"cost": 1.0, "quality": pytest.approx(200 / 3)}]
    assert analysis["cost_range"] == [1.0, 2.0]
    # hull (1, 200/3) -> (4/3, 100), then flat: (1/3)(200/3 + 100)/2 + (2/3) 100 = 850/9 over a width of 1
    assert analysis["aiq"] == pytest.approx(850 / 9)
    assert analysis["aiq_zero_router"] == pytest.approx(200 / 3)  # the cheaper candidate is also the better one
    assert analysis["pair"] == {"strong": 1, "weak": 0}
    assert analysis["strong_share_curve"]["quality"][0] == pytest.approx(100 / 3)
    assert analysis["strong_share_curve"]["quality"][-1] == pytest.approx(200 / 3)
    # strong 1 - weak 0 quality: -0.4, -0.1, 0.6, so queries go strong in the order 2, 1, 0; at shares 0, .1, ..., 1
    # round(3 x share) of them go: 0 0 1 1 1 2 2 2 2 3 3 -> accuracy 100/3, 200/3, 100 or 200/3 (all strong).
    # PGR = (accuracy - weak 100/3) / (strong 200/3 - weak 100/3) = 0 0 1 1 1 2 2 2 2 1 1
    assert analysis["strong_share_curve"]["shares"] == pytest.approx([i / 10 for i in range(11)])
    assert analysis["strong_share_curve"]["quality"] == pytest.approx(
        [100 / 3] * 2 + [200 / 3] * 3 + [100.0] * 4 + [200 / 3] * 2)
    assert analysis["apgr"] == pytest.approx(0.1 * (0.5 + 1 + 1 + 1.5 + 2 + 2 + 2 + 1.5 + 1))  # trapezoids: 1.25
    assert analysis["cpt50"] == pytest.approx(0.15)  # PGR 0 at share .1, 1 at .2: crosses .5 half-way
    assert analysis["cpt80"] == pytest.approx(0.18)
    swapped = cost_curves.benchmark_cost_analysis(accuracy, records, QUALITY, "identity", prices, pair=(0, 1))
    # strong 0 (100/3) below weak 1 (200/3): queries go to 0 in the order 0, 1, 2: accuracy 200/3 200/3 100 100
    # 100 200/3 200/3 200/3 200/3 100/3 100/3; PGR = (accuracy - 200/3) / (100/3 - 200/3) = 0 0 -1 -1 -1 0 0 0 0 1 1
    assert swapped["pair"] == {"strong": 0, "weak": 1}
    assert swapped["apgr"] == pytest.approx(0.1 * (-0.5 - 1 - 1 - 0.5 + 0.5 + 1))  # -0.15
    assert swapped["cpt50"] == pytest.approx(0.85) and swapped["cpt80"] == pytest.approx(0.88)


def test_policy_round_trip_and_validation(tmp_path):
    policy = routing_policy.RoutingPolicy(["A", "B"], willingness_to_pay=2.0,
                                          prices=[candidates.Price(1, 2), candidates.Price(3, 4)],
                                          typical_output_tokens=[10.0, 20.0], calibration={"target": {"budget": 1.0}})
    again = routing_policy.RoutingPolicy.from_json(json.loads(json.dumps(policy.to_json())), "here")
    assert again == policy
    np.testing.assert_allclose(policy.expected_costs([4], max_output_tokens=15), [[(4 + 20) / 1000, (12 + 60) / 1000]])
    with pytest.raises(DataError, match="needs the candidates' prices"):
        routing_policy.RoutingPolicy(["A", "B"], willingness_to_pay=1.0)
    with pytest.raises(DataError, match="not one of"):
        routing_policy.RoutingPolicy(["A", "B"], rule="threshold", strong="C", weak="A", threshold=0.0)
    (tmp_path / routing_policy.POLICY_FILE).write_text(json.dumps(policy.to_json()))
    with pytest.raises(DataError, match="calibrated for candidates"):
        routing_policy.load_policy(tmp_path, ["A", "C"])
    assert routing_policy.load_policy(tmp_path / "elsewhere", ["A", "B"]) is None


def test_score_kind_of_runs(tmp_path):
    (tmp_path / "knn").mkdir()
    (tmp_path / "knn" / "run_args.json").write_text(json.dumps({"router_type": "knn"}))
    assert routing_policy.score_kind_of(tmp_path / "knn") == "identity"
    (tmp_path / "run" / "fold_0").mkdir(parents=True)
    (tmp_path / "run" / "run_args.json").write_text(json.dumps({"loss_type": "BCE"}))
    (tmp_path / "run" / "fold_0" / "config.json").write_text(json.dumps({"stage": "sc"}))
    assert routing_policy.score_kind_of(tmp_path / "run" / "fold_0") == "sigmoid"
    assert routing_policy.score_kind_of(tmp_path / "run") == "sigmoid"
    # a router's own config.json wins over the run's arguments; a config.json without a stage (a backbone's, say)
    # is not a router's and is not read
    (tmp_path / "run" / "fold_0" / "config.json").write_text(json.dumps({"stage": "sc", "loss_type": "CE"}))
    assert routing_policy.score_kind_of(tmp_path / "run" / "fold_0") == "softmax"
    (tmp_path / "run" / "fold_0" / "config.json").write_text(json.dumps({"loss_type": "CE"}))
    assert routing_policy.score_kind_of(tmp_path / "run" / "fold_0") == "sigmoid"
    with pytest.raises(DataError, match="cannot tell how to read its scores"):
        routing_policy.score_kind_of(tmp_path)


def test_config_errors_name_the_file_and_the_field(tmp_path):
    path = tmp_path / "candidates.yaml"
    path.write_text("candidates: [\n")
    with pytest.raises(DataError, match="malformed YAML"):
        candidates.load_config(path)
    path.write_text("candidates:\n  - name: A\n   bad: 1\n")  # the stray key sits on line 3 (1-based)
    with pytest.raises(DataError) as error:
        candidates.load_config(path)
    assert str(error.value) == (f"{path}, line 3: malformed YAML (expected <block end>, but found "
                                f"'<block mapping start>'). Fix the file (see candidates.example.yaml).")
    path.write_text("candidates: \x07\n")  # a reader error: no line mark, no parser problem
    with pytest.raises(DataError) as error:
        candidates.load_config(path)
    assert str(error.value).startswith(f"{path}: malformed YAML (unacceptable character #x0007")
    path.write_text("candidates:\n  - name: A\n    input_price_per_million: 1\n    output_price_per_million: -2\n"
                    "  - name: B\n")
    config = candidates.load_config(path)
    with pytest.raises(DataError, match=r"'A'.*output_price_per_million.*>= 0"):
        candidates.prices_from_config(config, ["A"], path)
    with pytest.raises(DataError, match="'B' needs input_price_per_million"):
        candidates.prices_from_config(config, ["B"], path)
    with pytest.raises(DataError, match="'C' has no entry"):
        candidates.prices_from_config(config, ["C"], path)
    path.write_text("candidates:\n  - name: A\n  - name: A\n")
    with pytest.raises(DataError, match="listed twice"):
        candidates.load_config(path)


def test_calibration_command_saves_a_policy_the_router_loads(tmp_path):
    data_dir = write_synthetic_data(tmp_path / "data")  # recorded output tokens: A 100, B 200
    folder = save_untrained_router(tmp_path / "router", "sc", save_tiny_bert(tmp_path / "bert"), CANDIDATES,
                                   max_length=10)
    config = tmp_path / "candidates.yaml"
    config.write_text("candidates:\n"
                      "  - {name: A, input_price_per_million: 1, output_price_per_million: 1}\n"
                      "  - {name: B, input_price_per_million: 1, output_price_per_million: 10}\n")
    common = ["--router", str(folder), "--config", str(config), "--data_dir", str(data_dir),
              "--validation_sets", "Synth"]
    # A costs about 0.1 and B about 2 per 1,000 queries: a budget of 0.5 over 4 queries leaves no room for B.
    calibrate.main(common + ["--budget", "0.5"])
    router = PretrainedRouter.from_pretrained(folder)
    policy = router.policy
    assert policy.rule == "willingness_to_pay" and policy.typical_output_tokens == [100.0, 200.0]
    assert policy.calibration["validation_queries"] == 4
    assert policy.calibration["route_share"] == {"A": 1.0, "B": 0.0}
    assert policy.calibration["mean_expected_cost"] <= 0.5
    validation = ["read dict 12", "merge tree 13", "read list 14", "file add 15"]  # eval ids q12..q15
    assert router.decide(validation).chosen() == ["A"] * 4

    calibrate.main(common + ["--strong_share", "0.5", "--strong", "B", "--weak", "A"])
    policy = PretrainedRouter.from_pretrained(folder).policy
    assert (policy.rule, policy.strong, policy.weak) == ("threshold", "B", "A")
    assert policy.calibration["route_share"] == {"A": 0.5, "B": 0.5}
    with pytest.raises(DataError, match="below the cheapest routing"):
        calibrate.main(common + ["--budget", "0.001"])


# ------------------------------------------------------------------------------------------------ issue 13

def test_aiq_at_a_single_cost_and_the_range_error():
    points = [(10, 1), (11, 3), (12, 4), (13, 4.5)]  # costs shifted by 10: the hull's geometry is unchanged
    np.testing.assert_allclose(cost_curves.nondecreasing_hull(points + [(11.5, 3.1), (11, 2)]), points)
    assert cost_curves.aiq(points, (11.5, 11.5)) == pytest.approx(3.5)  # a zero-width range: the hull's height there
    assert cost_curves.aiq(points, (10, 14)) == pytest.approx((2 + 3.5 + 4.25 + 4.5) / 4)
    with pytest.raises(ValueError) as error:
        cost_curves.aiq(points, (9.5, 12))
    assert str(error.value) == ("The cost range starts at 9.5, below the cheapest point (10.0): add a point there "
                                "(e.g. the cheapest candidate's) or start the range later.")
    # a point whose quality equals the previous point's cost is not a point of equal cost
    np.testing.assert_allclose(cost_curves.nondecreasing_hull([(2, 0), (3, 2)]), [(2, 0), (3, 2)])


def test_cpt_at_a_target_reached_with_no_strong_queries():
    shares, qualities = [0, 0.5, 1], [60, 70, 80]
    assert cost_curves.cpt(shares, qualities, 50, 80, 0.25) == 0.0  # PGR(0) = 1/3 already reaches 0.25
    assert cost_curves.cpt(shares, qualities, 50, 80, 0.5) == pytest.approx(0.5 * (0.5 - 1 / 3) / (2 / 3 - 1 / 3))
    assert cost_curves.apgr(shares, qualities, 50, 80) == pytest.approx(
        0.5 * (1 / 3 + 2 / 3) / 2 + 0.5 * (2 / 3 + 1) / 2)


def test_curve_skips_repeated_routings_and_keeps_the_requested_number_of_points():
    """One query, three candidates (quality 0.9 / 0.5 / 0.1, cost 2 / 1 / 0.5). Crossings at lambda 0.4 (0 vs 1),
    0.533 (0 vs 2) and 0.8 (1 vs 2); the grid 0, 0.467, 0.667, 1.6 routes to 0, 1, 1, 2: three routings."""
    quality, costs = np.array([[0.9, 0.5, 0.1]]), np.array([[2.0, 1.0, 0.5]])
    curve = cost_curves.quality_cost_curve(lambda choices: float(choices[0]), quality, costs, costs)
    assert [(p.willingness_to_pay, p.cost, p.route_share) for p in curve] == [
        (pytest.approx(1.6), 0.5, [0.0, 0.0, 1.0]), (pytest.approx((0.4 + 0.8 / 1.5) / 2), 1.0, [0.0, 1.0, 0.0]),
        (0.0, 2.0, [1.0, 0.0, 0.0])]
    two = cost_curves.quality_cost_curve(accuracy, QUALITY, COSTS, COSTS, max_points=2)  # lambdas 0 and 0.8 only
    assert [p.willingness_to_pay for p in two] == [pytest.approx(0.8), 0.0]


def test_strong_share_curve_sends_tied_queries_lowest_index_first():
    """60 queries; strong - weak = 0.5 on queries 0-19 and 40-59, 0.2 on 20-39. At a share of 0.5 the 30 sent are
    0-19 and, of the tied 40-59, the lowest ten: 40-49. Only 40-49 are right with the strong candidate."""
    quality = np.zeros((60, 2))
    quality[:, 0] = [0.5] * 20 + [0.2] * 20 + [0.5] * 20
    right = np.zeros((60, 2))
    right[40:50, 0] = 1

    def headline(choices):
        return float(right[np.arange(60), choices].mean() * 100)

    shares, qualities = cost_curves.strong_share_curve(headline, quality, strong=0, weak=1, steps=2)
    assert qualities.tolist() == pytest.approx([0.0, 100 * 10 / 60, 100 * 10 / 60])


def test_attach_recorded_output_tokens_reads_either_spelling(tmp_path):
    (tmp_path / "responses").mkdir()
    (tmp_path / "responses" / "A.jsonl").write_text(
        '{"prompt_id": 1, "response_toknes": 40}\n{"prompt_id": "2", "response_toknes": 7}\n')
    (tmp_path / "responses" / "B.jsonl").write_text('{"prompt_id": "1", "response_tokens": 12}\n')
    records = [{"prompt_id": "1"}, {"prompt_id": 2}, {"prompt_id": "3"}]
    assert calibrate.attach_recorded_output_tokens(records, tmp_path, ["A", "B", "C"]) is records  # C: no file
    assert [r["output_tokens"] for r in records] == [[40, 12, None], [7, None, None], [None, None, None]]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "A.jsonl").write_text('{"prompt_id": "1", "response_tokens": 5}\n')
    assert calibrate.attach_recorded_output_tokens([{"prompt_id": "1"}], tmp_path, ["A"], score_dir="other")[0][
        "output_tokens"] == [5]


class FixedRouter:
    """A stand-in router: fixed quality estimates, records what it is asked to route."""
    candidates = ["weak", "strong"]
    score_kind = "identity"

    def __init__(self, quality):
        self.quality, self.calls = np.asarray(quality, dtype=float), []

    def route(self, prompts, responses=None):
        self.calls.append((list(prompts), responses))
        return self.quality


def test_calibrate_records_its_validation_figures():
    """Two queries of 8 characters (2 input tokens). Prices: weak 0 in / 1000 out, strong 1000 in / 3000 out
    (USD per million), answers of 4 and 8 characters (1 and 2 tokens): typical outputs 1.5 and 1.5 tokens."""
    records = [{"prompt": "abcdefgh", "responses": ["wwww", "ssssssss"], "source": "S", "scores": [0.0, 1.0]},
               {"prompt": "hgfedcba", "responses": ["wwwwwwww", "ssss"], "source": "S", "scores": [1.0, 0.5]}]
    prices = [candidates.Price(0.0, 1000.0), candidates.Price(1000.0, 3000.0)]
    router = FixedRouter([[0.2, 0.9], [0.6, 0.7]])
    policy = routing_policy.calibrate(router, records, prices, strong_share=0.5, strong="strong", weak="weak")
    assert router.calls == [(["abcdefgh", "hgfedcba"], [["wwww", "ssssssss"], ["wwwwwwww", "ssss"]])]
    # strong - weak: 0.7 and 0.1; half the queries (1) go strong: the threshold is the midpoint 0.4
    assert policy.rule == "threshold" and policy.threshold == pytest.approx(0.4)
    expected_costs = [1.5 * 1000 / 1000, (2 * 1000 + 1.5 * 3000) / 1000]  # per 1,000 queries: weak 1.5, strong 6.5
    realised = [[1.0, (2 * 1000 + 2 * 3000) / 1000], [2.0, (2 * 1000 + 1 * 3000) / 1000]]
    assert policy.calibration == {
        "target": {"strong_share": 0.5, "strong": "strong", "weak": "weak"}, "validation_queries": 2,
        "mean_expected_cost": pytest.approx((expected_costs[1] + expected_costs[0]) / 2),
        "mean_realised_cost": pytest.approx((realised[0][1] + realised[1][0]) / 2),
        "route_share": {"weak": 0.5, "strong": 0.5},
        "mean_normalised_score": pytest.approx((1.0 + 1.0) / 2)}  # min-max per source: query 0 strong 1, 1 weak 1
    assert policy.prices == prices and policy.typical_output_tokens == [1.5, 1.5]
    budget = routing_policy.calibrate(FixedRouter([[0.2, 0.9], [0.6, 0.7]]), records, prices, budget=4.0)
    assert budget.rule == "willingness_to_pay" and budget.calibration["mean_expected_cost"] <= 4.0
    assert budget.typical_output_tokens == [1.5, 1.5] and budget.prices == prices
    assert budget.calibration["target"] == {"budget": 4.0}
    for targets in ({}, {"budget": 1.0, "strong_share": 0.5}):
        with pytest.raises(DataError) as error:
            routing_policy.calibrate(router, records, prices, **targets)
        assert str(error.value) == "Give exactly one target: --budget or --strong_share."


def test_cost_analysis_picks_the_cheapest_other_candidate_as_weak():
    """Three candidates: 0 is the best (and dearest), 2 the cheapest, 1 between: the pair is strong 0, weak 2 (not
    the lower index 1). The router's estimates favour candidate 1, so its own curve never reaches candidate 0's
    point; AIQ adds the cheapest candidate's point (2), not another."""
    true = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1]])

    def headline(choices):
        return float(true[np.arange(3), choices].mean() * 100)

    records = [{"prompt": "abcd" * 2, "responses": ["x" * 12, "y" * 8, "z" * 4]} for _ in range(3)]
    prices = [candidates.Price(1000.0, 1000.0)] * 3  # 2 input tokens + 3 / 2 / 1 output tokens: costs 5, 4, 3
    quality = np.array([[0.1, 0.9, 0.2], [0.1, 0.9, 0.2], [0.1, 0.9, 0.2]])
    analysis = cost_curves.benchmark_cost_analysis(headline, records, quality, "identity", prices)
    assert analysis["fixed"] == [{"cost": 5.0, "quality": 100.0}, {"cost": 4.0, "quality": pytest.approx(100 / 3)},
                                 {"cost": 3.0, "quality": pytest.approx(100 / 3)}]
    assert analysis["pair"] == {"strong": 0, "weak": 2} and analysis["cost_range"] == [3.0, 5.0]
    # the router routes everything to 1 (lambda 0) or to 2: its points (4, 33.3) and (3, 33.3)
    assert sorted((p["cost"], p["quality"]) for p in analysis["curve"]) == [(3.0, pytest.approx(100 / 3)),
                                                                           (4.0, pytest.approx(100 / 3))]
    assert analysis["aiq"] == pytest.approx(100 / 3)
    # the candidates' hull rises linearly from (3, 33.3) to (5, 100): its mean over [3, 5] is the midpoint's height
    assert analysis["aiq_zero_router"] == pytest.approx((100 / 3 + 100) / 2)


def test_expected_input_costs_steer_the_choice():
    """One 400-character prompt (100 input tokens); B answers better (0.6 vs 0.5) but pays 1000 USD per million input
    tokens: 100 USD per 1,000 queries against A's 0, so the choice turns at lambda 0.1 / 100: the curve has both
    routings (lambda 0 and twice the crossing)."""
    records = [{"prompt": "p" * 400, "responses": ["a", "b"]}]
    prices = [candidates.Price(0.0, 0.0), candidates.Price(1000.0, 0.0)]
    analysis = cost_curves.benchmark_cost_analysis(lambda choices: float(choices[0]), records, [[0.5, 0.6]],
                                                   "identity", prices, pair=(1, 0))
    assert [(p["willingness_to_pay"], p["cost"]) for p in analysis["curve"]] == [
        (pytest.approx(2 * 0.1 / 100), 0.0), (0.0, 100.0)]


def test_benchmark_headline_is_the_benchmarks_own():
    records = [{"prompt_id": str(i), "prompt": f"q{i}", "scores": s, "best_model_idx": 0}
               for i, s in enumerate([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])]
    assert cost_curves.benchmark_headline("MATH", records)(np.array([0, 0, 0])) == pytest.approx(200 / 3)
    # preferences and lengths that vary by query, so the difficulty passed in (not one fitted on these records)
    # changes the length-controlled win rate
    alpaca = [dict(r, preferences=p, output_lengths=n, reference_length=7)
              for r, p, n in zip(records, [[1.2, 1.8], [1.9, 1.1], [1.4, 1.6]], [[5, 9], [12, 3], [7, 8]])]
    from utils import alpaca_lc

    difficulty = alpaca_lc.InstructionDifficulty(("q0", "q1", "q2"), np.array([2.0, 0.0, -2.0]), 1.0, ("m",), "t")
    headline = cost_curves.benchmark_headline("AlpacaEval", alpaca, difficulty)
    import metrics

    given = metrics.benchmark_metric("AlpacaEval", alpaca, difficulty).metrics([1, 0, 1])["length_controlled_winrate"]
    fitted = metrics.benchmark_metric("AlpacaEval", alpaca).metrics([1, 0, 1])["length_controlled_winrate"]
    assert headline(np.array([1, 0, 1])) == pytest.approx(given)
    if not alpaca_lc.official_lc_available():  # the official LC ignores any difficulty
        assert abs(given - fitted) > 0.1


def test_calibrated_willingness_is_the_smallest_grid_lambda_within_the_budget():
    """Against a search of the whole grid: for random problems with more distinct routings than the default 64 grid
    points (100 queries x 3 candidates, 10 queries x 12), and budgets equal to reachable mean costs."""
    for n, k, seed in ((100, 3, 0), (10, 12, 1)):
        rng = np.random.default_rng(seed)
        quality, costs = rng.random((n, k)), rng.random((n, k))
        crossings = routing_policy.crossing_points(quality, costs)
        assert len(crossings) > 64
        grid = np.concatenate([[0.0], (crossings[:-1] + crossings[1:]) / 2, [2 * crossings[-1]]])
        means = [float(costs[np.arange(n), routing_policy.cost_aware_choice(quality, costs, lam)].mean())
                 for lam in grid]
        for budget in (means[5], means[len(means) // 3], (means[40] + means[41]) / 2, means[0] + 1):
            expected = next(lam for lam, mean in zip(grid, means) if mean <= budget)
            assert routing_policy.calibrate_willingness_to_pay(quality, costs, budget) == pytest.approx(expected)


def test_threshold_rule_edges_and_share_bounds():
    quality = np.array([[0.75, 0.5], [0.5, 0.5]])  # strong - weak: exactly 0.25, and 0
    assert routing_policy.threshold_choice(quality, strong=0, weak=1, threshold=0.25).tolist() == [0, 1]  # >= threshold
    for share in (1.5, -0.1):
        with pytest.raises(DataError) as error:
            routing_policy.calibrate_threshold(quality, 0, 1, share)
        assert str(error.value) == f"The strong share must lie in [0, 1], got {share}."


def test_crossings_and_grid_by_hand():
    # equal quality (dq = 0) or equal cost (dc = 0): no lambda > 0 where the choice turns
    assert routing_policy.crossing_points([[0.5, 0.5]], [[2.0, 1.0]]).tolist() == []
    assert routing_policy.crossing_points([[0.9, 0.5]], [[1.0, 1.0]]).tolist() == []
    assert routing_policy.willingness_grid(np.array([[0.9, 0.5]]), np.array([[1.0, 1.0]])).tolist() == [0.0]
    quality, costs = np.array([[0.9, 0.5, 0.1]]), np.array([[2.0, 1.0, 0.5]])  # crossings 0.4, 0.8 / 1.5, 0.8
    assert routing_policy.willingness_grid(quality, costs).tolist() == pytest.approx(
        [0.0, (0.4 + 0.8 / 1.5) / 2, (0.8 / 1.5 + 0.8) / 2, 1.6])


def test_softmax_scores_of_large_and_unequal_logits():
    scores = routing_policy.quality_estimates([[0.0, np.log(3.0)], [1000.0, 1000.0 + np.log(3.0)]], "softmax")
    np.testing.assert_allclose(scores, [[0.25, 0.75], [0.25, 0.75]])


def test_policy_errors_and_costs_without_prices():
    with pytest.raises(DataError) as error:
        routing_policy.RoutingPolicy(["A", "B"], rule="cheapest")
    assert str(error.value) == "routing policy: rule 'cheapest' must be 'willingness_to_pay' or 'threshold'."
    with pytest.raises(DataError) as error:
        routing_policy.RoutingPolicy(["A", "B"], rule="threshold", strong="A", weak="B")
    assert str(error.value) == "routing policy: the threshold rule needs a threshold."
    with pytest.raises(DataError) as error:
        routing_policy.RoutingPolicy(["A", "B"], willingness_to_pay=-1.0)
    assert str(error.value) == "routing policy: willingness_to_pay must be >= 0, got -1.0."
    with pytest.raises(DataError) as error:
        routing_policy.RoutingPolicy(["A", "B"], willingness_to_pay=1.0)
    assert str(error.value) == "routing policy: willingness_to_pay > 0 needs the candidates' prices."
    with pytest.raises(DataError) as error:
        routing_policy.RoutingPolicy(["A", "B"], rule="threshold", strong="A", weak="C", threshold=0.1)
    assert str(error.value) == "routing policy: threshold candidate 'C' is not one of ['A', 'B']."
    plain = routing_policy.RoutingPolicy(["A", "B"])
    assert plain.expected_costs([10, 20, 30]).tolist() == [[0.0, 0.0]] * 3
    assert plain.to_json()["prices"] is None and routing_policy.RoutingPolicy.from_json(plain.to_json(), "x") == plain
    priced = routing_policy.RoutingPolicy(["A", "B"], prices=[candidates.Price(1000, 2000), candidates.Price(0, 1000)])
    # no typical output recorded: 500 tokens each (DEFAULT_TYPICAL_OUTPUT_TOKENS)
    assert priced.expected_costs([100]).tolist() == [[(100 * 1000 + 500 * 2000) / 1000, 500 * 1000 / 1000]]
    with pytest.raises(DataError) as error:
        routing_policy.RoutingPolicy.from_json({"candidates": ["A"], "colour": "red"}, "policy.json")
    assert str(error.value).startswith("policy.json: not a routing policy (") and str(error.value).endswith(
        "Recalibrate with `python src/calibrate.py`.")


def test_config_and_policy_errors_name_their_file(tmp_path):
    path = tmp_path / "c.yaml"
    for text, message in (("- a\n", "expected a mapping with a non-empty `candidates:` list"),
                          ("candidates: []\n", "expected a mapping with a non-empty `candidates:` list"),
                          ("candidates: 3\n", "expected a mapping with a non-empty `candidates:` list"),
                          ("candidates:\n  - x\n", "candidates[0] must be a mapping with a non-empty string `name`"),
                          ("candidates:\n  - name: ''\n", "candidates[0] must be a mapping with a non-empty string"),
                          ("candidates:\n  - price: 1\n", "candidates[0] must be a mapping with a non-empty string")):
        path.write_text(text)
        with pytest.raises(DataError) as error:
            candidates.load_config(path)
        assert str(error.value).startswith(f"{path}: {message}")
    with pytest.raises(DataError) as error:
        candidates.load_config(tmp_path / "none.yaml")
    assert str(error.value) == (f"{tmp_path / 'none.yaml'}: candidates config not found. Copy candidates.example.yaml "
                                f"and edit it.")
    config = {"candidates": [{"name": "A", "input_price_per_million": 0, "output_price_per_million": 0.5}],
              "budget": True}
    # 0 and fractions are prices
    assert candidates.prices_from_config(config, ["A"], path) == [candidates.Price(0.0, 0.5)]
    with pytest.raises(DataError) as error:
        candidates.prices_from_config(config, ["B"], path)
    assert str(error.value).startswith(f"{path}: candidate 'B' has no entry")
    for bad in (True, "1", float("inf"), -0.5):
        config["candidates"][0]["output_price_per_million"] = bad
        with pytest.raises(DataError) as error:
            candidates.prices_from_config(config, ["A"], path)
        assert str(error.value) == (f"{path}: candidate 'A': field 'output_price_per_million' must be a number >= 0, "
                                    f"got {bad!r}. Write a number >= 0.")
    with pytest.raises(DataError) as error:  # a field of the whole config: no candidate named
        candidates.nonnegative_number(config, "budget", path)
    assert str(error.value) == f"{path}: field 'budget' must be a number >= 0, got True. Write a number >= 0."
    assert candidates.nonnegative_number({}, "budget", path, default=2) == 2.0
    assert candidates.nonnegative_number({}, "budget", path) is None
    (tmp_path / routing_policy.POLICY_FILE).write_text(json.dumps({"candidates": ["A"], "colour": "red"}))
    with pytest.raises(DataError, match=f"^{tmp_path / routing_policy.POLICY_FILE}: not a routing policy"):
        routing_policy.load_policy(tmp_path, ["A"])


def test_score_kind_of_defaults_and_errors(tmp_path, caplog):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps({"stage": "sc"}))
    with caplog.at_level("WARNING", logger="cost"):
        assert routing_policy.score_kind_of(tmp_path / "old") == "softmax"
    assert caplog.messages == [f"{tmp_path / 'old'}: no loss_type recorded (config.json or run_args.json); "
                               f"assuming CE (softmax)"]
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "config.json").write_text(json.dumps({"stage": "sc", "loss_type": "MSE"}))
    (tmp_path / "own" / "run_args.json").write_text(json.dumps({"loss_type": "CE"}))
    assert routing_policy.score_kind_of(tmp_path / "own") == "sigmoid"  # the router's own config comes first
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run_args.json").write_text(json.dumps({"loss_type": "Hinge"}))
    with pytest.raises(DataError) as error:
        routing_policy.score_kind_of(tmp_path / "bad")
    assert str(error.value) == (f"{tmp_path / 'bad' / 'run_args.json'}: field 'loss_type' is 'Hinge', not one of "
                                f"['BCE', 'CE', 'ForwardKL', 'KL', 'MSE', 'ReverseKL'].")
    with pytest.raises(DataError) as error:
        routing_policy.score_kind_of(tmp_path / "nothing")
    assert str(error.value) == (f"{tmp_path / 'nothing'}: neither a trained router (config.json with a "
                                f"stage, run_args.json) nor a baseline run (run_args.json with router_type); cannot tell how "
                                f"to read its scores.")


def test_decide_reads_the_scores_costs_each_candidate_and_caps_the_output():
    # A: $1 / $2 per million input / output tokens, typical output 10; B: $3 / $4, typical output 20.
    policy = routing_policy.RoutingPolicy(["A", "B"], willingness_to_pay=2.0,
                                          prices=[candidates.Price(1, 2), candidates.Price(3, 4)],
                                          typical_output_tokens=[10.0, 20.0])
    scores = [[0.0, 0.5], [2.0, 0.0]]
    capped = policy.decide(scores, "sigmoid", input_tokens=[4, 8], max_output_tokens=15)
    sigmoid = [[0.5, 1 / (1 + math.exp(-0.5))], [1 / (1 + math.exp(-2.0)), 0.5]]
    np.testing.assert_allclose(capped.scores, scores)
    np.testing.assert_allclose(capped.quality, sigmoid)
    # USD per 1,000 queries = (input tokens x input price + output tokens x output price) / 1,000; B's output capped at 15
    np.testing.assert_allclose(capped.costs, [[(4 + 20) / 1000, (12 + 60) / 1000], [(8 + 20) / 1000, (24 + 60) / 1000]])
    # query 0: B is better by 0.1225 and dearer by 0.048 (x lambda 2 = 0.096): B; query 1: A is better and cheaper
    assert capped.choices.tolist() == [1, 0] and capped.chosen() == ["B", "A"]
    uncapped = policy.decide(scores, "sigmoid", input_tokens=[4, 8])
    np.testing.assert_allclose(uncapped.costs[0], [(4 + 20) / 1000, (12 + 80) / 1000])
    assert uncapped.chosen() == ["A", "A"]  # B now dearer by 0.068 (x 2 = 0.136 > 0.1225)


def test_calibration_targets_are_checked_at_their_bounds():
    check = routing_policy.check_target
    check(None, 0.0, None, None, None)  # a zero budget and the shares 0 and 1 are allowed
    for share in (0.0, 1.0):
        check(["A", "B"], None, share, "A", "B")
    check(None, None, 0.5, "X", "X")  # without candidates the names are not checked
    budget_error = "--budget must be a finite number >= 0 (USD per 1,000 queries), got {}. Pass a budget >= 0."
    for budget in (-0.001, math.inf, math.nan):
        with pytest.raises(DataError) as error:
            check(None, budget, None, None, None)
        assert str(error.value) == budget_error.format(budget)
    for share in (-0.001, 1.001, math.nan):
        with pytest.raises(DataError) as error:
            check(None, None, share, "A", "B")
        assert str(error.value) == f"--strong_share must lie in [0, 1], got {share}. Pass a share between 0 and 1."
    for strong, weak in (("Z", "B"), ("A", "Z"), ("A", "A")):
        with pytest.raises(DataError) as error:
            check(["A", "B"], None, 0.5, strong, weak)
        assert str(error.value) == (f"--strong and --weak must name two different candidates of the router "
                                    f"['A', 'B'], got {strong!r} and {weak!r}. Pass two of those.")


def test_calibrate_checks_the_target_against_the_routers_candidates():
    class Router:  # calibrate reads the candidates before anything else
        candidates = ["A", "B"]

    with pytest.raises(DataError, match=r"router \['A', 'B'\], got 'Z' and 'A'"):
        routing_policy.calibrate(Router(), [], [], strong_share=0.5, strong="Z", weak="A")
