"""The quality harness (bench/quality.py): its bootstrap on cases with known answers, and a whole study on a tiny
synthetic slice (rows, intervals, resume)."""
import itertools
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from data.cross_fit import fold_of
from model.backbones import resolve_backbone
from synthetic import CANDIDATES, TINY, write_synthetic_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import quality  # noqa: E402


def gap(utility, choice, idx):
    """mean gap_closed of one benchmark on one resample, from the definition."""
    sample = utility[idx]
    best_fixed = sample.mean(axis=0).max()
    oracle = sample.max(axis=1).mean()
    routed = utility[np.arange(len(utility)), choice][idx].mean()
    return (routed - best_fixed) / (oracle - best_fixed)


def test_bootstrap_of_a_router_that_is_the_oracle_against_one_that_is_best_fixed():
    # candidate 0 right on all but queries 0-3, candidate 1 right exactly there: oracle 1, best fixed candidate 0
    utility = np.array([[0.0, 1.0]] * 4 + [[1.0, 0.0]] * 16)
    perfect, fixed = utility.argmax(axis=1), np.zeros(20, dtype=int)
    indices = quality.bootstrap_indices({"B": 20}, 300, seed=1)
    draws_perfect = quality.gap_closed_draws({"B": utility}, {"B": [perfect]}, indices)
    draws_fixed = quality.gap_closed_draws({"B": utility}, {"B": [fixed]}, indices)
    valid = ~np.isnan(draws_perfect)  # a resample without queries 0-3 has oracle == best fixed
    assert valid.mean() > 0.9
    assert np.allclose(draws_perfect[valid], 1.0) and np.allclose(draws_fixed[valid], 0.0)
    result = quality.interval(draws_perfect[valid] - draws_fixed[valid])
    assert result == {"mean": pytest.approx(1.0), "low": pytest.approx(1.0), "high": pytest.approx(1.0)}
    same = quality.gap_closed_draws({"B": utility}, {"B": [perfect]}, indices)
    assert quality.interval((same - draws_perfect)[valid]) == {"mean": 0.0, "low": 0.0, "high": 0.0}


def test_bootstrap_matches_the_exact_bootstrap_distribution_of_a_small_case():
    """With 4 queries the bootstrap distribution can be enumerated: all 4^4 resamples, equally likely. The seeded
    Monte Carlo bootstrap must reproduce its mean and percentiles."""
    utility = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    router = np.array([0, 1, 1, 0])  # right on 3 of 4
    exact = []
    for idx in itertools.product(range(4), repeat=4):
        idx = np.array(idx)
        sample = utility[idx]
        if sample.max(axis=1).mean() > sample.mean(axis=0).max():
            exact.append(gap(utility, router, idx))
    exact = np.array(exact)
    indices = quality.bootstrap_indices({"B": 4}, 40000, seed=0)
    draws = quality.gap_closed_draws({"B": utility}, {"B": [router]}, indices)
    draws = draws[~np.isnan(draws)]
    assert draws.mean() == pytest.approx(exact.mean(), abs=0.01)
    for q in (2.5, 50, 97.5):
        assert np.percentile(draws, q) == pytest.approx(np.percentile(exact, q), abs=0.02)


def test_gap_closed_averages_seeds_and_benchmarks():
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # best fixed 2/3 (cand 0), oracle 1
    b = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    indices = {"A": np.array([[0, 1, 2]]), "B": np.array([[0, 1, 2]])}  # the full sample
    draws = quality.gap_closed_draws({"A": a, "B": b}, {"A": [np.array([0, 1, 0]), np.array([0, 0, 0])],
                                                         "B": [np.array([1, 1, 0]), np.array([1, 1, 1])]}, indices)
    # A: seed 1 perfect (1), seed 2 best fixed (0) -> 0.5; B: seed 1 perfect (1), seed 2 = 2/3 -> (2/3-2/3)/(1/3)=0
    assert draws.tolist() == pytest.approx([(0.5 + 0.5) / 2])


