"""Post-hoc variants of a quality study's trained rows, measured on its runs without retraining:

- checkpoint choice: each cross-fit fold routed with the fold's last checkpoint instead of the kept one (the best
  validation reward, ``load_best_model_at_end``). Both checkpoints are routed here the same way
  (``routers.pretrained.PretrainedRouter``, ``--precision``), so the two rows differ in the checkpoint alone; the
  kept checkpoint's choices are also compared with the study's own predictions (agreement printed);
- seed ensemble: the seeds' router scores (the study's predictions) averaged per query, the candidate with the
  highest mean chosen: one router from all the row's seeds, so it has no seed spread, only the query bootstrap;
- task-prior blend: each query's quality estimates (the sigmoid of the router's logits: with the BCE loss, the
  chance that a candidate is within ``--bce_threshold`` of the query's best) mixed with a task prior for the
  query's predicted source (``routers.embedding.TaskRouter``'s nearest centroid; the mean BCE target of each
  candidate over that source's queries in the fold's training part): ``(1 - w) * prior + w * estimates``; w = 1
  is the router alone, w = 0 the prior alone (a row of its own: close to the task-aware baseline, which averages
  per-source scaled scores over the whole pool instead). Each fold's w is chosen on that fold's validation
  hold-out of the benchmarks (``--cross_fit_eval_fraction``, re-drawn from the run's seed exactly as
  ``src/train.py`` did; never trained on, though it also picked the kept checkpoint), routed by the fold's kept
  checkpoint: the w with the highest mean validation reward over the seeds, the smallest on ties. Rows trained
  with another loss than BCE on min-max scores, or without a benchmark hold-out, get no blend (a note says why).
  Every row with a hold-out also gets a note with the router alone's validation reward on it (each source alike,
  as the benchmarks weigh in mean gap_closed; the Trainer's ``eval_reward`` pools the training sets' validation
  queries in with them); with ``--holdout_reference ROW``, also its difference from ROW's, paired over the
  seed-folds (how the scripts' defaults are chosen).

Prints and writes ``posthoc.md``: per row, mean gap_closed ± std over the seeds and the paired bootstrap interval of
the difference with the study's strongest baseline (as ``bench/quality.py``), and the steps of the kept
checkpoints. Routed folds are cached in ``--output_dir`` (per ``--precision``). These variants were chosen after the study's test table
was seen: count them among the configurations tried.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402  (puts src/ on the path)
from data.cross_fit import cross_fit_pools, hold_out_by_source, split_by_fold  # noqa: E402
from routers.policy import quality_estimates  # noqa: E402
from routers.pretrained import PretrainedRouter  # noqa: E402
from routers.task_prior import BLEND_WEIGHTS, TaskPrior, blend, macro_reward  # noqa: E402
from runs import read_predictions  # noqa: E402
from utils.io import read_json, write_json  # noqa: E402


def checkpoints(fold_dir: Path) -> tuple[Path, Path, int]:
    """(kept, last, kept step): the fold folder holds the kept model; its checkpoint-<step> with the largest step
    is the last."""
    steps = sorted(int(path.name.split("-")[1]) for path in fold_dir.glob("checkpoint-*"))
    if not steps:
        raise SystemExit(f"error: {fold_dir} holds no checkpoint-<step> folder; was the fold trained with save_steps?")
    kept_step = read_json(fold_dir / "trainer_state.json")["best_model_checkpoint"].rsplit("-", 1)[1]
    return fold_dir, fold_dir / f"checkpoint-{steps[-1]}", int(kept_step)


def route(router: PretrainedRouter, records: list[dict]) -> np.ndarray:
    """The router's scores for ``records``; a router that reads the responses (a ceiling) gets theirs."""
    responses = [record["responses"] for record in records] if router.needs_responses else None
    return router.route([record["prompt"] for record in records], responses)


