"""Routers and the embedding cache on tiny hand-made records, embeddings and random-weight models."""
from __future__ import annotations

import math

import numpy as np
import pytest

import model.embeddings as embeddings
from routers import (FixedRouter, HardClusterRouter, KNNRouter, OracleRouter, RandomRouter, RewardRouter,
                     SoftClusterRouter, TaskRouter, build_router, choose)
from data.scaling import scale_scores_by_source
from rewards.reward_model import render_conversation
from utils.io import DataError


def record(prompt_id, prompt, scores, source="GSM8k"):
    return {"prompt_id": prompt_id, "prompt": prompt, "source": source,
            "responses": [f"answer {i} to {prompt}" for i in range(len(scores))], "scores": list(scores),
            "best_model_idx": int(np.argmax(scores))}


def stub_embedder(vectors: dict[str, list[float]]):
    """An embedder that looks each text up in ``vectors`` (and records what it was asked)."""
    def embedder(texts):
        embedder.calls.append(list(texts))
        return np.array([vectors[t] for t in texts], dtype=np.float64)
    embedder.calls = []
    return embedder


# ------------------------------------------------------------------------------------------------
# base helpers
# ------------------------------------------------------------------------------------------------

def test_choose_takes_the_lowest_index_on_ties():
    assert choose(np.array([[0.2, 0.9, 0.9], [1.0, 1.0, 0.0], [0.0, 0.0, 0.1]])).tolist() == [1, 0, 2]


def test_scale_scores_by_source_min_max_per_source():
    examples = [record("1", "a", [2.0, 10.0], "MT-Bench"), record("2", "b", [6.0, 4.0], "MT-Bench"),
                record("3", "c", [0.0, 1.0], "GSM8k"), record("4", "d", [1.0, 1.0], "GSM8k"),
                record("5", "e", [0.5, 0.5], "Flat")]
    expected = [[0.0, 1.0], [0.5, 0.25],  # MT-Bench: (s - 2) / 8
                [0.0, 1.0], [1.0, 1.0],   # GSM8k already spans [0, 1]
                [0.0, 0.0]]               # a constant source maps to 0
    np.testing.assert_allclose(scale_scores_by_source(examples), expected)


def test_normalize_refuses_inconsistent_candidate_counts():
    with pytest.raises(DataError, match="'2'.*3 scores"):
        scale_scores_by_source([record("1", "a", [0, 1]), record("2", "b", [0, 1, 1])])


def test_build_router_by_name_and_clear_errors():
    assert isinstance(build_router("fixed", target_index=3), FixedRouter)
    assert build_router("knn", n_neighbors=7).n_neighbors == 7
    with pytest.raises(ValueError, match="Unknown router_type 'nearest'.*knn"):
        build_router("nearest")
    with pytest.raises(ValueError, match="does not take n_neighbours; it takes: n_neighbors"):
        build_router("knn", n_neighbours=3)


def test_learns_from_data_flags():
    assert not OracleRouter.learns_from_data and not FixedRouter.learns_from_data
    assert not RandomRouter.learns_from_data and not RewardRouter.learns_from_data
    assert KNNRouter.learns_from_data and HardClusterRouter.learns_from_data
    assert SoftClusterRouter.learns_from_data


# ------------------------------------------------------------------------------------------------
# oracle, fixed, random
# ------------------------------------------------------------------------------------------------

def test_oracle_returns_the_true_scores_so_it_picks_the_best():
    scores = [[0.0, 1.0, 1.0], [7.5, 3.0, 9.0]]
    router_scores = OracleRouter().route(["p", "q"], scores=scores)
    np.testing.assert_array_equal(router_scores, scores)
    assert choose(router_scores).tolist() == [1, 2]
    with pytest.raises(ValueError, match="pass scores"):
        OracleRouter().route(["p"])