def test_other_fold_best_fixed_picks_each_folds_candidate_on_the_other_fold():
    prompts = [f"q{i}" for i in range(40)]
    folds = [fold_of(prompt, 2) for prompt in prompts]
    assert 0 < sum(folds) < len(folds)
    # candidate 0 is right on fold 1's queries, candidate 1 on fold 0's, candidate 2 never: the other fold's best is
    # the wrong one for every query (hindsight best fixed would score half of them right)
    records = [{"prompt_id": prompt, "prompt": prompt, "scores": [float(fold == 1), float(fold == 0), 0.0]}
               for prompt, fold in zip(prompts, folds)]
    choices = quality.other_fold_best_fixed({"B": records}, 2)["B"]
    assert choices.tolist() == [0 if fold == 0 else 1 for fold in folds]
    assert all(records[i]["scores"][c] == 0.0 for i, c in enumerate(choices))
    # three folds of 10 queries each: fold 0 right with candidate 0, fold 1 with 1, fold 2 partly with 1 (0.6) and
    # fully with 2; fold 0's queries see folds 1+2 (means 0, 0.8, 0.5 -> 1), fold 1's see 0+2 (0.5, 0.3, 0.5: a tie,
    # to the lower index -> 0), fold 2's see 0+1 (0.5, 0.5, 0 -> 0)
    by_fold = {f: [p for p in (f"p{i}" for i in range(200)) if fold_of(p, 3) == f][:10] for f in range(3)}
    rows = {0: [1.0, 0.0, 0.0], 1: [0.0, 1.0, 0.0], 2: [0.0, 0.6, 1.0]}
    records = [{"prompt_id": p, "prompt": p, "scores": rows[f]} for f in range(3) for p in by_fold[f]]
    choices = quality.other_fold_best_fixed({"B": records}, 3)["B"]
    assert choices.tolist() == [1] * 10 + [0] * 10 + [0] * 10


def test_seed_agreement():
    first = {"A": np.array([0, 1, 2, 3]), "B": np.array([1])}
    second = {"A": np.array([0, 1, 0, 0]), "B": np.array([1])}
    assert quality.seed_agreement([first, second]) == pytest.approx(3 / 5)
    assert quality.seed_agreement([first]) is None


def test_task_prior_blend_chooses_each_folds_weight_on_its_own_hold_out():
    import posthoc

    # two folds: on fold 0's hold-out the router (estimates prefer 0) is right and the prior (prefers 1) wrong, so
    # candidate 0 wins from w > 5/9; on fold 1's hold-out the prior is right and the router wrong, so w = 0
    router_right = {"held": [{"source": "A", "scores": [1.0, 0.0]}] * 2, "val_prior": np.array([[0.0, 1.0]] * 2),
                    "val_estimates": np.array([[0.9, 0.1]] * 2)}
    prior_right = {**router_right, "held": [{"source": "A", "scores": [0.0, 1.0]}] * 2}
    test = (["q0", "q1"], np.array([[0.0, 1.0], [0.0, 1.0]]), np.array([[0.9, 0.1], [0.2, 0.3]]))
    folds = [{**router_right, "test": {"B": test}}, {**prior_right, "test": {"B": (["q2"], *(a[:1] for a in test[1:]))}}]
    study = type("Study", (), {"test_sets": ["B"], "benchmarks": {"B": [{"prompt_id": p} for p in ("q1", "q2", "q0")]}})
    runs, weights, curves = posthoc.task_prior_blend(study, [folds])
    assert [curves[0][w] for w in posthoc.BLEND_WEIGHTS] == [0.0] * 6 + [1.0] * 5
    assert [curves[1][w] for w in posthoc.BLEND_WEIGHTS] == [1.0] * 6 + [0.0] * 5
    assert weights == [0.6, 0.0]  # each fold its own, the smallest of its tied best
    # in the benchmark's record order: q1 (fold 0, w 0.6: the prior wins), q2 (fold 1, w 0: the prior), q0 (fold 0,
    # w 0.6: the router wins); q2 has q0's scores, so with fold 0's weight it would go to 0
    assert runs[0]["B"].tolist() == [1, 1, 0]
    assert posthoc.task_prior_blend(study, [folds], [1.0, 1.0])[0][0]["B"].tolist() == [1, 0, 0]  # fixed weights
    # the seeds' hold-outs are averaged per fold: a second seed where the router is wrong on fold 0 ties w 0.6 with
    # w 0 (0.5 each), and the smallest wins
    wrong = [{**prior_right, "test": {"B": test}}, folds[1]]
    assert posthoc.task_prior_blend(study, [folds, wrong])[1] == [0.0, 0.0]



