"""Router models on tiny random backbones (BERT, ModernBERT, Llama): layouts reach the right states,
auxiliary losses match the backbones' own, and save -> load gives identical routing logits."""
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from transformers import (AutoTokenizer, BertConfig, BertForMaskedLM, LlamaConfig, LlamaForCausalLM,
                          ModernBertConfig, ModernBertForMaskedLM)

from model import LookaheadCLM, LookaheadMLM, PromptClassifier, ResponseScorer, load_router_model
from model.backbones import resolve_backbone
from trainers import (CausalConfig, CausalTrainer, GTResponsesConfig, GTResponsesTrainer, MaskConcatConfig,
                      MaskConcatTrainer, SCConfig, SCTrainer)
from trainers.causal import existing_single_tokens

RECORDS = [
    {"prompt_id": "1", "prompt": "sort a list in python", "source": "S",
     "responses": ["use sorted of the list", "call list sort"], "scores": [1.0, 0.5]},
    {"prompt_id": "2", "prompt": "add two numbers", "source": "S",
     "responses": ["return a plus b", "a + b is the sum of the two numbers"], "scores": [0.0, 1.0]},
]


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    """Folders holding tiny random backbones with real tokenizers: bert, modernbert, llama."""
    root = tmp_path_factory.mktemp("backbones")
    bert_tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))
    smol_tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:smollm2-135m-instruct"))
    tiny = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    torch.manual_seed(0)
    models = {
        "bert": (BertForMaskedLM(BertConfig(vocab_size=len(bert_tokenizer), max_position_embeddings=64, **tiny)),
                 bert_tokenizer),
        "modernbert": (ModernBertForMaskedLM(ModernBertConfig(
            vocab_size=len(bert_tokenizer), pad_token_id=0, cls_token_id=101, sep_token_id=102,
            bos_token_id=101, eos_token_id=102, max_position_embeddings=64, **tiny)), bert_tokenizer),
        "llama": (LlamaForCausalLM(LlamaConfig(vocab_size=len(smol_tokenizer), num_key_value_heads=1,
                                               max_position_embeddings=256, tie_word_embeddings=True, **tiny)),
                  smol_tokenizer),
    }
    for name, (backbone, tokenizer) in models.items():
        backbone.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    return {name: str(root / name) for name in models}


def new_router(trainer_class, config_class, backbone, tmp_path, **options):
    lengths = {"max_length": 64, **({"max_prompt_length": 8} if config_class in (CausalConfig, GTResponsesConfig) else {})}
    args = config_class(output_dir=str(tmp_path / "run"), backbone_name_or_path=backbone, candidate_llms=["A", "B"],
                        **lengths, **options)
    model, tokenizer = trainer_class.new_router(args)
    return model.eval(), tokenizer, trainer_class.model_class.collator_for(model.config, tokenizer)


def routing_logits(model, collator, with_responses=False):
    with torch.no_grad():
        return model(**collator(collator.encode(RECORDS, with_responses=with_responses))).routing_logits


def assert_reloads_identically(trainer_class, model, tokenizer, collator, tmp_path, with_responses=False):
    """Save, reload with load_router_model, rebuild the collator from the saved config: same logits."""
    before = routing_logits(model, collator, with_responses)
    model.save_pretrained(tmp_path / "saved")
    tokenizer.save_pretrained(tmp_path / "saved")
    loaded, loaded_tokenizer = load_router_model(tmp_path / "saved")
    assert type(loaded) is type(model)
    assert loaded_tokenizer.convert_tokens_to_ids(model.config.candidate_tokens) == model.config.candidate_token_ids
    after = routing_logits(loaded, trainer_class.model_class.collator_for(loaded.config, loaded_tokenizer), with_responses)
    assert before.shape == (2, 2)
    assert torch.equal(before, after)
    assert not (tmp_path / "saved" / "router_config.json").exists()  # config.json is the one description
    return json.loads((tmp_path / "saved" / "config.json").read_text())


