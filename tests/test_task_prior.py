"""The task prior (routers.task_prior): its pieces by hand, its weight choice, saving with a router, and
src/train.py --task_prior_blend end to end on the synthetic data."""
import json

import numpy as np
import pytest

from routers.task_prior import BLEND_WEIGHTS, TASK_PRIOR_FILE, TaskPrior, bce_targets, blend, macro_reward
from utils.io import DataError

# min-max per query, then 1 where >= 0.8 x the best: [0, 1, .75] -> [0, 1, 0]; [0, 1, .9] -> [0, 1, 1]; all tied: 1s;
# a3 scaled by its source alone (1..10) would be [.78, 1, .94] -> [0, 1, 1]: per query it is [0, 1, .75]
RECORDS = [{"prompt": "a1", "source": "A", "scores": [1.0, 3.0, 2.5]},
           {"prompt": "a2", "source": "A", "scores": [5.0, 5.0, 5.0]},
           {"prompt": "a3", "source": "A", "scores": [8.0, 10.0, 9.5]},
           {"prompt": "b1", "source": "B", "scores": [0.0, 10.0, 9.0]}]
VECTORS = {"a1": [1.0, 0.0], "a2": [0.9, 0.1], "a3": [0.95, 0.0], "b1": [0.0, 1.0], "query near a": [1.0, 0.2],
           "query near b": [0.1, 1.0]}


def embedder(texts):
    return np.array([VECTORS[text] for text in texts])


def test_pieces_by_hand():
    assert bce_targets(RECORDS, 0.8).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0], [0, 1, 1]]
    prior = TaskPrior(embedder=embedder).fit(RECORDS, 0.8)
    assert prior.sources == ["A", "B"]
    assert np.allclose(prior.prior(["query near b", "query near a"]), [[0, 1, 1], [1 / 3, 1, 1 / 3]])  # per source
    chances = blend(np.array([[1.0, 0.0]]), np.array([[0.0, 0.8]]), 0.6)
    assert chances == pytest.approx(np.array([[0.4, 0.48]]))
    records = [{"source": "A", "scores": [0.0, 1.0]}, {"source": "A", "scores": [1.0, 0.0]},
               {"source": "B", "scores": [2.0, 4.0]}]
    # A: chosen scaled scores 1, 0 -> 0.5; B: min-max over (2, 4) -> 1.0; each source weighs alike: 0.75 (pooled: 2/3)
    assert macro_reward(records, np.array([1, 1, 1])) == pytest.approx(0.75)
    with pytest.raises(RuntimeError, match="fit"):
        TaskPrior(embedder=embedder).prior(["a1"])


def test_the_weight_is_chosen_on_validation_and_the_logits_carry_the_blend():
    """Validation query "query near a" (source A): its best candidate is 0. The prior (A's row, 1/3 1 1/3) prefers
    1; the router's estimates (sigmoid of logits 2, -2, -3: .881 .119 .047) prefer 0. Blended, candidate 0 wins
    where (1-w)/3 + .881w > (1-w) + .119w, i.e. w > .467, so the smallest best weight is 0.5."""
    prior = TaskPrior(embedder=embedder).fit(RECORDS, 0.8)
    validation = [{"prompt": "query near a", "source": "A", "scores": [1.0, 0.0, 0.5]}]
    logits = np.array([[2.0, -2.0, -3.0]])
    assert prior.choose_weight(validation, logits) == 0.5
    assert [prior.curve[w] for w in BLEND_WEIGHTS] == [0.0] * 5 + [1.0] * 6
    blended = prior.blend_logits(["query near a"], logits)
    expected = blend(np.array([[1 / 3, 1.0, 1 / 3]]), 1 / (1 + np.exp(-logits)), 0.5)
    assert blended.dtype == np.float32 and 1 / (1 + np.exp(-blended)) == pytest.approx(expected, abs=1e-6)
    assert blended.argmax() == 0
    prior.weight = 1.0  # the router alone: its own logits
    assert prior.blend_logits(["query near a"], logits) == pytest.approx(logits)
    prior.weight = 0.0  # the prior alone: a 0-1 table row stays finite
    assert np.isfinite(TaskPrior(embedder=embedder).fit(RECORDS, 0.8).blend_logits(["query near b"], logits)).all()


