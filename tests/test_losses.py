"""Routing losses and per-query score normalisation against hand computation."""
import math

import pytest
import torch

from model.losses import ROUTING_LOSSES, normalize_per_query, routing_loss


def close(tensor, value):
    assert tensor.item() == pytest.approx(value, abs=1e-6)


def log_softmax(row):
    top = math.log(sum(math.exp(x) for x in row))
    return [x - top for x in row]


def softmax(row):
    return [math.exp(x) for x in log_softmax(row)]


def test_normalize_per_query_each_method():
    scores = torch.tensor([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])
    assert normalize_per_query(scores, "none") is scores
    assert normalize_per_query(scores, "min-max").tolist() == [[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]
    expected = softmax([1.0, 3.0, 2.0])
    assert normalize_per_query(scores, "softmax")[0].tolist() == pytest.approx(expected, abs=1e-6)
    std = math.sqrt(2 / 3)  # population std of (1, 3, 2)
    assert normalize_per_query(scores, "standardization").flatten().tolist() == pytest.approx(
        [-1 / std, 1 / std, 0.0, 0.0, 0.0, 0.0], abs=1e-6)
    with pytest.raises(ValueError, match="normalisation"):
        normalize_per_query(scores, "zscore")


def test_ce_targets_the_best_candidate_and_splits_ties():
    logits = torch.tensor([[1.0, 0.0, 0.0]])
    close(routing_loss("CE", logits, torch.tensor([[0.2, 0.9, 0.5]])), math.log(math.e + 2))
    lp = log_softmax([1.0, 0.0, 0.0])
    close(routing_loss("CE", logits, torch.tensor([[1.0, 1.0, 0.0]])), -(0.5 * lp[0] + 0.5 * lp[1]))


def test_ce_averages_over_the_batch():
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    scores = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    close(routing_loss("CE", logits, scores), (math.log(2) + math.log(1 + math.e ** 2)) / 2)


def test_bce_labels_candidates_near_the_best():
    logits = torch.tensor([[0.0, 1.0, -1.0]])
    scores = torch.tensor([[1.0, 0.85, 0.5]])  # threshold 0.8 x best 1.0 -> labels 1, 1, 0
    expected = (math.log(2) + math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-1))) / 3
    close(routing_loss("BCE", logits, scores, bce_threshold=0.8), expected)
    only_best = (math.log(2) + math.log(1 + math.exp(1)) + math.log(1 + math.exp(-1))) / 3
    close(routing_loss("BCE", logits, scores, bce_threshold=1.0), only_best)


def test_mse_compares_sigmoid_of_logits_with_scores():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # sigmoid -> 0.5, 0.75
    close(routing_loss("MSE", logits, torch.tensor([[1.0, 0.25]])), (0.25 + 0.25) / 2)


def test_kl_losses_in_both_directions():
    logits, scores, temperature = [0.5, -0.5, 0.0], [1.0, 0.0, 0.5], 0.5
    log_p = log_softmax(logits)
    log_t = log_softmax([s / temperature for s in scores])
    forward = sum(math.exp(t) * (t - p) for t, p in zip(log_t, log_p))
    reverse = sum(math.exp(p) * (p - t) for t, p in zip(log_t, log_p))
    args = torch.tensor([logits]), torch.tensor([scores])
    close(routing_loss("ForwardKL", *args, kl_temperature=temperature), forward)
    close(routing_loss("KL", *args, kl_temperature=temperature), forward)  # the paper's name for ForwardKL
    close(routing_loss("ReverseKL", *args, kl_temperature=temperature), reverse)
    assert forward != pytest.approx(reverse)
    # at T = 1 the target of logits equal to the scores is the model's own distribution: KL 0
    close(routing_loss("ForwardKL", torch.tensor([[2.0, 0.0, 1.0]]), torch.tensor([[2.0, 0.0, 1.0]]),
                       kl_temperature=1.0), 0.0)


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="Unknown loss_type") as error:
        routing_loss("Hinge", torch.zeros(1, 2), torch.zeros(1, 2))
    assert str(error.value).endswith("choose one of CE, BCE, MSE, KL, ForwardKL, ReverseKL.")


# Per-row reference definitions in plain Python (the module docstring's formulas), for batches of several rows.
def bce_row(logits, scores, threshold):
    best = max(scores)
    labels = [1.0 if s >= threshold * best else 0.0 for s in scores]
    # binary cross-entropy with logits: -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]
    return sum(math.log(1 + math.exp(-x)) if y else math.log(1 + math.exp(x)) for x, y in zip(logits, labels)) / len(
        logits)


