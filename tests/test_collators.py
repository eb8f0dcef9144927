"""Token layouts of the four stages against hand-built tensors, and the mask-rate schedule."""
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoTokenizer

from model.backbones import resolve_backbone
from model.collators import (CausalCollator, MaskConcatCollator, PromptCollator, ResponseCollator,
                             prompt_frame)
from trainers.mask_concat import MaskConcatTrainer, mask_rate, masked_slots

PAD, CLS, SEP = 0, 101, 102  # MiniLM (BERT uncased) special tokens


@pytest.fixture(scope="module")
def bert():
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))
    tokenizer.add_tokens(["[MASK_1]", "[MASK_2]"], special_tokens=True)
    return tokenizer


@pytest.fixture(scope="module")
def smol():
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:smollm2-135m-instruct"))
    tokenizer.add_tokens(["<|model_1|>", "<|model_2|>"], special_tokens=True)
    return tokenizer


def ids(tokenizer, words):
    """Vocabulary ids of single-token words (the hand-built side of the comparisons)."""
    return tokenizer.convert_tokens_to_ids(words.split())


def record(prompt, responses, scores=(1.0, 0.0)):
    return {"prompt_id": prompt, "prompt": prompt, "source": "S", "responses": list(responses),
            "scores": list(scores)}


def test_mask_concat_training_layout_with_right_truncation(bert):
    m1, m2 = bert.convert_tokens_to_ids(["[MASK_1]", "[MASK_2]"])
    a, b, c, d, e = ids(bert, "a b c d e")
    collator = MaskConcatCollator(bert, 2, max_length=12, mask_token_ids=[m1, m2], mask_length=3)  # 2 + 2 x 4 + a 2-token prompt
    features = collator.encode([record("a b c", ["d e", "a b c d"]), record("e", ["c", "d"])],
                               scores=[[0.5, 1.0], [1.0, 0.0]], with_responses=True)
    batch = collator(features)
    assert batch["input_ids"].tolist() == [
        [CLS, a, b, SEP, d, e, PAD, SEP, a, b, c, SEP],
        [CLS, e, SEP, c, PAD, PAD, SEP, d, PAD, PAD, SEP, PAD]]
    assert batch["document_ids"].tolist() == [[0] * 12, [1] * 11 + [-1]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7],
                                              [0, 1, 2, 3, 4, 5, 6, 3, 4, 5, 6, 0]]
    # flat indices into the 2 x 12 grid: the second query's row starts at 12
    assert batch["slot_positions"].tolist() == [[[4, 5, 6], [8, 9, 10]], [[15, 16, 17], [19, 20, 21]]]
    assert batch["scores"].tolist() == [[0.5, 1.0], [1.0, 0.0]]


def test_mask_concat_left_truncation_keeps_the_end_of_the_response(bert):
    m1, m2 = bert.convert_tokens_to_ids(["[MASK_1]", "[MASK_2]"])
    a, b, c, d = ids(bert, "a b c d")
    collator = MaskConcatCollator(bert, 2, 18, [m1, m2], 3, response_truncation_side="left")
    batch = collator(collator.encode([record("a", ["a b c d", "d"])], with_responses=True))
    assert batch["input_ids"].tolist() == [[CLS, a, SEP, b, c, d, SEP, d, PAD, PAD, SEP]]


def test_mask_concat_routing_layout_masks_every_slot(bert):
    m1, m2 = bert.convert_tokens_to_ids(["[MASK_1]", "[MASK_2]"])
    a, b = ids(bert, "a b")
    collator = MaskConcatCollator(bert, 2, 16, [m1, m2], 2)  # room for an 8-token prompt
    batch = collator(collator.encode([record("a b", ["c", "d"])]))
    assert batch["input_ids"].tolist() == [[CLS, a, b, SEP, m1, m1, SEP, m2, m2, SEP]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 5, 6, 4, 5, 6]]
    assert set(batch) == {"input_ids", "position_ids", "document_ids"}
    assert collator.max_position() == 1 + 8 + 1 + 2