def test_nested_blend_gain_chooses_on_one_half_and_scores_the_other():
    """Candidate 0 is always best. "prior right" queries: prior (1, 0), router (.1, .9); "router right": prior
    (0, 1), router (.9, .1). All prior-right: w 0 wins every half, +1 over the router alone. All router-right: the
    router alone is right already, 0. First half prior-right, second router-right: w 0 (chosen on the first)
    scores 0 against the router's 1 on the second (-1); w 0.6 (the smallest that routes as the router, chosen on
    the second) is wrong on the first like the router alone (0.4 x 1 + 0.6 x .1 < 0.6 x .9): 0; mean -0.5."""
    import posthoc
    from data.cross_fit import hold_out_by_source

    def fold(kinds):
        prior = {"prior": [1.0, 0.0], "router": [0.0, 1.0]}
        router = {"prior": [0.1, 0.9], "router": [0.9, 0.1]}
        return {"held": held, "val_prior": np.array([prior[k] for k in kinds]),
                "val_estimates": np.array([router[k] for k in kinds])}

    held = [{"source": "A", "scores": [1.0, 0.0], "prompt_id": str(i)} for i in range(4)]
    assert posthoc.nested_blend_gain(fold(["prior"] * 4)) == pytest.approx(1.0)
    assert posthoc.nested_blend_gain(fold(["router"] * 4)) == pytest.approx(0.0)
    second = {id(record) for record in hold_out_by_source(held, 0.5, 0)[1]}
    assert len(second) == 2
    assert posthoc.nested_blend_gain(fold(["router" if id(r) in second else "prior" for r in held])) == pytest.approx(-0.5)


def test_paired_holdout_notes_pair_the_seed_folds_the_rows_share():
    """B - A over the shared (seed, fold)s (43's fold 1 is A's alone): +0.02, -0.01, +0.05: mean +0.02, standard
    error sqrt(((0)^2 + (-0.03)^2 + 0.03^2) / 2) / sqrt(3) = 0.03 / sqrt(3) = 0.0173; higher on 2 of 3."""
    import posthoc
    holdout = {"A": {(42, 0): 0.70, (42, 1): 0.71, (43, 0): 0.69, (43, 1): 0.72},
               "B": {(42, 0): 0.72, (42, 1): 0.70, (43, 0): 0.74}}
    (note,) = posthoc.paired_holdout_notes(holdout, "A")
    assert note == ("- B − A, hold-out reward paired over 3 seed-folds: +0.0200, -0.0100, +0.0500; mean +0.0200 "
                    "(standard error 0.0173), higher on 2 of 3.")
    assert "has no benchmark hold-out" in posthoc.paired_holdout_notes({"B": holdout["B"]}, "A")[0]


def test_a_row_trained_with_the_blend_is_not_blended_again(tmp_path):
    """Its test predictions are blended logits and PretrainedRouter blends its folds' validation routing through
    their task_prior.json: blending those with the prior again would count the prior twice (and choose a weight for
    that), so the row gets no blend parts and the reason."""
    import posthoc

    run_dir = tmp_path / "runs" / "classifier, task-prior blend" / "seed42"
    run_dir.mkdir(parents=True)
    (run_dir / "run_args.json").write_text(json.dumps({"task_prior_blend": True, "cross_fit_eval_fraction": 0.1,
                                                       "seed": 42, "bce_threshold": 0.8, "loss_type": "BCE",
                                                       "score_normalization": "min-max"}))
    study = type("Study", (), {"training_records": lambda self: [], "row_seeds": lambda self, name: [42],
                               "run_dir": lambda self, name, seed: run_dir, "folds": 2,
                               "test_sets": ["GSM8k"], "benchmarks": {"GSM8k": []}})()
    parts, why = posthoc.blend_parts(study, "classifier, task-prior blend", {}, tmp_path / "cache", "fp32")
    assert parts == [] and "--task_prior_blend" in why and "blended already" in why


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    root = tmp_path_factory.mktemp("bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("packaged:all-minilm-l6-v2"))
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64, **TINY)).save_pretrained(root)
    tokenizer.save_pretrained(root)
    return str(root)


