"""Post-hoc variants of a quality study's trained rows, measured on its runs without retraining:

- checkpoint choice: each cross-fit fold routed with the fold's last checkpoint instead of the kept one (the best
  validation reward, ``load_best_model_at_end``). Both checkpoints are routed here the same way
  (``routers.pretrained.PretrainedRouter``, ``--precision``), so the two rows differ in the checkpoint alone; the
  kept checkpoint's choices are also compared with the study's own predictions (agreement printed);
- seed ensemble: the seeds' router scores (the study's predictions) averaged per query, the candidate with the
  highest mean chosen: one router from all the row's seeds, so it has no seed spread, only the query bootstrap.

    python bench/posthoc.py --config bench/quality_cpu.yaml --runs_dir output/quality_cpu --output_dir output/posthoc

Prints and writes ``posthoc.md``: per row, mean gap_closed ± std over the seeds and the paired bootstrap interval of
the difference with the study's strongest baseline (as ``bench/quality.py``), and the steps of the kept
checkpoints. Routed folds are cached in ``--output_dir``. These variants were chosen after the study's test table
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
from data.cross_fit import split_by_fold  # noqa: E402
from routers.pretrained import PretrainedRouter  # noqa: E402
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


def routed_fold(study: quality.Study, folder: Path, fold: int, cache: Path, precision: str) -> dict[str, dict]:
    """{benchmark: {prompt_id: choice}} for fold ``fold``'s in-fold test records, routed by ``folder`` (cached)."""
    if cache.exists():
        return read_json(cache)
    router = PretrainedRouter.from_pretrained(folder, precision=precision)
    choices = {}
    for name, records in study.benchmarks.items():
        in_fold = split_by_fold(records, fold, study.folds)[0]
        scores = router.route([record["prompt"] for record in in_fold])
        choices[name] = {record["prompt_id"]: int(np.argmax(row)) for record, row in zip(in_fold, scores.tolist())}
    write_json(cache, choices, indent=None)
    return choices


def seed_ensemble(study: quality.Study, name: str) -> dict[str, np.ndarray]:
    """{benchmark: [n] choices}: the argmax of the mean of the seeds' router scores (the study's predictions)."""
    return {bench: np.mean([[row["router_scores"] for row in read_predictions(study.run_dir(name, seed), bench)]
                            for seed in study.row_seeds(name)], axis=0).argmax(axis=1)
            for bench in study.test_sets}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="The study's YAML config.")
    parser.add_argument("--runs_dir", required=True, help="The study's folder (holds runs/ and baselines/).")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    output_dir = Path(args.output_dir)
    study = quality.Study(config, output_dir, 1, Path(args.runs_dir))
    benchmarks = study.test_sets
    rows, notes = {}, []
    for name in config.get("routers") or {}:
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
                    cache = output_dir / run_dir.parent.name / f"seed{seed}" / f"fold_{fold}_{which}.json"
                    for bench, choices in routed_fold(study, folder, fold, cache, args.precision).items():
                        merged[which][bench].update(choices)
            for which in runs:
                runs[which].append({b: np.array([merged[which][b][r["prompt_id"]] for r in study.benchmarks[b]])
                                    for b in benchmarks})
            same = sum(int((stored[b] == runs["kept"][-1][b]).sum()) for b in benchmarks)
            agreement.append(same / sum(len(stored[b]) for b in benchmarks))
        rows[f"{name}, kept checkpoint"] = runs["kept"]
        rows[f"{name}, last checkpoint"] = runs["last"]
        rows[f"{name}, seed ensemble"] = [seed_ensemble(study, name)]
        notes.append(f"- {name}: kept step / last step per seed and fold: {', '.join(kept_steps)}; the kept "
                     f"checkpoint routed here chose the study's candidate on {100 * np.mean(agreement):.2f}% of the "
                     f"queries ({args.precision} here).")

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