def routed_fold(study: quality.Study, folder: Path, fold: int, cache: Path, precision: str) -> dict[str, dict]:
    """{benchmark: {prompt_id: choice}} for fold ``fold``'s in-fold test records, routed by ``folder`` (cached)."""
    if cache.exists():
        return read_json(cache)
    router = PretrainedRouter.from_pretrained(folder, precision=precision, use_task_prior=False)
    choices = {}
    for name, records in study.benchmarks.items():
        in_fold = split_by_fold(records, fold, study.folds)[0]
        scores = route(router, in_fold)
        choices[name] = {record["prompt_id"]: int(np.argmax(row)) for record, row in zip(in_fold, scores.tolist())}
    write_json(cache, choices, indent=None)
    return choices


def seed_ensemble(study: quality.Study, name: str) -> dict[str, np.ndarray]:
    """{benchmark: [n] choices}: the argmax of the mean of the seeds' router scores (the study's predictions)."""
    return {bench: np.mean([[row["router_scores"] for row in read_predictions(study.run_dir(name, seed), bench)]
                            for seed in study.row_seeds(name)], axis=0).argmax(axis=1)
            for bench in study.test_sets}


def blend_parts(study: quality.Study, name: str, task_kwargs: dict, cache_dir: Path,
                precision: str) -> tuple[list[list[dict]], str | None]:
    """(parts, why not): per seed, per fold, the validation records and their prior and estimates, and the in-fold
    test queries' (``{"held", "val_prior", "val_estimates", "test": {benchmark: (prompt_ids, prior, estimates)}}``);
    ``why not`` says why the row cannot be blended (None when it can): no parts without a benchmark hold-out or for a
    row trained with --task_prior_blend (blending again would apply the prior twice), parts
    (for the router alone) but no blend with another loss than BCE on min-max scores."""
    train_records = study.training_records()
    parts = []
    for seed in study.row_seeds(name):
        run_dir = study.run_dir(name, seed)
        run_args = read_json(run_dir / "run_args.json")
        if run_args.get("task_prior_blend"):  # its folds route through task_prior.json (PretrainedRouter) already
            return [], "trained with --task_prior_blend: its predictions and its folds' routing are blended already"
        fraction = float(run_args.get("cross_fit_eval_fraction") or 0)
        if fraction <= 0:
            return [], "no benchmark validation hold-out (--cross_fit_eval_fraction 0), so no weight can be chosen"
        predictions = {bench: {row["prompt_id"]: row["router_scores"] for row in read_predictions(run_dir, bench)}
                       for bench in study.test_sets}
        folds = []
        for fold in range(study.folds):
            pool, in_fold = cross_fit_pools(train_records, study.benchmarks, fold, study.folds)
            kept, held = hold_out_by_source(pool[len(train_records):], fraction, int(run_args["seed"]))
            prior = TaskPrior(**task_kwargs).fit(pool[:len(train_records)] + kept, float(run_args["bce_threshold"])).prior
            cache = cache_dir / run_dir.parent.name / f"seed{seed}" / f"fold_{fold}_validation_{precision}.json"
            if cache.exists():
                val_scores = np.array(read_json(cache), dtype=float)
            else:
                router = PretrainedRouter.from_pretrained(run_dir / f"fold_{fold}", precision=precision,
                                                          use_task_prior=False)
                val_scores = np.asarray(route(router, held), dtype=float)
                write_json(cache, val_scores.tolist(), indent=None)
            test = {}
            for bench, records in in_fold.items():
                if not records:  # a benchmark with no query in this fold (as src/train.py, routes nothing)
                    continue
                ids = [record["prompt_id"] for record in records]
                scores = np.array([predictions[bench][i] for i in ids], dtype=float)
                test[bench] = (ids, prior([record["prompt"] for record in records]),
                               quality_estimates(scores, "sigmoid"))
            folds.append({"held": held, "val_prior": prior([record["prompt"] for record in held]),
                          "val_estimates": quality_estimates(val_scores, "sigmoid"), "test": test})
        parts.append(folds)
    if run_args.get("loss_type") != "BCE" or run_args.get("score_normalization") != "min-max":
        return parts, "its prior would need the targets of another loss than BCE on min-max scores"
    return parts, None