def test_mask_concat_actual_foresight_reads_the_responses_in_training_and_routing(bert):
    """The ceiling (foresight "actual"): each block is the response cut to L - 1 tokens, [PAD] to fill, then the
    candidate's mask token; the same layout at routing time, nothing to mask (no slot_positions)."""
    m1, m2 = bert.convert_tokens_to_ids(["[MASK_1]", "[MASK_2]"])
    a, b, c, d = ids(bert, "a b c d")
    collator = MaskConcatCollator(bert, 2, 16, [m1, m2], 3, actual_responses=True)
    records = [record("a b", ["c d a", "d"])]
    training = collator(collator.encode(records, scores=[[1.0, 0.0]], with_responses=True))
    routing = collator(collator.encode(records, with_responses=True))
    expected = [[CLS, a, b, SEP, c, d, m1, SEP, d, PAD, m2, SEP]]
    assert training["input_ids"].tolist() == expected and routing["input_ids"].tolist() == expected
    assert training["position_ids"].tolist() == [[0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7]]
    assert "slot_positions" not in training and "slot_positions" not in routing
    with pytest.raises(ValueError, match="with_responses=True"):
        collator(collator.encode(records))
    with pytest.raises(ValueError, match="mask_length >= 2"):
        MaskConcatCollator(bert, 2, 16, [m1, m2], 1, actual_responses=True)


def test_mask_concat_refuses_a_decoder_tokenizer(smol):
    with pytest.raises(ValueError, match="encoder tokenizer"):
        MaskConcatCollator(smol, 2, 8, [1, 2], 2)


def test_prompt_frame_is_the_chat_template_user_turn(smol, bert):
    before, after = prompt_frame(smol)
    assert smol.decode(before) == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
                                   "Hugging Face<|im_end|>\n<|im_start|>user\n")
    assert smol.decode(after) == "<|im_end|>\n<|im_start|>assistant\n"
    assert prompt_frame(bert) == ([CLS], [SEP])


def test_causal_training_and_routing_layouts(smol):
    before, after = prompt_frame(smol)
    m1, m2 = smol.convert_tokens_to_ids(["<|model_1|>", "<|model_2|>"])
    eos = smol.eos_token_id
    hello, world, yes, no = (smol(w, add_special_tokens=False)["input_ids"][0]
                             for w in ("hello", " world", "yes", " no"))
    frame = len(before) + len(after)
    # each prompt <id> response <eos> fits max_length: a 1-token prompt leaves 1 response token
    collator = CausalCollator(smol, 2, max_length=frame + 4, max_prompt_length=1, model_id_token_ids=[m1, m2])
    features = collator.encode([record("hello world", ["yes", " no yes"])], scores=[[1.0, 0.0]],
                               with_responses=True)
    batch = collator(features)
    prompt = before + [hello] + after  # the prompt cut to 1 token
    n = len(prompt)
    # One document: the prompt once, then one block per candidate whose positions continue from the prompt.
    assert batch["input_ids"].tolist() == [prompt + [m1, yes, eos, m2, no, eos]]
    assert batch["position_ids"].tolist() == [list(range(n)) + [n, n + 1, n + 2] * 2]
    assert batch["block_ids"].tolist() == [[0] * n + [1, 1, 1, 2, 2, 2]]
    assert batch["document_ids"].tolist() == [[0] * (n + 6)]
    assert batch["labels"].tolist() == [[-100] * (n + 1) + [yes, eos, -100, no, eos]]
    assert batch["model_id_positions"].tolist() == [n, n + 3]

    wide = CausalCollator(smol, 2, max_length=frame + 5, max_prompt_length=2, model_id_token_ids=[m1, m2])
    routing = wide(wide.encode([record("hello world", ["a", "b"]), record("hello", ["a", "b"])]))
    long_prompt, short_prompt = before + [hello, world] + after, prompt
    n = len(long_prompt)
    assert routing["input_ids"].tolist() == [long_prompt + [m1, m2],
                                             short_prompt + [m1, m2, eos]]  # padded with EOS, SmolLM2's pad token
    assert routing["document_ids"].tolist() == [[0] * (n + 2), [1] * (n + 1) + [-1]]
    assert routing["position_ids"].tolist() == [list(range(n)) + [n, n], list(range(n - 1)) + [n - 1, n - 1, 0]]
    assert routing["block_ids"].tolist() == [[0] * n + [1, 2], [0] * (n - 1) + [1, 2, 0]]
    assert routing["model_id_positions"].tolist() == [n, n + 1, (n + 2) + n - 1, (n + 2) + n]
    assert "labels" not in routing and "scores" not in routing