def test_fixed_routes_every_query_to_its_target():
    router_scores = FixedRouter(target_index=2).route(["p", "q"], responses=[["a", "b", "c"]] * 2)
    np.testing.assert_array_equal(router_scores, [[0, 0, 1], [0, 0, 1]])
    assert FixedRouter(target_index=1, n_candidates=4).route(["p"]).tolist() == [[0, 1, 0, 0]]
    with pytest.raises(ValueError, match="target_index=5 is out of range for 3 candidates"):
        FixedRouter(target_index=5).route(["p"], scores=[[1, 2, 3]])
    with pytest.raises(ValueError, match="cannot tell the number of candidates"):
        FixedRouter().route(["p"])


def test_random_is_reproducible_order_independent_and_roughly_uniform():
    prompts = [f"query {i}" for i in range(3000)]
    first = RandomRouter(seed=1, n_candidates=5).route(prompts)
    again = RandomRouter(seed=1, n_candidates=5).route(prompts)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(RandomRouter(seed=1, n_candidates=5).route(prompts[::-1]), first[::-1])
    other_seed = choose(RandomRouter(seed=2, n_candidates=5).route(prompts))
    assert (other_seed != choose(first)).mean() > 0.7  # independent draws differ 80% of the time
    counts = np.bincount(choose(first), minlength=5)
    assert counts.sum() == 3000 and counts.min() > 500 and counts.max() < 700  # 600 +- 4.5 sd


# ------------------------------------------------------------------------------------------------
# embedding routers with injected embeddings
# ------------------------------------------------------------------------------------------------

# two topics: "a*" prompts point along x (candidate 0 is best), "b*" along y (candidate 2 is best)
TRAIN = [record("a1", "a1", [1.0, 0.0, 0.0]), record("a2", "a2", [1.0, 1.0, 0.0]),
         record("b1", "b1", [0.0, 0.0, 1.0]), record("b2", "b2", [0.0, 1.0, 1.0]),
         record("m1", "m1", [2.0, 10.0, 6.0], source="MT-Bench"), record("m2", "m2", [2.0, 4.0, 2.0], "MT-Bench")]
VECTORS = {"a1": [1.0, 0.0, 0.0], "a2": [0.8, 0.6, 0.0], "b1": [0.0, 1.0, 0.0], "b2": [0.0, 0.8, 0.6],
           "m1": [0.0, 0.0, 1.0], "m2": [0.0, 0.0, 2.0],  # not unit norm: the router normalises
           "query a": [0.9, 0.1, 0.0], "query b": [0.1, 0.9, 0.0], "query m": [0.0, 0.1, 1.0]}


def test_knn_averages_the_normalised_scores_of_the_nearest_training_prompts():
    router = KNNRouter(n_neighbors=2, embedder=stub_embedder(VECTORS)).fit(TRAIN)
    router_scores = router.route(["query a", "query b", "query m"])
    # query a's neighbours are a1, a2; query b's are b1, b2; query m's are m1, m2 (MT-Bench scores
    # normalised by (s - 2) / 8: m1 -> [0, 1, 0.5], m2 -> [0, 0.25, 0])
    np.testing.assert_allclose(router_scores, [[1.0, 0.5, 0.0], [0.0, 0.5, 1.0], [0.0, 0.625, 0.25]])
    assert choose(router_scores).tolist() == [0, 2, 1]


def test_knn_similarity_weighting():
    router = KNNRouter(n_neighbors=2, weighted=True, embedder=stub_embedder(VECTORS)).fit(TRAIN)
    # query b (unit: [0.1, 0.9] / |.|): cosine to b1 = 0.9/n, to b2 = 0.72/n -> weights 0.9/1.62, 0.72/1.62
    w_b1, w_b2 = 0.9 / 1.62, 0.72 / 1.62
    np.testing.assert_allclose(router.route(["query b"]), [[0.0, w_b2, 1.0]])
    assert w_b1 + w_b2 == pytest.approx(1.0)


