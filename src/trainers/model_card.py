"""The model card of a trained router: ``README.md`` in its folder, the Hugging Face Hub's model card format
(YAML metadata, then markdown).

It says what the router is (stage, backbone, candidates in output order, routing loss), what it was trained on
(training sets, the run's arguments in run_args.json), how well it routes (the validation metrics of
eval_results.json and, once written, the test benchmarks' headline scores of metrics.json; for a cross-fit fold,
those of the merged run in the parent folder) and how to load and serve it. ``RouterTrainer.create_model_card``
writes it, so ``--push_to_hub`` uploads it with the router; ``src/train.py`` rewrites it when the test metrics
are in.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from utils.io import atomic_write_text, read_json

CARD = "README.md"


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


def _test_metrics(folder: Path) -> Path | None:
    """The folder's metrics.json or, for a cross-fit fold (``fold_<f>``), the merged run's above it."""
    if (folder / "metrics.json").exists():
        return folder / "metrics.json"
    if folder.name.startswith("fold_") and (folder.parent / "metrics.json").exists():
        return folder.parent / "metrics.json"
    return None


def model_card(folder: str | Path, stage: str, model_config, args) -> str:
    """The card's text for the router in ``folder``: ``stage``, its ``RouterModelConfig`` and the run's
    ``RouterConfig`` (``args``)."""
    folder = Path(folder)
    backbone = model_config.backbone_name_or_path
    on_hub = "/" in backbone and not backbone.startswith("packaged:") and not Path(backbone).exists()
    front = {"tags": ["lookahead-routing", "llm-router", stage], **({"base_model": backbone} if on_hub else {})}
    lines = ["---", *(f"{key}: {json.dumps(value)}" for key, value in front.items()), "---", "",
             f"# {folder.name}: a `{stage}` router over {len(model_config.candidate_llms)} candidates", "",
             "A router of lookahead-routing (\"Lookahead Routing for Large Language Models\", NeurIPS 2025): it reads "
             "a query and scores each candidate LLM; the query goes to the highest score.",
             "", "| | |", "|---|---|",
             f"| stage | `{stage}` |",
             f"| backbone | `{backbone}` |",
             f"| candidates, in output order | {', '.join(f'`{c}`' for c in model_config.candidate_llms)} |",
             f"| routing loss | `{model_config.loss_type}` (per-query score normalisation "
             f"`{model_config.score_normalization}`) |",
             f"| training sets | {', '.join(f'`{s}`' for s in args.train_datasets)} (data: `{args.data_dir}`) |",
             f"| longest input | {model_config.max_seq_length} tokens |"]
    if args.cross_fit_folds:
        lines.append(f"| cross-fitting | {args.cross_fit_folds} folds: this router also trained on the other folds "
                     f"of {', '.join(args.test_datasets)} |")
    lines += ["", "## Metrics", ""]
    if (folder / "eval_results.json").exists():
        results = read_json(folder / "eval_results.json")
        quality = {name: value for name, value in sorted(results.items())
                   if not name.endswith(("_runtime", "_per_second"))}  # not the evaluation's speed
        lines += ["Validation (the kept checkpoint, `eval_results.json`): "
                  + ", ".join(f"{name} {_number(value)}" for name, value in quality.items()) + ".", ""]
    path = _test_metrics(folder)
    if path:
        summary = read_json(path)
        benchmarks = [name for name, value in summary.items() if isinstance(value, dict) and "score" in value]
        merged = path.parent != folder
        source = "`../metrics.json`, the merged cross-fit folds" if merged else "`metrics.json`"
        lines += [f"Test benchmarks ({source}): headline score, the best single candidate's, the oracle's and "
                  f"gap_closed = (router − best fixed) / (oracle − best fixed).",
                  "", "| benchmark | router | best fixed | oracle | gap_closed |", "|---|---|---|---|---|"]
        lines += [f"| {name} | {_number(summary[name]['score'])} | {_number(summary[name].get('best_fixed'))} | "
                  f"{_number(summary[name].get('oracle'))} | {_number(summary[name].get('gap_closed'))} |"
                  for name in benchmarks]
        lines += ["", f"Mean gap_closed {_number(summary.get('mean_gap_closed'))}, mean over_random "
                      f"{_number(summary.get('mean_over_random'))}.", ""]
    else:
        lines += ["No test benchmarks routed yet (`src/train.py ... --do_predict` writes `metrics.json`).", ""]
    lines += ["## Use", "", "In a clone of lookahead-routing, with this folder as `ROUTER`:", "", "```python",
              'import sys; sys.path.insert(0, "src")', "from routers.pretrained import PretrainedRouter",
              'router = PretrainedRouter.from_pretrained("ROUTER")',
              'scores = router.route(["Write a Python function that reverses a linked list."])   # [n, k]',
              "```", "", "Serve it behind an OpenAI-compatible endpoint (candidates' endpoints and prices in the "
              "config):", "", "```bash",
              "LOOKAHEAD_API_KEY=<key> python src/serve.py --router ROUTER --config candidates.yaml", "```", "",
              "Train it again: `python src/train.py "
              f"{stage} --config run_args.json` (the run's arguments, in "
              f"{'the parent folder' if folder.name.startswith('fold_') else 'this folder'}).", ""]
    return "\n".join(lines)


def write_model_card(folder: str | Path, stage: str, model_config, args) -> Path:
    """Write ``model_card(...)`` to ``<folder>/README.md``; returns its path."""
    path = Path(folder) / CARD
    atomic_write_text(path, model_card(folder, stage, model_config, args))
    return path