def ce_row(logits, scores):
    best = [i for i, s in enumerate(scores) if s == max(scores)]
    lp = log_softmax(logits)
    return -sum(lp[i] for i in best) / len(best)


def mse_row(logits, scores):
    return sum((1 / (1 + math.exp(-x)) - s) ** 2 for x, s in zip(logits, scores)) / len(logits)


def forward_kl_row(logits, scores, temperature):
    lp, lt = log_softmax(logits), log_softmax([s / temperature for s in scores])
    return sum(math.exp(t) * (t - p) for t, p in zip(lt, lp))


def reverse_kl_row(logits, scores, temperature):
    lp, lt = log_softmax(logits), log_softmax([s / temperature for s in scores])
    return sum(math.exp(p) * (p - t) for t, p in zip(lt, lp))


# Three rows that differ in every respect (so a sum, a single row, or a per-column mean all give other values); the
# last row's best score is 0.6 (not 1, so threshold x best differs from threshold / best) and is shared by two
# candidates (a tie for CE); no logit is 0 (where a BCE term is log 2 whatever the label).
BATCH_LOGITS = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-2.0, 0.5, 1.0]]
BATCH_SCORES = [[0.9, 0.2, 1.0], [1.0, 0.85, 0.1], [0.6, 0.6, 0.0]]


@pytest.mark.parametrize("name, row, options", [
    ("CE", ce_row, {}),
    ("BCE", lambda x, s: bce_row(x, s, 0.8), {"bce_threshold": 0.8}),
    ("MSE", mse_row, {}),
    ("KL", lambda x, s: forward_kl_row(x, s, 0.5), {"kl_temperature": 0.5}),
    ("ForwardKL", lambda x, s: forward_kl_row(x, s, 0.5), {"kl_temperature": 0.5}),
    ("ReverseKL", lambda x, s: reverse_kl_row(x, s, 0.5), {"kl_temperature": 0.5}),
])
def test_every_loss_is_the_mean_of_its_rows_over_a_batch_of_three(name, row, options):
    per_row = [row(x, s) for x, s in zip(BATCH_LOGITS, BATCH_SCORES)]
    assert len({round(v, 6) for v in per_row}) == 3  # the rows' losses differ, so mean != any row, sum != mean
    loss = routing_loss(name, torch.tensor(BATCH_LOGITS), torch.tensor(BATCH_SCORES), **options)
    assert loss.shape == ()
    close(loss, sum(per_row) / 3)


def test_bce_threshold_one_labels_the_best_candidate_one():
    """At threshold 1.0 the best candidate (score == best) is labelled 1, the others 0: its logit 2.0 costs
    log(1 + e^-2), not the log(1 + e^2) of a label 0."""
    logits, scores = [[2.0, 1.0, -1.0]], [[1.0, 0.85, 0.5]]
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(1)) + math.log(1 + math.exp(-1))) / 3
    close(routing_loss("BCE", torch.tensor(logits), torch.tensor(scores), bce_threshold=1.0), expected)
    # A score exactly at threshold x best counts as near the best (>=): 0.5 = 0.5 x 1.0.
    at_threshold = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1))) / 3
    close(routing_loss("BCE", torch.tensor(logits), torch.tensor(scores), bce_threshold=0.5), at_threshold)


def test_routing_loss_defaults_are_the_papers_recipe():
    """Without options, BCE labels at 0.8 x best and the KLs use temperature 0.1 (README: the paper's recipe)."""
    x, s = torch.tensor(BATCH_LOGITS), torch.tensor(BATCH_SCORES)
    close(routing_loss("BCE", x, s), sum(bce_row(a, b, 0.8) for a, b in zip(BATCH_LOGITS, BATCH_SCORES)) / 3)
    close(routing_loss("KL", x, s), sum(forward_kl_row(a, b, 0.1) for a, b in zip(BATCH_LOGITS, BATCH_SCORES)) / 3)
    close(routing_loss("ReverseKL", x, s),
          sum(reverse_kl_row(a, b, 0.1) for a, b in zip(BATCH_LOGITS, BATCH_SCORES)) / 3)


@pytest.mark.parametrize("name", ["CE", "BCE", "MSE", "KL", "ReverseKL"])
def test_losses_are_computed_in_float32_from_half_precision_inputs(name):
    """bfloat16 logits (as under --bf16) give a float32 loss equal to the float32 loss of the same values."""
    x, s = torch.tensor(BATCH_LOGITS).to(torch.bfloat16), torch.tensor(BATCH_SCORES).to(torch.bfloat16)
    loss = routing_loss(name, x, s)
    assert loss.dtype == torch.float32
    assert loss.item() == routing_loss(name, x.float(), s.float()).item()