def test_study_on_a_tiny_slice_writes_the_table_and_resumes(tmp_path, tiny_bert, monkeypatch, capsys):
    monkeypatch.setenv("LOOKAHEAD_CACHE", str(tmp_path / "cache"))
    data_dir = write_synthetic_data(tmp_path / "data")
    config = {"data_dir": str(data_dir), "train_datasets": ["Synth/responses"], "test_datasets": ["GSM8k"],
              "candidate_llms": CANDIDATES, "folds": 2, "seeds": [0, 1], "bootstrap_draws": 200,
              "baselines": {"task": {"embedding_model": tiny_bert}},
              "train_args": ["--backbone_name_or_path", tiny_bert, "--max_steps", "2", "--eval_steps", "1",
                             "--save_steps", "1", "--per_device_train_batch_size", "4",
                             "--gradient_accumulation_steps", "1", "--max_length", "16", "--learning_rate", "1e-3",
                             "--cross_fit_eval_fraction", "0.5"],
              "routers": {"lookahead": {"stage": "mask_concat", "args": ["--mask_length", "2"]}}}
    (tmp_path / "study.yaml").write_text(json.dumps(config))
    out = tmp_path / "study"
    quality.main(["--config", str(tmp_path / "study.yaml"), "--output_dir", str(out), "--jobs", "2"])
    report = (out / "quality.md").read_text()
    assert report in capsys.readouterr().out
    rows = [line.split(" | ")[0].lstrip("| ") for line in report.splitlines() if line.startswith("| ")][1:]
    assert rows == ["oracle", "best fixed (hindsight)", "best fixed (other fold)", "random (2 seeds)",
                    "task-aware (embedding_model=" +
                    tiny_bert + ")", "lookahead (2 seeds)"]
    result = json.loads((out / "quality.json").read_text())
    assert result["rows"]["oracle"]["stats"]["mean gap_closed"]["mean"] == pytest.approx(1.0)
    assert result["rows"]["best fixed (hindsight)"]["stats"]["mean gap_closed"]["mean"] == 0.0
    lookahead = result["rows"]["lookahead"]
    assert result["strongest_baseline"] in ("random", f"task-aware (embedding_model={tiny_bert})")
    for other in ("oracle", result["strongest_baseline"]):
        ci = lookahead["versus"][other]
        assert ci["low"] <= ci["mean"] <= ci["high"]
    assert lookahead["versus"]["oracle"]["high"] <= 0  # nothing beats the oracle
    assert 0.0 <= lookahead["seed_agreement"] <= 1.0
    per_seed = lookahead["per_seed_mean_gap_closed"]
    assert lookahead["stats"]["mean gap_closed"]["mean"] == pytest.approx(np.mean(per_seed))
    assert lookahead["stats"]["mean gap_closed"]["std"] == pytest.approx(np.std(per_seed, ddof=1))
    for seed in (0, 1):  # the merged predictions of each run are each fold's
        merged = json.loads((out / "runs" / "lookahead" / f"seed{seed}" / "test_predictions" / "GSM8k.json").read_text())
        assert len(merged) == 8

    # resume: nothing is retrained or recomputed, the table is the same
    logs = {path: path.stat().st_mtime_ns for path in (out / "runs").rglob("fold_*.log")}
    caches = {path: path.stat().st_mtime_ns for path in (out / "baselines").glob("*.json")}
    assert len(logs) == 4 and len(caches) == 3  # 2 seeds x 2 folds; random x 2 seeds, task
    quality.main(["--config", str(tmp_path / "study.yaml"), "--output_dir", str(out), "--jobs", "2"])
    assert {path: path.stat().st_mtime_ns for path in logs} == logs
    assert {path: path.stat().st_mtime_ns for path in caches} == caches
    again = (out / "quality.md").read_text()
    assert again.split("\n\n")[0] == report.split("\n\n")[0]

    # the post-hoc variants of the same runs: each fold re-routed with its kept and its last checkpoint; the seeds'
    # scores averaged; the task-prior blend with its weight chosen on the validation hold-out
    import posthoc

    posthoc.main(["--config", str(tmp_path / "study.yaml"), "--runs_dir", str(out), "--output_dir",
                            str(tmp_path / "ckpt"), "--precision", "fp32"])
    table = (tmp_path / "ckpt" / "posthoc.md").read_text()
    assert table in capsys.readouterr().out
    names = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines() if line.startswith("| ")][1:]
    chosen = [float(note.split("; chosen w = ")[1].rstrip(".")) for note in table.splitlines() if "chosen w" in note]
    assert len(chosen) == 2 and all(w in posthoc.BLEND_WEIGHTS for w in chosen)  # one weight per fold
    for fold in (0, 1):
        curve = table.split(f"fold {fold}: mean validation reward per weight w")[1].split("): ")[1].split("; ")[0]
        assert [float(pair.split(": ")[0]) for pair in curve.split(", ")] == list(posthoc.BLEND_WEIGHTS)
    alone = table.split("the router alone, mean validation reward on the benchmark hold-out")[1].split(": ")[1]
    curves = [table.split(f"fold {fold}: mean validation reward per weight w")[1].split("1.0: ")[1].split(";")[0]
              for fold in (0, 1)]
    assert alone.split("; mean")[0].split(", ") == curves  # the router alone is the blend's w = 1
    blend_name = f"lookahead, task-prior blend (w per fold {chosen[0]:.1f}, {chosen[1]:.1f}) (2 seeds)"
    assert names[1:] == ["lookahead, kept checkpoint (2 seeds)", "lookahead, last checkpoint (2 seeds)",
                         "lookahead, seed ensemble (1 router)", "lookahead, its task prior alone (w 0) (2 seeds)",
                         blend_name]
    assert names[0] in ("random", "task-aware")
    agreement = float(table.split("chose the study's candidate on ")[1].split("%")[0])
    assert agreement >= 90.0  # the kept checkpoint, routed again, makes the study's choices (up to near ties)
    routed = sorted((tmp_path / "ckpt").rglob("fold_*_*.json"))
    assert [p.name for p in routed] == [f"fold_{fold}_{which}_fp32.json" for fold in (0, 1)
                                        for which in ("kept", "last", "validation")] * 2  # keyed by --precision
    stamps = {p: p.stat().st_mtime_ns for p in routed}
    posthoc.main(["--config", str(tmp_path / "study.yaml"), "--runs_dir", str(out), "--output_dir",
                            str(tmp_path / "ckpt"), "--precision", "fp32"])
    assert {p: p.stat().st_mtime_ns for p in routed} == stamps  # cached folds are not routed again
    assert (tmp_path / "ckpt" / "posthoc.md").read_text() == table
    posthoc.main(["--config", str(tmp_path / "study.yaml"), "--runs_dir", str(out), "--output_dir",
                  str(tmp_path / "blend"), "--precision", "fp32", "--variants", "blend"])  # the blend alone
    only = (tmp_path / "blend" / "posthoc.md").read_text()
    assert [line.split(" | ")[0] for line in only.splitlines() if line.startswith("| lookahead")] == [
        "| lookahead, its task prior alone (w 0) (2 seeds)", f"| {blend_name}"]
    assert sorted(p.name for p in (tmp_path / "blend").rglob("fold_*.json")) == ["fold_0_validation_fp32.json"] * 2 + [
        "fold_1_validation_fp32.json"] * 2  # no fold routed again with its checkpoints
    assert only.splitlines()[4] == next(line for line in table.splitlines() if "task-prior blend" in line)
    posthoc.main(["--config", str(tmp_path / "study.yaml"), "--runs_dir", str(out), "--output_dir",
                  str(tmp_path / "blend"), "--precision", "fp32", "--variants", "holdout"])  # the note alone
    holdout = (tmp_path / "blend" / "posthoc.md").read_text()
    assert not any(line.startswith("| lookahead") for line in holdout.splitlines())
    note = holdout.split("the router alone, mean validation reward on the benchmark hold-out")[1].splitlines()[0]
    per_fold = [float(r) for r in note.split(": ")[1].split("; mean")[0].split(", ")]
    seed_folds = [[float(r) for r in seed.split(", ")] for seed in note.split("per fold: ")[-1].split(").")[0].split("; ")]
    assert len(seed_folds) == 2 and np.allclose(np.mean(seed_folds, axis=0), per_fold, atol=1e-4)
    scores = [[row["router_scores"] for row in json.loads(
        (out / "runs" / "lookahead" / f"seed{seed}" / "test_predictions" / "GSM8k.json").read_text())] for seed in (0, 1)]
    ensemble = posthoc.seed_ensemble(quality.Study(config, out, 1), "lookahead")["GSM8k"]
    assert ensemble.tolist() == [max(range(len(a)), key=lambda j: a[j] + b[j]) for a, b in zip(*scores)]

    # a row's own seeds (the config's `seeds` under the row): the same runs, one seed of them, nothing retrained
    config["routers"]["lookahead"]["seeds"] = [1]
    (tmp_path / "one.yaml").write_text(json.dumps(config))
    quality.main(["--config", str(tmp_path / "one.yaml"), "--output_dir", str(tmp_path / "one"), "--runs_dir", str(out),
                  "--jobs", "2"])
    one = json.loads((tmp_path / "one" / "quality.json").read_text())["rows"]["lookahead"]
    assert one["per_seed_mean_gap_closed"] == [per_seed[1]]
    assert "| lookahead (1 seed) |" in (tmp_path / "one" / "quality.md").read_text()
    assert {path: path.stat().st_mtime_ns for path in logs} == logs

    # the paired hold-out comparison pairs by (seed, fold): a copy of the runs listing its seeds the other way round
    # differs from the original by 0 on each of the 4 seed-folds
    config["routers"]["lookahead"].pop("seeds")
    config["routers"]["copy"] = {**config["routers"]["lookahead"], "seeds": [1, 0]}
    (tmp_path / "pair.yaml").write_text(json.dumps(config))
    pair_study = quality.Study(config, out, 1)
    pair_study.run_dir("copy", 0).parent.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(pair_study.run_dir("lookahead", 0).parent, pair_study.run_dir("copy", 0).parent)
    posthoc.main(["--config", str(tmp_path / "pair.yaml"), "--runs_dir", str(out), "--output_dir",
                  str(tmp_path / "pair"), "--variants", "holdout", "--routers", "copy",
                  "--holdout_reference", "lookahead"])
    (paired,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("- copy − lookahead")]
    assert paired.endswith("+0.0000, +0.0000, +0.0000, +0.0000; mean +0.0000 (standard error 0.0000), higher on "
                           "0 of 4."), paired

    with pytest.raises(SystemExit, match=r"--routers / --holdout_reference \['nope'\] are not rows of"):
        posthoc.main(["--config", str(tmp_path / "study.yaml"), "--runs_dir", str(out), "--output_dir",
                      str(tmp_path / "blend"), "--routers", "lookahead", "nope"])
    with pytest.raises(SystemExit, match=r"\['other'\] are not rows of"):
        posthoc.main(["--config", str(tmp_path / "study.yaml"), "--runs_dir", str(out), "--output_dir",
                      str(tmp_path / "blend"), "--holdout_reference", "other"])
    with pytest.raises(SystemExit, match="add holdout to --variants"):
        posthoc.main(["--config", str(tmp_path / "study.yaml"), "--runs_dir", str(out), "--output_dir",
                      str(tmp_path / "blend"), "--holdout_reference", "lookahead", "--variants", "ensemble"])

    # a row trained with another loss than BCE: the router alone on the hold-out, but no blend
    for seed in (0, 1):
        args_file = out / "runs" / "lookahead" / f"seed{seed}" / "run_args.json"
        args_file.write_text(json.dumps({**json.loads(args_file.read_text()), "loss_type": "CE"}))
    posthoc.main(["--config", str(tmp_path / "study.yaml"), "--runs_dir", str(out), "--output_dir",
                  str(tmp_path / "blend"), "--precision", "fp32", "--variants", "blend", "--routers", "lookahead"])
    ce = (tmp_path / "blend" / "posthoc.md").read_text()
    assert "- lookahead: no task-prior blend: its prior would need the targets of another loss than BCE" in ce
    assert f"benchmark hold-out (each source alike, mean over the seeds) per fold: {alone}" in ce
    assert not [line for line in ce.splitlines() if line.startswith("| lookahead")]


