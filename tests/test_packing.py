"""Packed layouts compute the same function as the plain per-sequence layout.

Every equivalence test runs tiny random backbones on random token ids of several prompt/response lengths,
packs the batch with the library's collators (several queries per row, and all of them in one row), and
compares with a reference that never touches ``model.packing``: each sequence run alone through the
Hugging Face backbone (for causal: ``prompt <id_i> response_i <eos>``, one candidate at a time).
"""
import math
import random

import pytest
import torch
import torch.nn.functional as F
from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, BertModel, LlamaConfig, LlamaForCausalLM,
                          LlamaModel, ModernBertConfig, ModernBertForMaskedLM)

from model import LookaheadCLM, LookaheadMLM, PromptClassifier, ResponseScorer, RouterModelConfig
from model.backbones import resolve_backbone
from model.chunked_ce import ChunkedLinearCrossEntropy, linear_cross_entropy
from model.packing import (Document, attention_arguments, dense_mask, document_bounds, first_fit_rows,
                           flex_block_mask, one_document_per_row, pack, packed_hidden_states, row_assignment,
                           single_row, varlen_arguments)
from trainers import CausalTrainer, GTResponsesTrainer, MaskConcatTrainer, SCTrainer
from model.collators import CausalCollator, MaskConcatCollator, PromptCollator, ResponseCollator
from trainers.mask_concat import mask_slots

K = 3
LAYOUTS = {"rows": first_fit_rows, "one row": single_row}
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


@pytest.fixture(scope="module")
def smol():
    return AutoTokenizer.from_pretrained(resolve_backbone("packaged:smollm2-135m-instruct"))


@pytest.fixture(scope="module")
def bert():
    return AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))


def router(model_class, backbone, **fields):
    """A router (eval mode: no dropout) around ``backbone``, seeded head."""
    torch.manual_seed(1)
    config = RouterModelConfig(candidate_llms=[f"m{i}" for i in range(K)], **fields)
    config.backbone_config = backbone.config  # as from_backbone does (keeps the backbone's attention kernel)
    return model_class(config, backbone=backbone).eval()


def tokens(generator, length, low=10, high=900):
    return [generator.randrange(low, high) for _ in range(length)]


# ----- rows and the visibility rule, by hand -----

def test_row_assignments_and_pack():
    assert first_fit_rows([3, 5, 2, 4, 1]) == [[1], [3, 4], [0, 2]]  # capacity 5, longest first
    assert single_row([3, 5]) == [[0, 1]] and one_document_per_row([3, 5]) == [[0], [1]]
    assert row_assignment("flex_attention") is single_row and row_assignment("flash_attention_2") is single_row
    assert row_assignment("sdpa") is first_fit_rows and row_assignment("eager") is first_fit_rows

    documents = [Document([1, 2], [0, 1], labels=[-100, 2]), Document([3, 4, 5], [0, 1, 2], labels=[-100, 4, 5]),
                 Document([6], [0], labels=[6])]
    batch, starts = pack(documents, [[1], [0, 2]], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[3, 4, 5], [1, 2, 6]]
    assert batch["document_ids"].tolist() == [[1, 1, 1], [0, 0, 2]]
    assert batch["position_ids"].tolist() == [[0, 1, 2], [0, 1, 0]]
    assert batch["labels"].tolist() == [[-100, 4, 5], [-100, 2, 6]]
    assert starts == [3, 0, 5] and "block_ids" not in batch
    first, last = document_bounds(batch["document_ids"])
    assert first.tolist() == [3, 0, 5] and last.tolist() == [4, 2, 5]

    padded, starts = pack(documents, one_document_per_row([2, 3, 1]), pad_token_id=0)
    assert padded["input_ids"].tolist() == [[1, 2, 0], [3, 4, 5], [6, 0, 0]]
    assert padded["document_ids"].tolist() == [[0, 0, -1], [1, 1, 1], [2, -1, -1]] and starts == [0, 3, 6]


def test_first_fit_rows_track_the_room_left_in_each_row():
    # capacity 4 (the longest): 4 fills row 0; 3 opens row 1 (room 1); the first 2 opens row 2 (room 2), the second
    # fills it; 1 goes to row 1, the first row with room
    assert first_fit_rows([4, 3, 2, 2, 1]) == [[0], [1, 4], [2, 3]]
    # a full row takes nothing more: 2 + 2 fill row 1, so the 1 opens row 2
    assert first_fit_rows([4, 2, 2, 1]) == [[0], [1, 2], [3]]


