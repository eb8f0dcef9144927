"""PretrainedRouter.from_pretrained: every stage loads from its folder and routes as training routed."""
import json

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, LlamaConfig, LlamaForCausalLM

import candidates
import train
from model import load_router_model
from model.backbones import resolve_backbone
from routers import pretrained
from routers.pretrained import PretrainedRouter
from routers import policy as routing_policy
from trainers import STAGES, save_untrained_router
from utils.io import DataError
from synthetic import CANDIDATES, TINY, WORDS, write_synthetic_data

def save_tiny_bert(folder) -> str:
    """A 2-layer BERT (hidden 16, random weights) with MiniLM's tokenizer, saved in ``folder``."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=128, **TINY)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    root = tmp_path_factory.mktemp("backbones")
    smol_tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:smollm2-135m-instruct"))
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(smol_tokenizer), num_key_value_heads=1, max_position_embeddings=256,
                                 tie_word_embeddings=True, **TINY)).save_pretrained(root / "llama")
    smol_tokenizer.save_pretrained(root / "llama")
    return {"bert": save_tiny_bert(root / "bert"), "llama": str(root / "llama")}


PROMPTS = ["sort a list of numbers", "parse this string and count its words, then print the tree", "hi"]
RESPONSES = [["A says sort", "B says sorted(x)"], ["A parses", "B counts words " * 5], ["hello", "hi there"]]


@pytest.mark.parametrize("stage, backbone, options", [
    ("mask_concat", "bert", {"mask_length": 3}),
    ("sc", "bert", {}),
    ("causal", "llama", {"max_prompt_length": 8, "loss_type": "CE"}),
    ("gt_responses", "llama", {"max_prompt_length": 8, "loss_type": "MSE"}),
])
def test_every_stage_routes_like_its_trainer(backbones, tmp_path, stage, backbone, options):
    folder = save_untrained_router(tmp_path / stage, stage, backbones[backbone], CANDIDATES, max_length=48,
                                   **options)
    from transformers import configuration_utils
    from transformers.testing_utils import CaptureLogger

    with CaptureLogger(configuration_utils.logger) as log:
        router = PretrainedRouter.from_pretrained(folder, batch_size=2, precision="fp32")  # 3 prompts: two batches
    assert "instantiate a model of type" not in log.out  # the tokenizer is not loaded through AutoConfig
    assert (router.stage, router.candidates) == (stage, CANDIDATES)
    assert router.score_kind == ("softmax" if options.get("loss_type") == "CE" else "sigmoid")  # BCE, MSE: sigmoid
    scores = router.route(PROMPTS, responses=RESPONSES)

    # The trainer's own routing path (what train.py writes as test predictions) on the same folder.
    model, tokenizer = load_router_model(folder)
    config_class, trainer_class = STAGES[stage]
    args = config_class(output_dir=str(tmp_path / "trainer"), report_to="none", per_device_eval_batch_size=8,
                        eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
    expected = trainer_class(args, model=model, processing_class=tokenizer).route(
        [{"prompt": p, "responses": r} for p, r in zip(PROMPTS, RESPONSES)])
    assert scores.shape == (3, 2)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    if stage == "gt_responses":
        with pytest.raises(ValueError, match="pass responses"):
            router.route(PROMPTS)


def test_cross_fit_run_folds_load_and_reproduce_their_predictions(backbones, tmp_path):
    data_dir = write_synthetic_data(tmp_path / "data")
    out = tmp_path / "run"
    train.main(["sc", "--backbone_name_or_path", backbones["bert"], "--data_dir", str(data_dir), "--train_datasets",
                "Synth", "--candidate_llms", *CANDIDATES, "--test_datasets", "GSM8k", "--output_dir", str(out),
                "--cross_fit_folds", "2", "--max_steps", "1", "--eval_steps", "1", "--save_steps", "1",
                "--max_length", "10", "--per_device_train_batch_size", "4", "--seed", "0",
                "--disable_tqdm", "True"])
    with pytest.raises(DataError, match=r"cross-fit run.*fold_0"):
        PretrainedRouter.from_pretrained(out)
    prompts = {str(n): f"how many {WORDS[n]} are {n}" for n in range(8)}
    for fold in range(2):
        rows = json.loads((out / f"fold_{fold}" / "test_predictions" / "GSM8k.json").read_text())
        router = PretrainedRouter.from_pretrained(out / f"fold_{fold}", precision="fp32")
        assert router.score_kind == "sigmoid"  # sc trains with BCE, read from the run's run_args.json
        scores = router.route([prompts[row["prompt_id"]] for row in rows])
        np.testing.assert_allclose(scores, [row["router_scores"] for row in rows], atol=1e-5)
        assert router.decide([prompts[row["prompt_id"]] for row in rows]).choices.tolist() == \
            [row["choice"] for row in rows]


def test_decide_applies_the_saved_policy(backbones, tmp_path):
    folder = save_untrained_router(tmp_path / "r", "sc", backbones["bert"], CANDIDATES, max_length=10)
    quality_only = PretrainedRouter.from_pretrained(folder).decide(PROMPTS)
    assert quality_only.choices.tolist() == quality_only.scores.argmax(1).tolist()
    np.testing.assert_allclose(quality_only.quality, 1 / (1 + np.exp(-quality_only.scores)))
    assert (quality_only.costs == 0).all()

    # B costs 10x more per output token; at lambda = 1000 the quality gap (< 1) never pays for it.
    prices = [candidates.Price(1.0, 1.0), candidates.Price(1.0, 10.0)]
    policy = routing_policy.RoutingPolicy(CANDIDATES, willingness_to_pay=1000.0, prices=prices,
                                          typical_output_tokens=[100, 100])
    (folder / routing_policy.POLICY_FILE).write_text(json.dumps(policy.to_json()))
    router = PretrainedRouter.from_pretrained(folder)
    decision = router.decide(PROMPTS)
    assert decision.chosen() == ["A", "A", "A"]
    input_tokens = np.array([len(p) / 4 for p in PROMPTS])
    np.testing.assert_allclose(decision.costs[:, 0], (input_tokens + 100) / 1000)
    np.testing.assert_allclose(decision.costs[:, 1], (input_tokens + 1000) / 1000)
    # An explicit policy wins over the saved one.
    assert router.decide(PROMPTS, policy=routing_policy.RoutingPolicy(CANDIDATES)).choices.tolist() == \
        quality_only.choices.tolist()


def test_a_folder_without_a_router_is_refused(tmp_path):
    with pytest.raises(DataError, match="not a trained router folder"):
        PretrainedRouter.from_pretrained(tmp_path)


def test_precision_auto_is_bf16_only_where_the_cpu_computes_it(monkeypatch):
    for avx512_bf16, amx, expected in ((True, False, "bf16"), (False, True, "bf16"), (False, False, "fp32")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
        assert pretrained.resolve_precision("auto", "cpu") == expected
    assert pretrained.resolve_precision("auto", "cuda") == "fp32"  # measured on CPU only
    assert [pretrained.resolve_precision(p, "cpu") for p in ("fp32", "bf16")] == ["fp32", "bf16"]
    with pytest.raises(ValueError, match="Unknown precision 'int8'"):
        pretrained.resolve_precision("int8", "cpu")


@pytest.mark.parametrize("stage, backbone, options", [("mask_concat", "bert", {"mask_length": 3, "max_length": 24}),
                                                      ("sc", "bert", {"max_length": 24}),
                                                      ("causal", "llama", {"max_length": 64})])
def test_bf16_routing_stays_close_to_fp32(backbones, tmp_path, stage, backbone, options):
    folder = save_untrained_router(tmp_path / stage, stage, backbones[backbone], CANDIDATES, **options)
    fp32 = PretrainedRouter.from_pretrained(folder, precision="fp32")
    bf16 = PretrainedRouter.from_pretrained(folder, precision="bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    expected, scores = fp32.route(PROMPTS), bf16.route(PROMPTS)
    assert scores.dtype == np.float32 and not np.array_equal(scores, expected)  # it really ran in bf16
    # bf16 keeps 8 significant bits: each of the few layers adds a relative error of about 2^-8
    np.testing.assert_allclose(scores, expected, atol=0.05 * np.abs(expected).max())


def test_prompts_are_cut_to_the_router_length_before_tokenisation(backbones, tmp_path):
    # sc on a BERT tokenizer: max_length 10 = [CLS] + 8 prompt tokens + [SEP]
    folder = save_untrained_router(tmp_path / "sc", "sc", backbones["bert"], CANDIDATES, max_length=10)
    router = PretrainedRouter.from_pretrained(folder, precision="fp32")
    assert router.prompt_chars == 8 * pretrained.MAX_CHARS_PER_TOKEN
    long = "sort the list of numbers then count the words " * 10_000
    seen = []
    tokenize = router.collator.tokenize
    router.collator.tokenize = lambda texts, *args, **kwargs: seen.extend(map(len, texts)) or tokenize(
        texts, *args, **kwargs)
    cut = router.route([long])
    assert seen == [256]
    # The same scores as routing the whole text (what the router reads is its first 8 tokens either way) ...
    router.prompt_chars = len(long)
    np.testing.assert_array_equal(cut, router.route([long]))
    np.testing.assert_array_equal(cut, router.route(["sort the list of numbers then count the"]))  # 8 tokens
    assert seen[-2:] == [len(long), 39]


def test_the_task_prior_reads_the_prompt_as_training_gave_it(backbones, tmp_path):
    """sc with max_length 10 reads 8 tokens, so PretrainedRouter cuts each prompt to 8 x 32 = 256 characters for
    the router. The prior's MiniLM embedding reads up to 256 tokens, and in training (train.route_records) it
    embedded the whole prompt: routing must give it as much, or a long prompt is embedded (and assigned a source)
    otherwise than in training."""
    from model.embeddings import embed
    from routers.task_prior import TaskPrior

    folder = save_untrained_router(tmp_path / "sc", "sc", backbones["bert"], CANDIDATES, max_length=10)
    records = [{"prompt": "sort a list", "source": "code", "scores": [1.0, 0.0]},
               {"prompt": "write a poem about the sea", "source": "poems", "scores": [0.0, 1.0]}]
    prior = TaskPrior().fit(records, 0.8)
    prior.weight = 0.5
    prior.save(folder)
    router = PretrainedRouter.from_pretrained(folder, precision="fp32")
    seen = []
    router.task_prior.task_router.embedder = lambda texts: seen.extend(texts) or embed(texts, cache=False)
    long = "sort a list of numbers " * 12 + "then write a poem about the sea and its waves " * 30  # ~1,650 chars
    assert router.prompt_chars == 256 < len(long)
    router.route([long])
    np.testing.assert_allclose(embed(seen, cache=False), embed([long], cache=False), atol=1e-6)


def test_a_task_prior_beside_a_router_of_another_score_kind_is_refused(backbones, tmp_path):
    """The blend returns logit(p), read back with a sigmoid; a CE router's scores are read with a softmax
    (routers.policy), which would turn the blended chances into something else."""
    from routers.task_prior import TaskPrior

    folder = save_untrained_router(tmp_path / "ce", "sc", backbones["bert"], CANDIDATES, max_length=10,
                                   loss_type="CE")
    records = [{"prompt": "sort a list", "source": "code", "scores": [1.0, 0.0]},
               {"prompt": "write a poem", "source": "poems", "scores": [0.0, 1.0]}]
    TaskPrior(embedder=lambda texts: np.eye(2)[[0 if "sort" in t else 1 for t in texts]]).fit(records, 0.8).save(folder)
    with pytest.raises(DataError, match=r"task_prior.json: .* read as softmax .*delete the file, or retrain"):
        PretrainedRouter.from_pretrained(folder)