def test_knn_must_be_fitted_and_caps_neighbours_at_the_pool_size():
    with pytest.raises(RuntimeError, match="call fit"):
        KNNRouter(embedder=stub_embedder(VECTORS)).route(["query a"])
    router = KNNRouter(n_neighbors=50, embedder=stub_embedder(VECTORS)).fit(TRAIN[:2])
    np.testing.assert_allclose(router.route(["query b"]), [[1.0, 0.5, 0.0]])


CLUSTER_VECTORS = {"a1": [1.0, 0.0], "a2": [1.0, 0.0], "b1": [0.0, 1.0], "b2": [0.0, 1.0],
                   "query a": [1.0, 0.0], "query b": [0.1, 0.9]}


def test_hard_cluster_uses_the_mean_scores_of_the_nearest_cluster():
    router = HardClusterRouter(n_clusters=2, embedder=stub_embedder(CLUSTER_VECTORS)).fit(TRAIN[:4])
    np.testing.assert_allclose(router.route(["query a", "query b"]), [[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])
    with pytest.raises(ValueError, match="n_clusters=5 exceeds the 4 training examples"):
        HardClusterRouter(n_clusters=5, embedder=stub_embedder(CLUSTER_VECTORS)).fit(TRAIN[:4])


def test_soft_cluster_mixes_cluster_means_by_softmax_of_negative_distance():
    router = SoftClusterRouter(n_clusters=2, temperature=0.5,
                               embedder=stub_embedder(CLUSTER_VECTORS)).fit(TRAIN[:4])
    # query a sits on centroid (1, 0); centroid (0, 1) is sqrt(2) away
    far = math.exp(-math.sqrt(2) / 0.5)
    w_a, w_b = 1 / (1 + far), far / (1 + far)
    np.testing.assert_allclose(router.route(["query a"]), [[w_a, 0.5, w_b]])


# ------------------------------------------------------------------------------------------------
# embeddings (a tiny random BERT with the packaged MiniLM tokenizer)
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Folders of a tiny random BertModel and a tiny BertForSequenceClassification (num_labels=1)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    from model.backbones import resolve_backbone

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))
    except ModuleNotFoundError as e:
        pytest.skip(str(e))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128, num_labels=1)
    root = tmp_path_factory.mktemp("tiny_models")
    torch.manual_seed(0)
    for name, model_class in (("encoder", BertModel), ("reward", BertForSequenceClassification)):
        model_class(config).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    templated = root / "reward_with_template"
    BertForSequenceClassification(config).save_pretrained(templated)
    tokenizer.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    tokenizer.save_pretrained(templated)
    return {"encoder": str(root / "encoder"), "reward": str(root / "reward"), "templated": str(templated)}


def manual_embeddings(model_dir, texts, max_length):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    rows = []
    with torch.no_grad():
        for text in texts:  # one at a time: no padding involved
            batch = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
            mean = model(**batch).last_hidden_state[0].mean(dim=0).numpy()
            rows.append(mean / np.linalg.norm(mean))
    return np.array(rows)


