"""Routing losses and per-query score normalisation against hand computation."""
import math

import pytest
import torch

from trainers.losses import normalize_scores, routing_loss


def close(tensor, value):
    assert tensor.item() == pytest.approx(value, abs=1e-6)


def log_softmax(row):
    top = math.log(sum(math.exp(x) for x in row))
    return [x - top for x in row]


def softmax(row):
    return [math.exp(x) for x in log_softmax(row)]


def test_normalize_scores_each_method():
    scores = torch.tensor([[1.0, 3.0, 2.0], [5.0, 5.0, 5.0]])
    assert normalize_scores(scores, "none") is scores
    assert normalize_scores(scores, "min-max").tolist() == [[0.0, 1.0, 0.5], [0.0, 0.0, 0.0]]
    expected = softmax([1.0, 3.0, 2.0])
    assert normalize_scores(scores, "softmax")[0].tolist() == pytest.approx(expected, abs=1e-6)
    std = math.sqrt(2 / 3)  # population std of (1, 3, 2)
    assert normalize_scores(scores, "standardization").flatten().tolist() == pytest.approx(
        [-1 / std, 1 / std, 0.0, 0.0, 0.0, 0.0], abs=1e-6)
    with pytest.raises(ValueError, match="normalisation"):
        normalize_scores(scores, "zscore")


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
    with pytest.raises(ValueError, match="Unknown loss_type"):
        routing_loss("Hinge", torch.zeros(1, 2), torch.zeros(1, 2))