def test_prompt_collator_reads_the_prompt_alone(bert):
    a, b, c = ids(bert, "a b c")
    collator = PromptCollator(bert, 2, max_length=4)  # [CLS] + 2 prompt tokens + [SEP]
    batch = collator(collator.encode([record("a b c", ["x", "y"]), record("c", ["x", "y"])], scores=[[1, 0], [0, 1]]))
    assert batch["input_ids"].tolist() == [[CLS, a, b, SEP], [CLS, c, SEP, PAD]]
    assert batch["document_ids"].tolist() == [[0, 0, 0, 0], [1, 1, 1, -1]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3], [0, 1, 2, 0]]
    assert batch["scores"].tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_response_collator_pairs_the_prompt_with_each_response(bert, smol):
    a, b, c, d = ids(bert, "a b c d")
    collator = ResponseCollator(bert, 2, max_length=6, max_prompt_length=4)  # [CLS] a [SEP] + 2 + [SEP]
    batch = collator(collator.encode([record("a", ["b c d", "d"])], with_responses=True))
    assert batch["input_ids"].tolist() == [[CLS, a, SEP, b, c, SEP], [CLS, a, SEP, d, SEP, PAD]]
    before, after = prompt_frame(smol)
    decoder = ResponseCollator(smol, 2, max_length=len(before) + len(after) + 8, max_prompt_length=4)
    yes = smol("yes", add_special_tokens=False)["input_ids"]
    rows = decoder(decoder.encode([record("yes", ["yes", "yes"])], with_responses=True))["input_ids"].tolist()
    assert rows[0] == before + yes + after + yes + [smol.eos_token_id]
    with pytest.raises(ValueError, match="responses"):
        collator(collator.encode([record("a", ["b", "c"])]))


def test_wrong_number_of_responses_is_reported(bert):
    collator = PromptCollator(bert, 2, 8)
    with pytest.raises(ValueError, match="'a b' .* has 3 responses"):
        collator.encode([record("a b", ["x", "y", "z"])], with_responses=True)


def test_mask_rate_rises_linearly_then_stays_at_one():
    assert mask_rate(0, 100, 0.2, 0.5) == pytest.approx(0.2)
    assert mask_rate(25, 100, 0.2, 0.5) == pytest.approx(0.6)
    assert mask_rate(50, 100, 0.2, 0.5) == pytest.approx(1.0)
    assert mask_rate(90, 100, 0.2, 0.5) == 1.0
    assert mask_rate(0, 100, 0.2, 0.0) == 1.0


def test_masked_slots_per_mask_type():
    assert masked_slots(4, 0.5, "right", (1, 1)).tolist() == [[[False, False, True, True]]]
    assert masked_slots(4, 0.5, "left", (1, 1)).tolist() == [[[True, True, False, False]]]
    assert masked_slots(4, 0.6, "right", (1, 1)).tolist() == [[[False, True, True, True]]]  # ceil(2.4) = 3
    assert masked_slots(4, 0.0, "right", (1, 1)).tolist() == [[[False, False, False, True]]]  # at least one
    torch.manual_seed(0)
    chosen = masked_slots(8, 0.5, "random", (3, 2))
    assert chosen.sum(dim=-1).tolist() == [[4, 4]] * 3
    assert len({tuple(row) for row in chosen.reshape(6, 8).tolist()}) > 1