def test_pack_a_single_prefix_shared_document():
    batch, starts = pack([Document([5, 6, 7], [0, 1, 1], block_ids=[0, 1, 2])], [[0]], pad_token_id=0)
    assert batch["block_ids"].tolist() == [[0, 1, 2]] and batch["document_ids"].tolist() == [[0, 0, 0]]
    assert starts == [0] and batch["input_ids"].dtype == torch.long


def test_varlen_arguments_need_one_row_without_padding():
    arguments = varlen_arguments(torch.tensor([[0, 0, 1, 1, 1]]))
    assert arguments["cu_seq_lens_q"].dtype == torch.int32
    assert {name: value.tolist() if torch.is_tensor(value) else value for name, value in arguments.items()} == {
        "cu_seq_lens_q": [0, 2, 5], "cu_seq_lens_k": [0, 2, 5], "max_length_q": 3, "max_length_k": 3}
    for bad in ([[0, 0], [1, 1]], [[0, 0, -1]]):  # two rows; one row with padding
        with pytest.raises(ValueError) as error:
            varlen_arguments(torch.tensor(bad))
        assert str(error.value) == "flash-attention varlen needs the single-row layout (packing.single_row)."


def test_stage_collators_follow_the_backbone_attention(smol, bert):
    for attention, rows in (("flex_attention", single_row), ("sdpa", first_fit_rows)):
        backbone_config = LlamaConfig(**TINY)
        backbone_config._attn_implementation = attention
        config = RouterModelConfig(candidate_llms=["a", "b"], candidate_token_ids=[1, 2], max_seq_length=64,
                                   max_prompt_length=8, mask_length=2, response_truncation_side="right")
        config.backbone_config = backbone_config
        assert CausalTrainer.model_class.collator_for(config, smol).assign_rows is rows
        assert GTResponsesTrainer.model_class.collator_for(config, smol).assign_rows is rows
        assert SCTrainer.model_class.collator_for(config, bert).assign_rows is rows
        assert MaskConcatTrainer.model_class.collator_for(config, bert).assign_rows is rows


def test_prefix_shared_visibility_by_hand():
    # Row: document 0 = prompt (2) | block 1 (2) | block 2 (1); document 1 = one token; one padding token.
    document_ids = torch.tensor([[0, 0, 0, 0, 0, 1, -1]])
    block_ids = torch.tensor([[0, 0, 1, 1, 2, 0, 0]])
    expected = [[1, 0, 0, 0, 0, 0, 0],
                [1, 1, 0, 0, 0, 0, 0],
                [1, 1, 1, 0, 0, 0, 0],
                [1, 1, 1, 1, 0, 0, 0],
                [1, 1, 0, 0, 1, 0, 0],  # block 2 sees the prompt and itself, not block 1
                [0, 0, 0, 0, 0, 1, 0],
                [0, 0, 0, 0, 0, 0, 1]]  # padding sees itself only
    assert dense_mask(document_ids, block_ids, causal=True)[0, 0].int().tolist() == expected
    bidirectional = dense_mask(document_ids, None, causal=False, window=1)[0, 0].int().tolist()
    assert bidirectional[0] == [1, 1, 0, 0, 0, 0, 0] and bidirectional[2] == [0, 1, 1, 1, 0, 0, 0]
    # FlexAttention's mask_mod applies the same rule to the same tensors.
    block_mask = flex_block_mask(document_ids, block_ids, causal=True)
    q, kv = torch.arange(7)[:, None], torch.arange(7)[None, :]
    assert block_mask.mask_mod(torch.tensor(0), torch.tensor(0), q, kv).int().tolist() == expected


def test_flex_block_mask_skips_blocks_no_token_sees():
    document_ids = torch.arange(4).repeat_interleave(128)[None]  # 4 documents of one 128-token block each
    block_mask = flex_block_mask(document_ids, None, causal=True)
    assert block_mask.kv_num_blocks.flatten().tolist() == [1, 1, 1, 1]  # each query block reads one key block