@pytest.mark.parametrize("backbone", ["bert", "modernbert"])
def test_mask_concat_model(backbones, tmp_path, backbone):
    model, tokenizer, collator = new_router(MaskConcatTrainer, MaskConcatConfig, backbones[backbone], tmp_path,
                                            mask_length=3)
    assert isinstance(model, LookaheadMLM)
    embeddings = model.get_input_embeddings().weight
    for token_id in model.config.candidate_token_ids:  # initialised from [MASK]
        assert torch.equal(embeddings[token_id], embeddings[tokenizer.mask_token_id])

    # Position symmetry: identical mask embeddings -> the two blocks' hidden states are identical.
    batch = collator(collator.encode(RECORDS[:1]))
    with torch.no_grad():
        hidden = model.backbone.base_model(input_ids=batch["input_ids"],
                                           attention_mask=torch.ones_like(batch["input_ids"]),
                                           position_ids=batch["position_ids"]).last_hidden_state[0]
    prompt_length = len(collator.encode(RECORDS[:1])[0]["prompt_ids"])
    first, second = hidden[prompt_length:prompt_length + 4], hidden[prompt_length + 4:prompt_length + 8]
    assert torch.allclose(first, second, atol=1e-5)

    # The MLM loss on labelled slots equals the backbone's own masked-LM loss.
    labels = torch.full_like(batch["input_ids"], -100)
    labels[0, prompt_length + 1], labels[0, prompt_length + 5] = 2000, 3000
    with torch.no_grad():
        ours = model(**batch, mlm_labels=labels).lm_loss
        logits = model.backbone(input_ids=batch["input_ids"], attention_mask=torch.ones_like(batch["input_ids"]),
                                position_ids=batch["position_ids"]).logits
    assert ours.item() == pytest.approx(F.cross_entropy(logits[0], labels[0]).item(), abs=1e-5)

    description = assert_reloads_identically(MaskConcatTrainer, model, tokenizer, collator, tmp_path)
    expected = {
        "stage": "mask_concat", "backbone_name_or_path": backbones[backbone], "candidate_llms": ["A", "B"],
        "score_normalization": "min-max", "candidate_tokens": ["[MASK_1]", "[MASK_2]"],
        "candidate_token_ids": [len(tokenizer) - 2, len(tokenizer) - 1], "max_seq_length": 64,
        "mask_length": 3, "response_truncation_side": "right", "loss_type": "BCE",
        "routing_head": "prediction"}
    assert {name: description.get(name) for name in expected} == expected


def test_causal_model(backbones, tmp_path):
    model, tokenizer, collator = new_router(CausalTrainer, CausalConfig, backbones["llama"], tmp_path)
    assert isinstance(model, LookaheadCLM)
    embeddings = model.get_input_embeddings().weight
    old_mean = embeddings[:-2].mean(dim=0)
    assert torch.allclose(embeddings[-1], old_mean) and torch.allclose(embeddings[-2], old_mean)
    assert model.backbone.lm_head.weight is model.backbone.model.embed_tokens.weight

    # Causal attention: the routing logits read in the training layout equal the routing-time ones.
    features = collator.encode(RECORDS, with_responses=True)
    training = collator(features)
    # The response loss equals the backbone's own loss on the plain per-candidate sequences, right-padded.
    rows, labels = [], []
    for feature in features:
        for token, response in zip(model.config.candidate_token_ids, feature["response_ids"]):
            rows.append(feature["prompt_ids"] + [token] + response)
            labels.append([-100] * (len(feature["prompt_ids"]) + 1) + response)
    longest = max(len(row) for row in rows)
    padded = lambda values, fill: torch.tensor([v + [fill] * (longest - len(v)) for v in values])  # noqa: E731
    with torch.no_grad():
        outputs = model(**training)
        expected_lm = model.backbone(input_ids=padded(rows, 0), attention_mask=padded([[1] * len(r) for r in rows], 0),
                                     labels=padded(labels, -100)).loss
    assert torch.allclose(outputs.routing_logits, routing_logits(model, collator), atol=1e-5)
    assert outputs.lm_loss.item() == pytest.approx(expected_lm.item(), abs=1e-5)

    description = assert_reloads_identically(CausalTrainer, model, tokenizer, collator, tmp_path)
    assert description["candidate_tokens"] == ["<|model_1|>", "<|model_2|>"]
    assert description["model_id_type"] == "special" and description["max_prompt_length"] == 8
    with safe_open(tmp_path / "saved" / "model.safetensors", "pt") as weights:
        keys = set(weights.keys())
    assert "backbone.model.embed_tokens.weight" in keys and "backbone.lm_head.weight" not in keys  # tied


def test_existing_model_id_tokens(backbones, tmp_path):
    smol = AutoTokenizer.from_pretrained(backbones["llama"])
    assert existing_single_tokens(smol, [" A", " B"]) == ([" A", " B"], [330, 389])
    assert existing_single_tokens(smol, [" 1", " 2"]) == (["1", "2"], [33, 34])  # SmolLM2 splits " 1"
    model, _, collator = new_router(CausalTrainer, CausalConfig, backbones["llama"], tmp_path, model_id_type="letter")
    assert model.config.candidate_token_ids == [330, 389]
    assert model.get_input_embeddings().weight.shape[0] == len(smol)
    with pytest.raises(ValueError, match="single token"):
        existing_single_tokens(smol, [" 10000000"])


@pytest.mark.parametrize("backbone, pooling", [("bert", "cls"), ("llama", "last")])
def test_sc_model(backbones, tmp_path, backbone, pooling):
    model, tokenizer, collator = new_router(SCTrainer, SCConfig, backbones[backbone], tmp_path)
    assert isinstance(model, PromptClassifier) and model.config.pooling == pooling
    assert getattr(model.backbone, "pooler", None) is None
    description = assert_reloads_identically(SCTrainer, model, tokenizer, collator, tmp_path)
    assert description["stage"] == "sc" and description["pooling"] == pooling