@pytest.mark.parametrize("config", sorted((Path(__file__).resolve().parents[1] / "bench").glob("quality_*.yaml")),
                         ids=lambda path: path.name)
def test_every_row_of_the_shipped_study_configs_parses_as_train_py_flags(config, tmp_path):
    """A misspelt flag or value in a row would otherwise surface only when its turn to train comes."""
    import yaml

    import train
    study = yaml.safe_load(config.read_text())
    for name, spec in study["routers"].items():
        flags = [*map(str, study.get("train_args", [])), *map(str, spec.get("args", []))]
        if not torch.cuda.is_available():  # the GPU study's --bf16 needs a GPU to parse; the later flag wins
            flags += ["--bf16", "False"]
        stage, _ = train.parse_args([spec["stage"], *flags, "--cross_fit_folds", str(study.get("folds", 2)),
                                     "--output_dir", str(tmp_path)])
        assert stage == spec["stage"], name


def test_posthoc_hands_a_ceiling_router_the_responses():
    import posthoc

    class Recorder:
        def __init__(self, needs_responses):
            self.needs_responses, self.seen = needs_responses, None

        def route(self, prompts, responses=None):
            self.seen = (list(prompts), responses)
            return np.zeros((len(prompts), 2))

    records = [{"prompt": "p", "responses": ["a", "b"]}, {"prompt": "q", "responses": ["c", "d"]}]
    ceiling, router = Recorder(True), Recorder(False)
    posthoc.route(ceiling, records), posthoc.route(router, records)
    assert ceiling.seen == (["p", "q"], [["a", "b"], ["c", "d"]]) and router.seen == (["p", "q"], None)