def test_save_and_load(tmp_path):
    prior = TaskPrior(embedder=embedder).fit(RECORDS, 0.8)
    prior.choose_weight([{"prompt": "query near a", "source": "A", "scores": [1.0, 0.0, 0.5]}],
                        np.array([[2.0, -2.0, -3.0]]))
    prior.save(tmp_path)
    loaded = TaskPrior.load(tmp_path, 3, embedder=embedder)
    queries, logits = ["query near a", "query near b"], np.array([[2.0, -2.0, -3.0], [0.0, 0.0, 0.0]])
    assert loaded.weight == 0.5 and loaded.sources == ["A", "B"] and loaded.curve == prior.curve
    assert loaded.blend_logits(queries, logits) == pytest.approx(prior.blend_logits(queries, logits))
    assert TaskPrior.load(tmp_path / "none", 3) is None
    with pytest.raises(DataError, match=f"{TASK_PRIOR_FILE}: field table must be .* = \\[2, 4\\]"):
        TaskPrior.load(tmp_path, 4)
    saved = json.loads((tmp_path / TASK_PRIOR_FILE).read_text())
    (tmp_path / TASK_PRIOR_FILE).write_text(json.dumps({**saved, "weight": 1.5}))
    with pytest.raises(DataError, match="field weight must be a number in \\[0, 1\\], got 1.5"):
        TaskPrior.load(tmp_path, 3)


def test_logits_of_another_shape_than_the_prompts_and_the_table_are_refused():
    """A router of 1 candidate against a prior of 3, or logits for 2 prompts with 1 prompt given, would broadcast
    into a wrong [n, k] blend without a word: each is a ValueError naming both shapes."""
    prior = TaskPrior(embedder=embedder).fit(RECORDS, 0.8)
    prior.weight = 0.5
    with pytest.raises(ValueError, match=r"logits \[2, 3\] .* 1 prompts and 3 candidates"):
        prior.blend_logits(["a1"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"logits \[2, 1\] .* 2 prompts and 3 candidates"):
        prior.blend_logits(["a1", "b1"], np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"logits \[3, 3\] .* 1 prompts and 3 candidates"):
        prior.choose_weight([{"prompt": "a1", "source": "A", "scores": [1.0, 0.0, 0.0]}], np.zeros((3, 3)))
    prior.weight = 1.0  # the router alone is no excuse: the shapes are checked before the shortcut
    with pytest.raises(ValueError, match=r"logits \[2, 1\]"):
        prior.blend_logits(["a1", "b1"], np.zeros((2, 1)))


@pytest.mark.parametrize("change, field", [
    ({"centroids": None}, "centroids"),
    ({"centroids": [1.0, 2.0]}, "centroids"),
    ({"table": [[1.0, 0.0], [0.0, 1.0, 1.0]]}, "table"),
    ({"table": [[float("nan"), 1.0, 0.0], [0.0, 1.0, 1.0]]}, "table"),
    ({"table": [[2.0, 1.0, 0.0], [0.0, 1.0, 1.0]]}, "table"),
    ({"weight": True}, "weight"),
    ({"weight": 1.5}, "weight"),
    ({"sources": "AB"}, "sources"),
])
def test_a_malformed_file_is_refused_naming_the_file_the_field_and_the_fix(tmp_path, change, field):
    prior = TaskPrior(embedder=embedder).fit(RECORDS, 0.8)
    prior.save(tmp_path)
    saved = json.loads((tmp_path / TASK_PRIOR_FILE).read_text())
    (tmp_path / TASK_PRIOR_FILE).write_text(json.dumps({**saved, **change}))
    with pytest.raises(DataError, match=f"{TASK_PRIOR_FILE}: field {field} .*retrain with --task_prior_blend True "
                                        f"or delete the file"):
        TaskPrior.load(tmp_path, 3, embedder=embedder)


def test_a_file_that_is_no_json_object_is_refused(tmp_path):
    (tmp_path / TASK_PRIOR_FILE).write_text("[1, 2]")
    with pytest.raises(DataError, match=f"{TASK_PRIOR_FILE}: expected a JSON object .* got list"):
        TaskPrior.load(tmp_path, 3, embedder=embedder)


def test_the_blended_logits_keep_the_order_of_the_blended_chances_near_1():
    """Source B's prior row is (0, 1, 1); router logits 14 and 16 give sigmoids 1 - 8.3e-7 and 1 - 1.1e-7, so at
    w 0.5 the chances are 1 - 4.2e-7 and 1 - 5.6e-8: candidate 2 is the blend's choice (what choose_weight scored),
    and the logits route there too (no clip at 1 - 1e-6 turning them into a tie that goes to candidate 1)."""
    prior = TaskPrior(embedder=embedder).fit(RECORDS, 0.8)
    prior.weight = 0.5
    logits = np.array([[-5.0, 14.0, 16.0]])
    chances = blend(np.array([[0.0, 1.0, 1.0]]), 1 / (1 + np.exp(-logits)), 0.5)
    assert chances.argmax() == 2
    blended = prior.blend_logits(["query near b"], logits)
    assert blended.argmax() == 2 and blended[0, 2] > blended[0, 1]
    assert blended[0, 1:] == pytest.approx(np.log(chances[0, 1:] / (1 - chances[0, 1:])), rel=1e-6)