def test_mask_responses_replaces_the_right_slots_and_labels_them(bert):
    m1, m2 = bert.convert_tokens_to_ids(["[MASK_1]", "[MASK_2]"])
    a, b, c, d, e = ids(bert, "a b c d e")
    collator = MaskConcatCollator(bert, 2, 20, [m1, m2], 4)
    batch = collator(collator.encode([record("e", ["a b c d", "a b"])], scores=[[1.0, 0.0]], with_responses=True))
    recorded = {}
    trainer = SimpleNamespace(
        state=SimpleNamespace(global_step=5, max_steps=20),
        args=SimpleNamespace(starting_mask_rate=0.0, mask_warmup_ratio=0.5, mask_type="right"),
        model=SimpleNamespace(config=SimpleNamespace(candidate_token_ids=[m1, m2])),
        record_metric=lambda name, value: recorded.update({name: value}))
    masked = MaskConcatTrainer.mask_responses(trainer, batch)  # rate 5 / 10 = 0.5 -> 2 of 4 slots
    assert recorded == {"mask_rate": 0.5}
    assert masked["input_ids"].tolist() == [[CLS, e, SEP, a, b, m1, m1, SEP, a, b, m2, m2, SEP]]
    assert masked["mlm_labels"].tolist() == [[-100] * 5 + [c, d, -100, -100, -100, PAD, PAD, -100]]
    assert "slot_positions" not in masked and masked["scores"].tolist() == [[1.0, 0.0]]
    assert batch["input_ids"][0, 5].item() == c  # the collated batch itself is left untouched


def test_max_length_bounds_every_layout_and_prompts_are_cut_to_fit(bert, smol):
    m1, m2 = bert.convert_tokens_to_ids(["[MASK_1]", "[MASK_2]"])
    words = " ".join(["a"] * 50)
    # mask_concat: [CLS] prompt [SEP] + 2 blocks of (3 slots + [SEP]) = 2 + P + 8 <= 20 -> 10 prompt tokens
    collator = MaskConcatCollator(bert, 2, 20, [m1, m2], 3)
    assert collator.max_prompt_length == 10
    batch = collator(collator.encode([record(words, ["b", "c"])], with_responses=True))
    assert batch["input_ids"].shape[1] == 20
    # ... and the backbone's position limit: positions reach frame + P + mask_length <= 15 -> P = 10 as well,
    # while 14 positions leave only 8
    assert MaskConcatCollator(bert, 2, 1000, [m1, m2], 3, max_positions=16).max_prompt_length == 10
    assert MaskConcatCollator(bert, 2, 1000, [m1, m2], 3, max_positions=14).max_prompt_length == 8
    # sc: [CLS] prompt [SEP] <= 6
    assert PromptCollator(bert, 2, 6).max_prompt_length == 4
    with pytest.raises(ValueError, match="--max_length 9 leaves no room for the prompt"):
        MaskConcatCollator(bert, 2, 9, [m1, m2], 3)  # 2 + 2 x 4 = 10 > 9


def test_causal_responses_take_what_each_prompt_leaves(smol):
    m1, m2 = smol.convert_tokens_to_ids(["<|model_1|>", "<|model_2|>"])
    frame = sum(map(len, prompt_frame(smol)))
    response = " ".join(["yes"] * 40)
    collator = CausalCollator(smol, 2, max_length=frame + 12, max_prompt_length=6, model_id_token_ids=[m1, m2])
    short, long = collator.encode([record("hello", [response, response]),
                                   record(" ".join(["hello"] * 20), [response, response])], with_responses=True)
    # each prompt <id> response <eos> is exactly max_length long when the response is long enough
    for feature in (short, long):
        for ids in feature["response_ids"]:
            assert len(feature["prompt_ids"]) + 1 + len(ids) == frame + 12
    assert len(long["prompt_ids"]) == frame + 6  # the prompt cut to --max_prompt_length first
    assert len(short["response_ids"][0]) > len(long["response_ids"][0])