def nested_blend_gain(fold: dict) -> float:
    """The task-prior blend's gain in validation reward over the router alone on one seed-fold's benchmark hold-out,
    without choosing and scoring the weight on the same queries: the hold-out is split in two halves by source
    (``hold_out_by_source(held, 0.5, 0)``); the weight chosen on one half (the highest ``macro_reward``, the
    smallest on ties) is scored on the other; returns the mean over the two halves of (blend - router alone)."""
    held = fold["held"]
    second = {id(record) for record in hold_out_by_source(held, 0.5, 0)[1]}
    halves = [np.array([id(record) not in second for record in held]), np.array([id(record) in second for record in held])]
    gains = []
    for choose, score in (halves, halves[::-1]):
        def reward(mask, weight):
            records = [record for record, keep in zip(held, mask) if keep]
            return macro_reward(records, blend(fold["val_prior"][mask], fold["val_estimates"][mask], weight).argmax(1))
        weight = max(BLEND_WEIGHTS, key=lambda w: (reward(choose, w), -w))
        gains.append(reward(score, weight) - reward(score, 1.0))
    return float(np.mean(gains))


def task_prior_blend(study: quality.Study, parts: list[list[dict]],
                     weights: list[float] | None = None) -> tuple[list[dict[str, np.ndarray]], list[float],
                                                                 list[dict[float, float]]]:
    """(per-seed test choices, each fold's weight, each fold's {weight: mean validation reward over the seeds}).

    Fold f's weight is chosen on fold f's validation hold-out alone (the highest mean reward over the seeds, the
    smallest weight on ties) and routes fold f's test queries only: the hold-out is drawn from fold f's training
    pool, i.e. from the other folds' test queries, so pooling the folds' hold-outs would let a fold's own test
    labels choose its weight. ``weights`` (one per fold) fixes the weights instead of choosing them."""
    curves = [{weight: float(np.mean([macro_reward(folds[fold]["held"], blend(
        folds[fold]["val_prior"], folds[fold]["val_estimates"], weight).argmax(axis=1)) for folds in parts]))
        for weight in BLEND_WEIGHTS} for fold in range(len(parts[0]))]
    if weights is None:
        weights = [max(BLEND_WEIGHTS, key=lambda weight: (curve[weight], -weight)) for curve in curves]
    runs = []
    for folds in parts:
        merged = {bench: {} for bench in study.test_sets}
        for fold, weight in zip(folds, weights):
            for bench, (ids, prior, estimates) in fold["test"].items():
                merged[bench].update(zip(ids, blend(prior, estimates, weight).argmax(axis=1).tolist()))
        runs.append({bench: np.array([merged[bench][r["prompt_id"]] for r in study.benchmarks[bench]])
                     for bench in study.test_sets})
    return runs, weights, curves


def checkpoint_rows(study: quality.Study, name: str, output_dir: Path,
                    precision: str) -> tuple[dict[str, list[dict[str, np.ndarray]]], str]:
    """The row's kept- and last-checkpoint runs (each fold routed again, cached), and a note on the kept steps and
    on how often the kept checkpoint, routed here, makes the study's own choice."""
    benchmarks = study.test_sets
    runs = {"kept": [], "last": []}
    kept_steps, agreement = [], []
    stored_runs = study.trained_runs(name)  # the study's own choices, per seed
    for seed, stored in zip(study.row_seeds(name), stored_runs):
        run_dir = study.run_dir(name, seed)
        merged = {"kept": {b: {} for b in benchmarks}, "last": {b: {} for b in benchmarks}}
        for fold in range(study.folds):
            kept, last, step = checkpoints(run_dir / f"fold_{fold}")
            kept_steps.append(f"{step}/{last.name.split('-')[1]}")
            for which, folder in (("kept", kept), ("last", last)):
                cache = output_dir / run_dir.parent.name / f"seed{seed}" / f"fold_{fold}_{which}_{precision}.json"
                for bench, choices in routed_fold(study, folder, fold, cache, precision).items():
                    merged[which][bench].update(choices)
        for which in runs:
            runs[which].append({b: np.array([merged[which][b][r["prompt_id"]] for r in study.benchmarks[b]])
                                for b in benchmarks})
        same = sum(int((stored[b] == runs["kept"][-1][b]).sum()) for b in benchmarks)
        agreement.append(same / sum(len(stored[b]) for b in benchmarks))
    note = (f"- {name}: kept step / last step per seed and fold: {', '.join(kept_steps)}; the kept checkpoint "
            f"routed here chose the study's candidate on {100 * np.mean(agreement):.2f}% of the queries ({precision} "
            f"here).")
    return {f"{name}, kept checkpoint": runs["kept"], f"{name}, last checkpoint": runs["last"]}, note


