"""Re-apply the deliberate one-line bugs of issue 13 to scratch copies of the repository and check that each one
fails at least one default-suite test.

    nice -n 19 python scripts/reapply_known_bugs.py [BUG ...] [--output_dir output/known_bugs]

For each bug (``BUGS``: the file, the exact text replaced and its replacement, the tests that must catch it),
``src/`` and ``tests/`` are copied to ``<output_dir>/<bug>/``, the replacement is made (the text must occur
exactly once) and ``pytest`` runs the named tests there; the bug counts as caught when pytest fails (exit 1).
Prints a markdown table bug -> test -> caught and exits non-zero when a bug is not caught. A few minutes.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (file, text, replacement, tests that must fail)
BUGS: dict[str, tuple[str, str, str, list[str]]] = {
    "cross-fit leak: each fold also trains on its own records": (
        "src/data/cross_fit.py",
        "        pool, in_fold = cross_fit_pools(train_records, benchmarks, fold, k)\n",
        "        pool, in_fold = cross_fit_pools(train_records, benchmarks, fold, k); "
        "pool = pool + [r for rows in in_fold.values() for r in rows]\n",
        ["tests/test_train.py::test_cross_fit_folds_never_train_or_validate_on_their_own_records",
         "tests/test_runs.py::test_cross_fit_predict_merges_the_folds_in_record_order"]),
    "best_fixed = the first candidate": (
        "src/metrics.py", "    best_fixed = max(fixed)\n", "    best_fixed = fixed[0]\n",
        ["tests/test_metrics.py::test_evaluate_best_fixed_is_the_best_candidate_not_the_first"]),
    "BCE label >= threshold x best becomes >": (
        "src/model/losses.py", "labels = (scores >= threshold", "labels = (scores > threshold",
        ["tests/test_losses.py::test_bce_threshold_one_labels_the_best_candidate_one"]),
    "ForwardKL batch mean -> sum": (
        "src/model/losses.py", "(log_target.exp() * (log_target - log_p)).sum(dim=-1).mean()",
        "(log_target.exp() * (log_target - log_p)).sum(dim=-1).sum()",
        ["tests/test_losses.py::test_every_loss_is_the_mean_of_its_rows_over_a_batch_of_three"]),
    "ReverseKL batch mean -> sum": (
        "src/model/losses.py", "(log_p.exp() * (log_p - log_target)).sum(dim=-1).mean()",
        "(log_p.exp() * (log_p - log_target)).sum(dim=-1).sum()",
        ["tests/test_losses.py::test_every_loss_is_the_mean_of_its_rows_over_a_batch_of_three"]),
    "BCE batch mean -> sum": (
        "src/model/losses.py", "F.binary_cross_entropy_with_logits(logits, labels)",
        "F.binary_cross_entropy_with_logits(logits, labels, reduction='sum') / logits.shape[-1]",
        ["tests/test_losses.py::test_every_loss_is_the_mean_of_its_rows_over_a_batch_of_three"]),
    "MSE batch mean -> sum": (
        "src/model/losses.py", "F.mse_loss(logits.sigmoid(), scores)",
        "F.mse_loss(logits.sigmoid(), scores, reduction='sum') / logits.shape[-1]",
        ["tests/test_losses.py::test_every_loss_is_the_mean_of_its_rows_over_a_batch_of_three"]),
    "CE batch mean -> sum": (
        "src/model/losses.py", "(target * logits.log_softmax(dim=-1)).sum(dim=-1).mean()",
        "(target * logits.log_softmax(dim=-1)).sum(dim=-1).sum()",
        ["tests/test_losses.py::test_every_loss_is_the_mean_of_its_rows_over_a_batch_of_three"]),
    "AlpacaEval LC: difficulty fitted on the candidates replaced by zeros": (
        "src/metrics.py", "self.reference_lengths).values\n", "self.reference_lengths).values * 0\n",
        ["tests/test_metrics.py::test_alpaca_lc_with_difficulty_fitted_on_the_candidates_recovers_the_generating_win_rates"]),
    "AlpacaEval LC: ridge by argmax": (
        "src/utils/alpaca_lc.py", "ridges[int(np.argmin(losses))]", "ridges[int(np.argmax(losses))]",
        ["tests/test_metrics.py::test_choose_ridge_takes_the_lowest_cross_validated_loss",
         "tests/test_metrics.py::test_alpaca_lc_with_difficulty_fitted_on_the_candidates_recovers_the_generating_win_rates"]),
    "ArenaHard CI: percentiles 25 / 75": (
        "src/metrics.py", "[float(np.percentile(shares, 2.5)), float(np.percentile(shares, 97.5))]",
        "[float(np.percentile(shares, 25)), float(np.percentile(shares, 75))]",
        ["tests/test_metrics.py::test_arena_ci95_is_the_central_95_percent_of_the_bootstrap"]),
    "random baseline: 20 draws -> 1": (
        "src/metrics.py", "RANDOM_DRAWS = 20\n", "RANDOM_DRAWS = 1\n",
        ["tests/test_metrics.py::test_evaluate_random_is_the_mean_of_twenty_seeded_draws"]),
    "FlexAttention: prefix sharing dropped from the flex path": (
        "src/model/packing.py", "return flex_block_mask(document_ids, block_ids, causal, window)",
        "return flex_block_mask(document_ids, None, causal, window)",
        ["tests/test_packing.py::test_flex_attention_arguments_carry_the_prefix_sharing",
         "tests/test_packing.py::test_flex_attention_forward_equals_sdpa"]),
    "cost_curves: APGR / CPT weak and strong swapped": (
        "src/cost_curves.py", "weak_quality, strong_quality = fixed[weak][1], fixed[strong][1]",
        "weak_quality, strong_quality = fixed[strong][1], fixed[weak][1]",
        ["tests/test_cost.py::test_benchmark_cost_analysis_on_records"]),
    "generation: the sampling seed ignored": (
        "src/utils/generation.py", "torch.manual_seed(sampling.seed)", "torch.manual_seed(0)",
        ["tests/test_generation.py::test_a_different_seed_draws_a_different_sample"]),
    "sandbox: os.remove dropped from the guarded events": (
        "src/rewards/sandbox_runner.py", 'WRITE_EVENTS = {"os.remove": 1, ', "WRITE_EVENTS = {",
        ["tests/test_rewards_unit_tests.py::test_every_hostile_program_is_contained_and_scores_zero"]),
    "server: content given as a list of parts routed on an empty text": (
        "src/serve.py", "        return \"\\n\".join(part[\"text\"] for part in content\n",
        "        return \"\" if content else \"\\n\".join(part[\"text\"] for part in content\n",
        ["tests/test_serve.py::test_content_given_as_parts_is_routed_on_its_text"]),
    "resume replaced by a restart (the 'resuming from' line still logged)": (
        "src/train.py", "trainer.train(resume_from_checkpoint=resume_point(args, args.output_dir))",
        "trainer.train(resume_from_checkpoint=resume_point(args, args.output_dir) and None)",
        ["tests/test_train.py::test_resume_from_last_checkpoint_matches_an_uninterrupted_run"]),
}


def check(name: str, output_dir: Path) -> list[tuple[str, bool]]:
    path, text, replacement, tests = BUGS[name]
    work = output_dir / "".join(c if c.isalnum() else "_" for c in name)[:60]
    shutil.rmtree(work, ignore_errors=True)
    for folder in ("src", "tests"):
        shutil.copytree(ROOT / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
    source = (work / path).read_text()
    if source.count(text) != 1:
        raise SystemExit(f"error: {path} holds {source.count(text)} copies of {text!r}, not 1: update BUGS")
    (work / path).write_text(source.replace(text, replacement))
    results = []
    for test in tests:
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", test], cwd=work,
                             capture_output=True, text=True)
        if run.returncode not in (0, 1):
            raise SystemExit(f"error: pytest exited {run.returncode} on {test} ({name}):\n{run.stdout[-3000:]}")
        results.append((test, run.returncode == 1))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bugs", nargs="*", metavar="BUG", help="names of BUGS (default: all)")
    parser.add_argument("--output_dir", default=str(ROOT / "output" / "known_bugs"))
    args = parser.parse_args()
    unknown = [name for name in args.bugs if name not in BUGS]
    if unknown:
        parser.error(f"unknown bug(s) {unknown}; choose from {list(BUGS)}")
    lines = ["| bug | test | fails on the bug |", "|---|---|---|"]
    missed = 0
    for name in args.bugs or list(BUGS):
        results = check(name, Path(args.output_dir))
        missed += not any(caught for _, caught in results)
        lines += [f"| {name} | `{test.split('::')[-1]}` | {'yes' if caught else 'NO'} |" for test, caught in results]
        print(lines[-1], flush=True)
    print("\n".join(lines))
    if missed:
        raise SystemExit(f"{missed} bug(s) caught by none of their tests")


if __name__ == "__main__":
    main()