def test_flash_varlen_arguments_and_refusals():
    arguments = varlen_arguments(torch.tensor([[0, 0, 0, 1, 2, 2]]))
    assert arguments["cu_seq_lens_q"].tolist() == [0, 3, 4, 6] and arguments["max_length_q"] == 3
    with pytest.raises(ValueError, match="single-row"):
        varlen_arguments(torch.tensor([[0, 0, -1], [1, 1, 1]]))
    config = LlamaConfig(**TINY)
    config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="flex_attention"):
        attention_arguments(config, torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long),
                            True, torch.float32)
    sliding = LlamaConfig(**TINY, layer_types=["sliding_attention", "full_attention"], sliding_window=4)
    with pytest.raises(ValueError, match="sliding-window"):
        attention_arguments(sliding, torch.zeros(1, 4, dtype=torch.long), None, True, torch.float32)


# ----- causal: prefix-shared packing == k plain sequences -----

def causal_features(generator, prompt_lengths, response_lengths):
    return [{"prompt_ids": tokens(generator, n), "response_ids": [tokens(generator, r) for r in responses]}
            for n, responses in zip(prompt_lengths, response_lengths)]


def causal_reference(model, features, with_responses):
    """Routing logits [B, k] and mean response loss, one plain sequence per (query, candidate)."""
    logits, losses, count = [], torch.zeros(()), 0
    lm = model.backbone
    for feature in features:
        for i, token in enumerate(model.config.candidate_token_ids):
            prompt = feature["prompt_ids"]
            response = feature["response_ids"][i] if with_responses else []
            ids = torch.tensor([prompt + [token] + response])
            hidden = lm.base_model(input_ids=ids, use_cache=False).last_hidden_state[0]
            logits.append(model.routing_head(hidden[len(prompt)]))
            if response:
                targets = torch.tensor(response)
                losses = losses + F.cross_entropy(lm.lm_head(hidden[len(prompt):-1]), targets, reduction="sum")
                count += len(response)
    return torch.cat(logits).view(-1, K), (losses / count if with_responses else None)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("lengths", [
    ([5, 1, 9], [[3, 1, 7], [2, 2, 2], [1, 6, 4]]),
    ([12, 3], [[1, 1, 1], [9, 5, 13]]),
])
def test_causal_prefix_shared_equals_plain_sequences(smol, attention, lengths):
    generator = random.Random(sum(map(sum, lengths[1])))
    torch.manual_seed(0)
    backbone = LlamaForCausalLM._from_config(LlamaConfig(vocab_size=1000, num_key_value_heads=2, **TINY),
                                             attn_implementation=attention)
    model = router(LookaheadCLM, backbone, candidate_token_ids=[901, 902, 903])
    features = causal_features(generator, *lengths)
    for with_responses in (True, False):
        inputs = [dict(f) if with_responses else {"prompt_ids": f["prompt_ids"]} for f in features]
        expected_logits, expected_loss = causal_reference(model, features, with_responses)
        for name, rows in LAYOUTS.items():
            collator = CausalCollator(smol, K, 64, 64, [901, 902, 903], assign_rows=rows)
            batch = collator(inputs)
            outputs = model(**batch)
            assert torch.allclose(outputs.routing_logits, expected_logits, atol=1e-5), (name, with_responses)
            if with_responses:
                assert outputs.lm_loss.item() == pytest.approx(expected_loss.item(), abs=1e-5), name
            else:
                assert outputs.lm_loss is None and "labels" not in batch


def test_causal_prefix_shared_gradients_equal_plain(smol):
    generator = random.Random(7)
    torch.manual_seed(0)
    backbone = LlamaForCausalLM(LlamaConfig(vocab_size=1000, num_key_value_heads=2, tie_word_embeddings=True, **TINY))
    model = router(LookaheadCLM, backbone, candidate_token_ids=[901, 902, 903])
    features = causal_features(generator, [4, 8], [[2, 5, 3], [6, 1, 4]])
    parameters = [model.routing_head.weight, backbone.model.embed_tokens.weight,
                  backbone.model.layers[0].self_attn.q_proj.weight]

    def gradients(loss):
        return torch.autograd.grad(loss, parameters)

    weights = torch.randn(len(features), K)  # a loss that weighs every routing logit differently
    logits, loss = causal_reference(model, features, True)
    expected = gradients((logits * weights).sum() + loss)
    outputs = model(**CausalCollator(smol, K, 64, 64, [901, 902, 903], assign_rows=single_row)(features))
    actual = gradients((outputs.routing_logits * weights).sum() + outputs.lm_loss)
    for got, want in zip(actual, expected):
        assert torch.allclose(got, want, atol=1e-5)