def test_normalize_scores_several_rows_and_ties():
    scores = torch.tensor([[2.0, 4.0, 3.0], [-1.0, 1.0, 1.0], [7.0, 7.0, 7.0]])
    assert normalize_per_query(scores, "min-max").tolist() == [[0.0, 1.0, 0.5], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    std2 = math.sqrt(((-1 - 1 / 3) ** 2 + 2 * (1 - 1 / 3) ** 2) / 3)
    assert normalize_per_query(scores, "standardization").flatten().tolist() == pytest.approx(
        [-1 / math.sqrt(2 / 3), 1 / math.sqrt(2 / 3), 0.0,
         (-1 - 1 / 3) / std2, (1 - 1 / 3) / std2, (1 - 1 / 3) / std2, 0.0, 0.0, 0.0], abs=1e-6)
    assert normalize_per_query(scores, "softmax").flatten().tolist() == pytest.approx(
        softmax([2.0, 4.0, 3.0]) + softmax([-1.0, 1.0, 1.0]) + [1 / 3] * 3, abs=1e-6)
    # a tiny spread is still a spread: min-max maps it onto [0, 1]
    assert normalize_per_query(torch.tensor([[0.0, 1e-9]], dtype=torch.float64), "min-max").tolist() == [[0.0, 1.0]]


def test_adding_a_routing_loss_is_one_registry_entry(monkeypatch, tmp_path):
    """Walk-through: a toy loss (mean absolute error between sigmoid(logits) and the scores) becomes usable by
    training, by ``--loss_type`` and by serving through one ``ROUTING_LOSSES`` entry, and by nothing else."""
    import json

    import numpy as np

    from model.losses import ROUTING_LOSSES, RoutingLoss
    from routers import policy
    from trainers import SCConfig
    from utils.io import DataError

    logits, scores = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([[1.0, 0.25]])  # sigmoid: 0.5, 0.75
    (tmp_path / "config.json").write_text(json.dumps({"stage": "sc", "loss_type": "MAE"}))
    with pytest.raises(ValueError, match="Unknown loss_type 'MAE'"):
        routing_loss("MAE", logits, scores)
    with pytest.raises(ValueError, match="--loss_type: 'MAE' is not one of"):
        SCConfig(output_dir=str(tmp_path / "run"), loss_type="MAE", report_to="none")
    with pytest.raises(DataError, match="field 'loss_type' is 'MAE'"):
        policy.score_kind_of(tmp_path)

    monkeypatch.setitem(ROUTING_LOSSES, "MAE", RoutingLoss(
        lambda logits, scores, threshold, temperature: (logits.sigmoid() - scores).abs().mean(), "sigmoid"))
    close(routing_loss("MAE", logits, scores), (0.5 + 0.5) / 2)  # |0.5 - 1| and |0.75 - 0.25|
    assert SCConfig(output_dir=str(tmp_path / "run"), loss_type="MAE", report_to="none").loss_type == "MAE"
    assert policy.score_kind_of(tmp_path) == "sigmoid"
    np.testing.assert_allclose(policy.quality_estimates([[0.0, math.log(3.0)]], policy.score_kind_of(tmp_path)),
                               [[0.5, 0.75]])


@pytest.mark.parametrize("name", list(ROUTING_LOSSES))
def test_leading_dimensions_are_rows(name):
    # [2, 3, k]: the six (query, candidate-score) rows flattened to [6, k] give the same loss; the last
    # dimension, not dimension 1, holds the candidates
    generator = torch.Generator().manual_seed(0)
    logits, scores = torch.randn(2, 3, 4, generator=generator), torch.rand(2, 3, 4, generator=generator)
    scores[0, 1] = torch.tensor([0.5, 0.5, 0.2, 0.5])  # a tie for the best (CE splits the target)
    flat = routing_loss(name, logits.reshape(6, 4), scores.reshape(6, 4), kl_temperature=0.5)
    torch.testing.assert_close(routing_loss(name, logits, scores, kl_temperature=0.5), flat)


@pytest.mark.parametrize("method", ["none", "min-max", "softmax", "standardization"])
def test_normalisation_of_leading_dimensions_is_row_by_row(method):
    scores = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(1))
    scores[1, 2] = 0.7  # a row of equal scores (zero spread)
    expected = normalize_per_query(scores.reshape(6, 4), method).reshape(2, 3, 4)
    torch.testing.assert_close(normalize_per_query(scores, method), expected)
