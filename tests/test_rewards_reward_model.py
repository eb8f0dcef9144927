"""The reward_model scorer on a tiny random sequence-classification model."""
import pytest
import torch

from rewards import SCORERS, build_scorer
from rewards.reward_model import RewardModelScorer
from test_generation import tiny_config, tiny_tokenizer


@pytest.fixture(scope="module")
def tiny_reward_model(tmp_path_factory):
    from transformers import LlamaForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-reward-model")
    torch.manual_seed(0)
    LlamaForSequenceClassification(tiny_config(num_labels=1)).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return str(folder)


PROMPTS = ["write a function that adds two numbers", "hello", "sum x y please"]
RESPONSES = ["def x y return x + y", "hello world", "the answer is 5"]


def test_batched_rewards_equal_the_model_on_each_conversation_alone(tiny_reward_model):
    from transformers import AutoModelForSequenceClassification

    scorer = RewardModelScorer(tiny_reward_model, batch_size=2)
    rewards = scorer.rewards(PROMPTS, RESPONSES)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model).eval()
    tokenizer = scorer.tokenizer
    for prompt, response, reward in zip(PROMPTS, RESPONSES, rewards):
        text = f"<user> {prompt} <eos> <assistant> {response} <eos> "
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            expected = model(**ids).logits[0, 0].item()
        assert reward == pytest.approx(expected, abs=1e-5)
    assert len(set(rewards)) == 3  # different conversations, different rewards


def test_score_records_and_build_scorer(tiny_reward_model):
    scorer = build_scorer("reward_model", model_path=tiny_reward_model, batch_size=3)
    records = scorer.score([{"prompt_id": str(i), "prompt": p} for i, p in enumerate(PROMPTS)], RESPONSES)
    assert [set(r) for r in records] == [{"score"}] * 3
    assert [r["score"] for r in records] == pytest.approx(scorer.rewards(PROMPTS, RESPONSES))
    assert SCORERS == ("reward_model", "unit_tests", "math_answer")
    with pytest.raises(ValueError, match="scorer must be one of"):
        build_scorer("bleu")


def test_a_classifier_with_several_labels_is_refused(tmp_path):
    from transformers import LlamaForSequenceClassification

    LlamaForSequenceClassification(tiny_config(num_labels=3)).save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="one output, this one has 3 labels"):
        RewardModelScorer(str(tmp_path))