def paired_holdout_notes(holdout: dict[str, dict[tuple[int, int], float]], reference: str) -> list[str]:
    """One note per row: its hold-out reward minus ``reference``'s, paired over the (seed, fold)s both have: the
    differences, their mean and standard error, and on how many the row is higher. ``holdout``: row name ->
    {(seed, fold): the router alone's hold-out reward}."""
    if reference not in holdout:
        return [f"- no paired hold-out comparison: {reference} has no benchmark hold-out (trained with "
                f"--cross_fit_eval_fraction 0?)."]
    notes = []
    for name, rewards in holdout.items():
        shared = sorted(set(rewards) & set(holdout[reference]))
        if name == reference or not shared:
            continue
        diffs = np.array([rewards[key] - holdout[reference][key] for key in shared])
        error = diffs.std(ddof=1) / np.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
        notes.append(f"- {name} − {reference}, hold-out reward paired over {len(diffs)} seed-folds: "
                     + ", ".join(f"{d:+.4f}" for d in diffs) + f"; mean {diffs.mean():+.4f} (standard error "
                     f"{error:.4f}), higher on {int((diffs > 0).sum())} of {len(diffs)}.")
    return notes


VARIANTS = ("checkpoints", "ensemble", "blend", "holdout")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="The study's YAML config.")
    parser.add_argument("--runs_dir", required=True, help="The study's folder (holds runs/ and baselines/).")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--routers", nargs="+", help="Names of the config's trained rows to measure (default: all).")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS,
                        help="Which variants to measure (default all): the kept and last checkpoints (routes every "
                             "fold's test queries twice, the slow part), the seed ensemble, the task-prior blend; "
                             "holdout adds no row, only the note of the router alone's validation reward on the "
                             "benchmark hold-out (also part of blend).")
    parser.add_argument("--holdout_reference", metavar="ROW",
                        help="With holdout or blend: also a note of each measured row's hold-out reward minus this "
                             "row's (measured too), paired over the seed-folds the two share: the validation "
                             "comparison that chooses the scripts' defaults.")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    output_dir = Path(args.output_dir)
    if args.holdout_reference and not {"holdout", "blend"} & set(args.variants):
        raise SystemExit("error: --holdout_reference compares hold-out rewards: add holdout to --variants.")
    routers = list(config.get("routers") or {})
    unknown = sorted((set(args.routers or []) | {args.holdout_reference}) - {None} - set(routers))
    if unknown:
        raise SystemExit(f"error: --routers / --holdout_reference {unknown} are not rows of {args.config} (its rows: "
                         f"{routers}).")
    study = quality.Study(config, output_dir, 1, Path(args.runs_dir))
    benchmarks = study.test_sets
    rows, notes = {}, []
    task_kwargs = dict((config.get("baselines") or {}).get("task") or {})
    measured = list(args.routers or routers)
    if args.holdout_reference and args.holdout_reference not in measured:
        measured.insert(0, args.holdout_reference)
    holdout = {}  # name -> {(seed, fold): the router alone's hold-out reward}
    for name in measured:
        if "checkpoints" in args.variants:
            checkpoint_runs, note = checkpoint_rows(study, name, output_dir, args.precision)
            rows.update(checkpoint_runs)
            notes.append(note)
        if "ensemble" in args.variants:
            rows[f"{name}, seed ensemble"] = [seed_ensemble(study, name)]
        if "blend" in args.variants or "holdout" in args.variants:
            parts, why = blend_parts(study, name, task_kwargs, output_dir, args.precision)
            if parts:  # the router alone on the hold-out: the validation metric that matches the test's weighting
                per_seed = [[macro_reward(fold["held"], fold["val_estimates"].argmax(axis=1)) for fold in folds]
                            for folds in parts]
                alone = np.mean(per_seed, axis=0)
                holdout[name] = {(seed, fold): reward for seed, rewards in zip(study.row_seeds(name), per_seed)
                                 for fold, reward in enumerate(rewards)}
                notes.append(f"- {name}: the router alone, mean validation reward on the benchmark hold-out (each "
                             f"source alike, mean over the seeds) per fold: "
                             + ", ".join(f"{reward:.4f}" for reward in alone) + f"; mean {np.mean(alone):.4f} (per "
                             f"seed {', '.join(map(str, study.row_seeds(name)))}, per fold: "
                             + "; ".join(", ".join(f"{reward:.4f}" for reward in seed) for seed in per_seed) + ").")
            if parts and not why:  # is blending worth it? asked of the validation hold-out alone
                gains = np.array([nested_blend_gain(fold) for folds in parts for fold in folds])
                notes.append(f"- {name}: task-prior blend's gain over the router alone on the hold-out, nested (w "
                             f"chosen on one half of it, scored on the other), per seed and fold: "
                             + ", ".join(f"{gain:+.4f}" for gain in gains) + f"; mean {gains.mean():+.4f} (standard "
                             f"error {gains.std(ddof=1) / np.sqrt(len(gains)) if len(gains) > 1 else float('nan'):.4f}"
                             f"), positive on {int((gains > 0).sum())} of {len(gains)}.")
            if "blend" not in args.variants:
                continue
            if why:
                notes.append(f"- {name}: no task-prior blend: {why}.")
            else:
                blended, weights, curves = task_prior_blend(study, parts)
                rows[f"{name}, its task prior alone (w 0)"] = task_prior_blend(study, parts, [0.0] * study.folds)[0]
                rows[f"{name}, task-prior blend (w per fold {', '.join(f'{w:.1f}' for w in weights)})"] = blended
                for fold, curve in enumerate(curves):
                    notes.append(f"- {name}: task-prior blend, fold {fold}: mean validation reward per weight w (w = "
                                 f"0 the task prior alone, 1 the router alone): "
                                 + ", ".join(f"{w:.1f}: {r:.4f}" for w, r in curve.items())
                                 + f"; chosen w = {weights[fold]:.1f}.")
    if args.holdout_reference:
        notes.extend(paired_holdout_notes(holdout, args.holdout_reference))

    utilities = {b: np.array([r["scores"] for r in records], dtype=float) for b, records in study.benchmarks.items()}
    indices = quality.bootstrap_indices({b: len(u) for b, u in utilities.items()}, study.draws,
                                        int(config.get("bootstrap_seed", 0)))
    baselines = {}
    for router_type, kwargs in {"random": {}, **(config.get("baselines") or {})}.items():
        baseline = study.baseline_runs(router_type, dict(kwargs or {}))
        mean = np.mean([s["mean_gap_closed"] for s in quality.summarize_runs(study, baseline)])
        baselines[quality.BASELINE_NAMES.get(router_type, router_type)] = (mean, baseline)
    strongest = max(baselines, key=lambda b: baselines[b][0])
    reference = quality.gap_closed_draws(utilities, {b: [run[b] for run in baselines[strongest][1]] for b in benchmarks},
                                         indices)
    lines = [f"| router | mean gap_closed | Δ vs {strongest} [95% CI] |", "|---|---|---|",
             f"| {strongest} | {baselines[strongest][0]:.3f} | – |"]
    for name, runs in rows.items():
        stats = quality.row_statistics(quality.summarize_runs(study, runs), benchmarks)["mean gap_closed"]
        draws = quality.gap_closed_draws(utilities, {b: [run[b] for run in runs] for b in benchmarks}, indices)
        seeds = f"{len(runs)} seeds" if len(runs) > 1 else "1 router"
        lines.append(f"| {name} ({seeds}) | {quality.cell(stats[0], stats[1], 3, len(runs) > 1)} | "
                     f"{quality.format_interval(quality.interval(draws - reference))} |")
    text = "\n".join(lines + [""] + notes) + "\n"
    (output_dir / "posthoc.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