def test_causal_routing_reads_k_prompt_copies_once(smol):
    """The routing layout holds n + k tokens per query where k prompt copies hold k (n + 1)."""
    collator = CausalCollator(smol, K, 64, 64, [901, 902, 903], assign_rows=single_row)
    batch = collator([{"prompt_ids": list(range(10, 30))}, {"prompt_ids": list(range(10, 15))}])
    assert batch["input_ids"].shape == (1, (20 + K) + (5 + K))
    assert batch["model_id_positions"].tolist() == [20, 21, 22, 28, 29, 30]
    assert batch["position_ids"][0, 20:23].tolist() == [20, 20, 20]


# ----- mask_concat, sc, gt_responses: packed == each document alone -----

def alone(document_ids, *grids):
    """For each document, its tokens taken out of the packed ``grids`` (1-D tensors)."""
    flat = document_ids.flatten()
    return [[grid.flatten()[flat == d][None] for grid in grids] for d in range(int(flat.max()) + 1)]


def encoder(kind):
    torch.manual_seed(0)
    if kind == "bert":
        return BertForMaskedLM(BertConfig(vocab_size=1000, max_position_embeddings=128, **TINY))
    # local_attention 8: layer 1 of 2 is a sliding-window layer that sees 4 tokens each side, inside the documents
    return ModernBertForMaskedLM(ModernBertConfig(vocab_size=1000, pad_token_id=0, cls_token_id=101,
                                                  sep_token_id=102, bos_token_id=101, eos_token_id=102,
                                                  max_position_embeddings=128, local_attention=8, **TINY))


@pytest.mark.parametrize("kind", ["bert", "modernbert"])
def test_mask_concat_packed_equals_each_query_alone(bert, kind):
    generator = random.Random(3)
    model = router(LookaheadMLM, encoder(kind))
    mask_ids = [903, 904, 905]
    features = [{"prompt_ids": [101] + tokens(generator, n) + [102],
                 "response_ids": [tokens(generator, r) for r in responses]}
                for n, responses in [(7, [4, 1, 2]), (2, [4, 4, 3]), (15, [0, 2, 4])]]
    for name, rows in LAYOUTS.items():
        collator = MaskConcatCollator(bert, K, 64, mask_ids, mask_length=4, assign_rows=rows)
        torch.manual_seed(5)
        batch = mask_slots(collator(features), 0.5, "random", mask_ids)
        outputs = model(**batch)
        logits, sums, count = [], 0.0, 0
        for ids, positions, labels in alone(batch["document_ids"], batch["input_ids"], batch["position_ids"],
                                            batch["mlm_labels"]):
            hidden = model.backbone.base_model(input_ids=ids, position_ids=positions,
                                               attention_mask=torch.ones_like(ids)).last_hidden_state[0]
            logits.append(model.routing_head(hidden[0]))
            predicted = labels[0] != -100
            sums += F.cross_entropy(model.masked_lm_logits(hidden[predicted]), labels[0][predicted], reduction="sum")
            count += int(predicted.sum())
        assert torch.allclose(outputs.routing_logits, torch.stack(logits), atol=1e-5), name
        assert outputs.lm_loss.item() == pytest.approx(sums.item() / count, abs=1e-5), name