def test_embed_mean_pools_normalises_and_caches(tiny_models, tmp_path, monkeypatch):
    texts = ["short", "a somewhat longer sentence about routing queries", "short", "mid length text"]
    vectors = embeddings.embed(texts, tiny_models["encoder"], batch_size=2, max_length=8, cache_dir=tmp_path)
    assert vectors.shape == (4, 16) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, manual_embeddings(tiny_models["encoder"], texts, 8), atol=1e-5)
    cache_files = list(tmp_path.glob("*.npz"))
    assert len(cache_files) == 1 and not list(tmp_path.glob(".*tmp*"))

    encoded = []
    real_encode = embeddings._encode
    monkeypatch.setattr(embeddings, "_encode", lambda t, *a: encoded.append(list(t)) or real_encode(t, *a))
    again = embeddings.embed(texts[::-1] + ["new text"], tiny_models["encoder"], batch_size=2, max_length=8,
                             cache_dir=tmp_path)
    assert encoded == [["new text"]]  # only the missing text is computed
    np.testing.assert_array_equal(again[:4], vectors[::-1])
    embeddings.embed(["new text"], tiny_models["encoder"], max_length=8, cache_dir=tmp_path)
    assert encoded == [["new text"]]  # now a pure cache hit
    # another truncation length is another cache
    embeddings.embed(["short"], tiny_models["encoder"], max_length=4, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_knn_with_the_default_embedder_on_a_tiny_model(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKAHEAD_CACHE", str(tmp_path))
    router = KNNRouter(n_neighbors=1, embedding_model=tiny_models["encoder"]).fit(TRAIN[:4])
    # each training prompt's own nearest neighbour is itself
    np.testing.assert_allclose(router.route(["a1", "b2"]), scale_scores_by_source(TRAIN[:4])[[0, 3]])
    assert list((tmp_path / "embeddings").glob("*.npz"))


# ------------------------------------------------------------------------------------------------
# reward router (tiny random sequence-classification models)
# ------------------------------------------------------------------------------------------------

def direct_rewards(model_dir, texts, add_special_tokens):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return np.array([model(**tokenizer(t, add_special_tokens=add_special_tokens,
                                           return_tensors="pt")).logits[0, 0].item() for t in texts])


PROMPTS = ["What is 2 + 2?", "Name a colour."]
RESPONSES = [["4", "It is four, since two plus two makes four.", "5"], ["Blue.", "red", "A colour: green"]]


@pytest.mark.parametrize("which, add_special_tokens, rendered_first",
                         [("reward", True, "What is 2 + 2?\n\n4"),
                          ("templated", False, "[user] What is 2 + 2?\n[assistant] 4\n")])
def test_reward_router_scores_each_response_with_the_model(tiny_models, which, add_special_tokens,
                                                           rendered_first):
    router = RewardRouter(reward_model=tiny_models[which], batch_size=4)
    router_scores = router.route(PROMPTS, responses=RESPONSES)
    assert router_scores.shape == (2, 3)
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tiny_models[which])
    texts = [render_conversation(tokenizer, p, r) for p, per_query in zip(PROMPTS, RESPONSES) for r in per_query]
    assert texts[0] == rendered_first
    expected = direct_rewards(tiny_models[which], texts, add_special_tokens).reshape(2, 3)
    np.testing.assert_allclose(router_scores, expected, atol=1e-4)
    assert choose(router_scores).tolist() == expected.argmax(axis=1).tolist()
    with pytest.raises(ValueError, match="pass responses"):
        router.route(PROMPTS)


def test_task_router_routes_to_the_best_candidate_of_the_predicted_source():
    # two sources: "code" prompts along x (candidate 0 best on average), "chat" along y (candidate 2 best)
    train = [record("c1", "c1", [1.0, 0.5, 0.0], source="code"), record("c2", "c2", [0.6, 1.0, 0.0], "code"),
             record("h1", "h1", [0.0, 0.0, 1.0], source="chat"), record("h2", "h2", [0.0, 1.0, 0.8], "chat")]
    vectors = {"c1": [1.0, 0.0], "c2": [0.9, 0.1], "h1": [0.0, 1.0], "h2": [0.2, 0.8],
               "query code": [0.8, 0.3], "query chat": [0.3, 0.7]}
    router = TaskRouter(embedder=stub_embedder(vectors)).fit(train)
    assert router.sources == ["chat", "code"]
    assert [router.sources[i] for i in router.predict_sources(["query code", "query chat"])] == ["code", "chat"]
    # each source's scores min-max normalised over that source (both span 0..1 here), then averaged
    np.testing.assert_allclose(router.route(["query code", "query chat"]), [[0.8, 0.75, 0.0], [0.0, 0.5, 0.9]])
    assert choose(router.route(["query code", "query chat"])).tolist() == [0, 2]
    with pytest.raises(RuntimeError, match="call fit"):
        TaskRouter(embedder=stub_embedder(vectors)).route(["query code"])