def test_gt_responses_model(backbones, tmp_path):
    model, tokenizer, collator = new_router(GTResponsesTrainer, GTResponsesConfig, backbones["llama"], tmp_path)
    assert isinstance(model, ResponseScorer) and model.routing_head.out_features == 1
    # Each logit depends on its own response only: changing response 2 of query 1 moves that logit alone.
    batch = collator(collator.encode(RECORDS, with_responses=True))
    changed = [dict(RECORDS[0], responses=["use sorted of the list", "something else"]), RECORDS[1]]
    with torch.no_grad():
        base = model(**batch).routing_logits
        moved = model(**collator(collator.encode(changed, with_responses=True))).routing_logits
    assert torch.allclose(base[:, 0], moved[:, 0], atol=1e-5) and torch.allclose(base[1], moved[1], atol=1e-5)
    assert not torch.allclose(base[0, 1], moved[0, 1])
    assert_reloads_identically(GTResponsesTrainer, model, tokenizer, collator, tmp_path, with_responses=True)


def test_gradient_checkpointing_trains(backbones, tmp_path):
    """Checkpointing recomputes activations in the backward pass: the loss and every gradient are those of the
    same step without it (same seed, so the same dropout masks: checkpointing replays the RNG state)."""
    model, _, collator = new_router(CausalTrainer, CausalConfig, backbones["llama"], tmp_path)
    model.train()
    batch = collator(collator.encode(RECORDS, with_responses=True))
    parameters = [model.routing_head.weight, model.backbone.model.layers[0].mlp.up_proj.weight]

    def step():
        torch.manual_seed(0)
        outputs = model(**batch)
        loss = outputs.routing_logits.sum() + outputs.lm_loss
        return loss.item(), torch.autograd.grad(loss, parameters)

    plain_loss, plain_grads = step()
    model.gradient_checkpointing_enable()
    assert model.backbone.model.gradient_checkpointing
    loss, grads = step()
    assert loss == pytest.approx(plain_loss, abs=1e-6)
    for got, want in zip(grads, plain_grads):
        assert want.norm() > 0 and torch.allclose(got, want, atol=1e-6)


def test_mask_concat_routing_heads(backbones, tmp_path):
    """The paper's head on [CLS]: dense (d -> d) -> the backbone's activation -> layer norm -> dropout -> linear (k);
    the linear ablation: dropout -> linear. Both reload identically."""
    model, tokenizer, collator = new_router(MaskConcatTrainer, MaskConcatConfig, backbones["bert"], tmp_path,
                                            mask_length=3)
    head, hidden = model.routing_head, model.config.backbone_config.hidden_size
    assert (head.dense.in_features, head.dense.out_features, head.out.out_features) == (hidden, hidden, 2)
    assert isinstance(head.layer_norm, torch.nn.LayerNorm)
    states = torch.randn(3, hidden)
    expected = head.out(head.layer_norm(torch.nn.functional.gelu(head.dense(states))))  # BERT's hidden_act: gelu
    assert torch.allclose(head.eval()(states), expected, atol=1e-6)
    linear, tokenizer, collator = new_router(MaskConcatTrainer, MaskConcatConfig, backbones["bert"],
                                             tmp_path / "linear", mask_length=3, routing_head="linear")
    assert [type(layer) for layer in linear.routing_head] == [torch.nn.Dropout, torch.nn.Linear]
    assert assert_reloads_identically(MaskConcatTrainer, linear, tokenizer, collator,
                                      tmp_path / "linear")["routing_head"] == "linear"


def test_source_weighting_samples_by_source_only_over_several_sources(backbones, tmp_path):
    from trainers.base import source_sampling_weights

    sources = ["A"] * 4 + ["B"]
    assert source_sampling_weights(sources, "sqrt") == [0.5] * 4 + [1.0]  # 1 / sqrt(4), 1 / sqrt(1)
    assert source_sampling_weights(sources, "balanced") == [0.25] * 4 + [1.0]
    assert source_sampling_weights(sources, "none") is None
    assert source_sampling_weights(["A"] * 3, "sqrt") is None  # one source: every scheme weighs alike

    def sampler(records, weighting):
        args = SCConfig(output_dir=str(tmp_path / "run"), backbone_name_or_path=backbones["bert"],
                        candidate_llms=["A", "B"], max_length=64, source_weighting=weighting, seed=3, use_cpu=True,
                        eval_strategy="no", load_best_model_at_end=False)
        return SCTrainer(args, train_dataset=records)._get_train_sampler()

    mixed = RECORDS + [{**RECORDS[0], "prompt_id": "3", "source": "T"}]
    weighted = sampler(mixed, "sqrt")
    assert isinstance(weighted, torch.utils.data.WeightedRandomSampler)
    assert weighted.weights.tolist() == pytest.approx([2 ** -0.5, 2 ** -0.5, 1.0]) and weighted.replacement
    assert list(weighted) == list(sampler(mixed, "sqrt"))  # seeded
    for records, weighting in ((RECORDS, "sqrt"), (mixed, "none")):  # one source, or no weighting: the Trainer's
        assert not isinstance(sampler(records, weighting), torch.utils.data.WeightedRandomSampler)