@pytest.mark.parametrize("kind, pooling", [("bert", "cls"), ("bert", "mean"), ("llama", "last"), ("llama", "mean")])
def test_sc_and_gt_responses_packed_equal_each_sequence_alone(bert, smol, kind, pooling):
    generator = random.Random(11)
    torch.manual_seed(0)
    if kind == "bert":
        make = lambda: BertModel(BertConfig(vocab_size=1000, max_position_embeddings=128, **TINY),  # noqa: E731
                                 add_pooling_layer=False)
        tokenizer, frame = bert, ([101], [102])
    else:
        make = lambda: LlamaModel(LlamaConfig(vocab_size=1000, num_key_value_heads=2, **TINY))  # noqa: E731
        tokenizer, frame = smol, ([1], [2])
    features = [{"prompt_ids": frame[0] + tokens(generator, n) + frame[1],
                 "response_ids": [tokens(generator, r) + frame[1] for r in responses]}
                for n, responses in [(3, [5, 1, 2]), (9, [2, 8, 1]), (1, [3, 3, 3]), (6, [1, 1, 9])]]
    for model_class, collator_class in ((PromptClassifier, PromptCollator), (ResponseScorer, ResponseCollator)):
        model = router(model_class, make(), pooling=pooling)
        for name, rows in LAYOUTS.items():
            collator = collator_class(tokenizer, K, 64, 64, assign_rows=rows) if collator_class is ResponseCollator \
                else collator_class(tokenizer, K, 64, assign_rows=rows)
            batch = collator(features)
            pooled = []
            for ids, in alone(batch["document_ids"], batch["input_ids"]):
                hidden = model.backbone(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state[0]
                pooled.append({"cls": hidden[0], "last": hidden[-1], "mean": hidden.mean(dim=0)}[pooling])
            expected = model.routing_head(torch.stack(pooled)).view(-1, K)
            assert torch.allclose(model(**batch).routing_logits, expected, atol=1e-5), (model_class.__name__, name)


# ----- the chunked linear cross-entropy -----

def test_chunked_linear_cross_entropy_matches_full_logits():
    torch.manual_seed(0)
    hidden = torch.randn(7, 16, requires_grad=True)
    weight = torch.randn(50, 16, requires_grad=True)
    bias = torch.randn(50, requires_grad=True)
    targets = torch.randint(0, 50, (7,))
    expected = F.cross_entropy(F.linear(hidden, weight, bias), targets)
    expected_grads = torch.autograd.grad(expected * 3.0, (hidden, weight, bias))
    loss = ChunkedLinearCrossEntropy.apply(hidden, weight, bias, targets, 3)  # chunks of 3, 3 and 1 rows
    grads = torch.autograd.grad(loss * 3.0, (hidden, weight, bias))
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    for got, want in zip(grads, expected_grads):
        assert torch.allclose(got, want, atol=1e-5)
    with torch.no_grad():  # inference: no gradient buffers
        assert linear_cross_entropy(hidden, weight, targets, bias).item() == pytest.approx(expected.item(), abs=1e-5)
    # A uniform predictor has loss log(V).
    flat = linear_cross_entropy(torch.zeros(4, 16), torch.zeros(50, 16), torch.tensor([0, 1, 2, 3]))
    assert flat.item() == pytest.approx(math.log(50), abs=1e-6)


def test_chunked_linear_cross_entropy_under_bf16_autocast():
    torch.manual_seed(0)
    hidden = torch.randn(9, 32, requires_grad=True)
    weight = torch.randn(64, 32, requires_grad=True)
    targets = torch.randint(0, 64, (9,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = F.cross_entropy(F.linear(hidden, weight).float(), targets)
        loss = linear_cross_entropy(hidden, weight, targets, chunk_size=4)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-3)
    grad, expected_grad = (torch.autograd.grad(value, weight)[0] for value in (loss, expected))
    assert grad.dtype == torch.float32
    assert (grad - expected_grad).norm() / expected_grad.norm() < 1e-2


# ----- FlexAttention (compiled on CPU: ~10 s, in the default suite as the one check of the flex path) -----

def test_flex_attention_arguments_carry_the_prefix_sharing():
    """The flex kernel's BlockMask, as ``attention_arguments`` builds it for a backbone, applies the visibility
    rule drawn by hand in ``test_prefix_shared_visibility_by_hand``: blocks see the prompt and themselves."""
    document_ids = torch.tensor([[0, 0, 0, 0, 0, 1, -1]])
    block_ids = torch.tensor([[0, 0, 1, 1, 2, 0, 0]])
    config = LlamaConfig(**TINY)
    config._attn_implementation = "flex_attention"
    block_mask = attention_arguments(config, document_ids, block_ids, True, torch.float32)["attention_mask"]
    q, kv = torch.arange(7)[:, None], torch.arange(7)[None, :]
    seen = block_mask.mask_mod(torch.tensor(0), torch.tensor(0), q, kv).int().tolist()
    assert seen[4] == [1, 1, 0, 0, 1, 0, 0]  # block 2 sees the prompt and itself, not block 1
    assert seen[3] == [1, 1, 1, 1, 0, 0, 0] and seen[5] == [0, 0, 0, 0, 0, 1, 0] and seen[6] == [0] * 6 + [1]
    assert seen == dense_mask(document_ids, block_ids, causal=True)[0, 0].int().tolist()
    # an encoder (bidirectional) with sliding-window layers gets one BlockMask per layer type
    sliding = ModernBertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=32, global_attn_every_n_layers=2, local_attention=2)
    sliding._attn_implementation = "flex_attention"
    masks = attention_arguments(sliding, document_ids, None, False, torch.float32)["attention_mask"]
    local = masks["sliding_attention"].mask_mod(torch.tensor(0), torch.tensor(0), q, kv).int().tolist()
    assert local[2] == [0, 1, 1, 1, 0, 0, 0] and masks["full_attention"].mask_mod(
        torch.tensor(0), torch.tensor(0), q, kv).int().tolist()[2] == [1, 1, 1, 1, 1, 0, 0]


def test_flex_attention_forward_equals_sdpa(smol):
    generator = random.Random(5)
    features = causal_features(generator, [6, 11], [[3, 2, 5], [1, 4, 2]])
    outputs = {}
    for attention in ("sdpa", "flex_attention"):
        torch.manual_seed(0)
        backbone = LlamaForCausalLM._from_config(LlamaConfig(vocab_size=1000, num_key_value_heads=2, **TINY),
                                                 attn_implementation=attention)
        model = router(LookaheadCLM, backbone, candidate_token_ids=[901, 902, 903])
        collator = CausalCollator(smol, K, 64, 64, [901, 902, 903], assign_rows=row_assignment(attention))
        with torch.no_grad():  # FlexAttention has no backward on CPU
            outputs[attention] = model(**collator(features))
    assert torch.allclose(outputs["flex_attention"].routing_logits, outputs["sdpa"].routing_logits, atol=1e-4)
    assert outputs["flex_attention"].lm_loss.item() == pytest.approx(outputs["sdpa"].lm_loss.item(), abs=1e-4)


# ----- CUDA (skipped without a GPU; bench/device_check.sh runs them) -----

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.parametrize("attention", ["flex_attention", "sdpa"])
def test_cuda_prefix_shared_training_equals_plain_sequences(smol, attention):
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    generator = random.Random(13)
    torch.manual_seed(0)
    backbone = LlamaForCausalLM._from_config(LlamaConfig(vocab_size=1000, num_key_value_heads=2,
                                                         tie_word_embeddings=True, **TINY),
                                             attn_implementation=attention)
    model = router(LookaheadCLM, backbone, candidate_token_ids=[901, 902, 903]).cuda()
    features = causal_features(generator, [40, 3, 150], [[30, 1, 200], [5, 60, 2], [90, 90, 7]])
    parameters = [model.routing_head.weight, backbone.model.embed_tokens.weight,
                  backbone.model.layers[1].self_attn.k_proj.weight]
    weights = torch.randn(len(features), K, device="cuda")
    logits, loss = causal_reference(model, features, True)
    expected = torch.autograd.grad((logits * weights).sum() + loss, parameters)
    collator = CausalCollator(smol, K, 256, 256, [901, 902, 903], assign_rows=row_assignment(attention))
    batch = {name: tensor.cuda() for name, tensor in collator(features).items()}
    outputs = model(**batch)
    actual = torch.autograd.grad((outputs.routing_logits * weights).sum() + outputs.lm_loss, parameters)
    assert torch.allclose(outputs.routing_logits, logits, atol=1e-4)
    assert outputs.lm_loss.item() == pytest.approx(loss.item(), abs=1e-4)
    for got, want in zip(actual, expected):
        assert (got - want).norm() <= 1e-4 * want.norm()


@cuda
def test_cuda_linear_cross_entropy_matches_full_logits():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    hidden = torch.randn(3000, 64, device="cuda", requires_grad=True)
    weight = torch.randn(5000, 64, device="cuda", requires_grad=True)
    targets = torch.randint(0, 5000, (3000,), device="cuda")
    expected = F.cross_entropy(hidden @ weight.T, targets)
    expected_grads = torch.autograd.grad(expected, (hidden, weight))
    for loss in (ChunkedLinearCrossEntropy.apply(hidden, weight, None, targets, 1024),
                 linear_cross_entropy(hidden, weight, targets)):  # Liger's kernel when installed
        grads = torch.autograd.grad(loss, (hidden, weight))
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
        for got, want in zip(grads, expected_grads):
            assert (got - want).norm() <= 1e-4 * want.norm()


# ----- the kernels' arguments: types, dtypes and devices (the checks above compare values) -----

def test_packed_integer_fields_are_long():
    documents = [Document([5, 6, 7], [0, 1, 1], block_ids=[0, 1, 2], labels=[-100, 6, 7]), Document([8], [0],
                                                                                                   block_ids=[0],
                                                                                                   labels=[8])]
    batch, _ = pack(documents, [[0, 1]], pad_token_id=0)
    # block ids and labels index embeddings / the loss: integer tensors, never floats
    assert batch["block_ids"].dtype == torch.long and batch["labels"].dtype == torch.long
    assert batch["labels"].tolist() == [[-100, 6, 7, 8]] and batch["block_ids"].tolist() == [[0, 1, 2, 0]]


def test_flash_attention_refuses_prefix_sharing_with_the_fix_and_passes_varlen_lengths():
    config = LlamaConfig(**TINY)
    config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError) as error:
        attention_arguments(config, torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long),
                            True, torch.float32)
    assert str(error.value) == ("The prefix-shared layout (stage causal) cannot run on flash-attention varlen, which "
                                "only separates documents; use --attn_implementation flex_attention (GPU) or sdpa.")
    arguments = attention_arguments(config, torch.tensor([[0, 0, 1, 1, 1]]), None, True, torch.float32)
    assert arguments["cu_seq_lens_q"].tolist() == [0, 2, 5] and arguments["max_length_q"] == 3


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sdpa_gets_a_boolean_mask_and_eager_an_additive_mask_of_the_model_dtype(dtype):
    document_ids = torch.tensor([[0, 0, 1, -1]])
    config = LlamaConfig(**TINY)
    config._attn_implementation = "sdpa"
    allowed = attention_arguments(config, document_ids, None, True, dtype)["attention_mask"]
    assert allowed.dtype == torch.bool
    # causal, documents {0, 1} and {2}, position 3 padding (sees only itself)
    assert allowed[0, 0].tolist() == [[True, False, False, False], [True, True, False, False],
                                      [False, False, True, False], [False, False, False, True]]
    config._attn_implementation = "eager"
    additive = attention_arguments(config, document_ids, None, True, dtype)["attention_mask"]
    assert additive.dtype == dtype
    assert torch.equal(additive == 0, allowed) and bool((additive[~allowed] == torch.finfo(dtype).min).all())


def test_masks_are_built_on_the_device_of_the_document_ids():
    # the meta device stands in for a GPU here: a mask built on the default device would not match it
    document_ids = torch.tensor([[0, 0, 1, -1]]).to("meta")
    assert dense_mask(document_ids, None, True).device.type == "meta"
    config = LlamaConfig(**TINY)
    config._attn_implementation = "eager"
    assert attention_arguments(config, document_ids, None, True, torch.float32)["attention_mask"].device.type == "meta"


def test_flex_block_mask_compiles_only_on_cuda(monkeypatch):
    import torch.nn.attention.flex_attention as flex

    seen = {}
    monkeypatch.setattr(flex, "create_block_mask", lambda *args, **kwargs: seen.update(kwargs) or "mask")
    assert flex_block_mask(torch.tensor([[0, 0, 1]]), None, True) == "mask"
    assert seen["_compile"] is False and seen["device"] == torch.device("cpu")


def test_packed_hidden_states_pass_the_backbones_own_keywords():
    torch.manual_seed(0)
    backbone = BertModel(BertConfig(vocab_size=50, max_position_embeddings=16, **TINY)).eval()
    input_ids, positions = torch.tensor([[1, 7, 9, 2]]), torch.arange(4)[None]
    documents, segment_b = torch.zeros(1, 4, dtype=torch.long), torch.ones(1, 4, dtype=torch.long)
    plain = packed_hidden_states(backbone, False, input_ids, positions, documents)
    with_segments = packed_hidden_states(backbone, False, input_ids, positions, documents, token_type_ids=segment_b)
    expected = backbone(input_ids=input_ids, position_ids=positions, token_type_ids=segment_b).last_hidden_state
    torch.testing.assert_close(with_segments, expected, atol=1e-5, rtol=1e-5)  # one document: no mask needed
    assert not torch.allclose(plain, with_segments)  # the keyword reached the backbone


def test_flex_block_mask_has_one_batch_entry_per_row_and_bounds_of_a_token_at_index_0():
    # two rows with different layouts: a mask built for one broadcast row would give row 1 row 0's documents
    assert flex_block_mask(torch.tensor([[0, 0, 1, 1], [0, 1, 1, -1]]), None, False).shape[0] == 2
    first, last = document_bounds(torch.tensor([[0, 1, 1]]))  # document 0: one token, at flat index 0
    assert first.tolist() == [0, 1] and last.tolist() == [0, 2]
