"""Calibrate a trained router's cost-aware policy on a validation split and save it next to the router.

    python src/calibrate.py --router output/quality/mask_concat_minilm/fold_0 --config candidates.example.yaml \\
        --budget 0.4
    python src/calibrate.py --router ... --config ... --strong_share 0.3 --strong Yi-1.5-34B-Chat \\
        --weak Qwen2.5-Coder-7B-Instruct

Routes the validation split of the router's training sets (or ``--validation_sets``) and writes
``routing_policy.json`` into the router folder: the willingness to pay lambda whose mean expected cost meets
``--budget`` (USD per 1,000 queries), or the threshold that sends ``--strong_share`` of the queries to
``--strong`` (``routers.policy.calibrate``; prices from the candidates config, ``candidates.py``). The server and
``PretrainedRouter.decide`` then route with it. Flags, config, router and data are checked in that order, before
any routing.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Sequence

import yaml

from candidates import load_config, prices_from_config
from data import load_train_set, resolve_train_set
from data.train_sets import empty_split_error
from routers.policy import POLICY_FILE, calibrate, check_target
from routers.pretrained import PretrainedRouter
from utils.io import exists, read_json, read_jsonl, writable_dir, write_json


def attach_recorded_output_tokens(records: list[dict], set_dir: str | Path, candidates: Sequence[str],
                                  score_dir: str = "responses") -> list[dict]:
    """Set ``record["output_tokens"]`` (k counts, None where unknown) from the token counts that a training set's
    ``<set_dir>/<score_dir>/<llm>.jsonl`` files record (``response_toknes``, as the Self-OSS files spell it, or
    ``response_tokens``). Returns ``records``."""
    counts = []
    for llm in candidates:
        path = Path(set_dir) / score_dir / f"{llm}.jsonl"
        rows = read_jsonl(path) if exists(path) else []
        counts.append({str(row.get("prompt_id")): row.get("response_toknes", row.get("response_tokens"))
                       for row in rows})
    for record in records:
        record["output_tokens"] = [per_llm.get(str(record["prompt_id"])) for per_llm in counts]
    return records


def main(argv: list[str] | None = None) -> None:
    """The command (see the module docstring); ``argv`` defaults to the process's arguments."""
    parser = argparse.ArgumentParser(description="Calibrate a trained router's cost-aware policy on a validation "
                                                 "split and save it next to the router (routing_policy.json).")
    parser.add_argument("--router", required=True, help="A trained router folder (its config.json names the stage).")
    parser.add_argument("--config", required=True, help="Candidates config with prices (candidates.example.yaml).")
    parser.add_argument("--budget", type=float, help="Target mean expected cost, USD per 1,000 queries.")
    parser.add_argument("--strong_share", type=float, help="Target share of queries sent to --strong.")
    parser.add_argument("--strong", help="The strong candidate of --strong_share.")
    parser.add_argument("--weak", help="The weak candidate of --strong_share.")
    parser.add_argument("--data_dir", help="Folder holding train/ (default: the router's training run's).")
    parser.add_argument("--validation_sets", nargs="+", help="Training sets (<set>/<score dir>) whose eval split is "
                                                             "the validation split (default: the router's training "
                                                             "sets).")
    args = parser.parse_args(argv)

    # Flags, config, router and data are checked in that order, before any routing.
    check_target(None, args.budget, args.strong_share, args.strong, args.weak)
    config = load_config(args.config)
    router = PretrainedRouter.from_pretrained(args.router)
    check_target(router.candidates, args.budget, args.strong_share, args.strong, args.weak)
    prices = prices_from_config(config, router.candidates, args.config)
    writable_dir(args.router, "--router")
    run_args = next((read_json(path) for path in (Path(args.router) / "run_args.json",
                                                  Path(args.router).parent / "run_args.json") if path.exists()), {})
    data_dir = args.data_dir or run_args.get("data_dir")
    sets = args.validation_sets or run_args.get("train_datasets")
    if not data_dir or not sets:
        raise SystemExit("error: pass --data_dir and --validation_sets (the router's run_args.json has neither).")
    resolved = [resolve_train_set(name, data_dir) for name in sets]  # DataError naming a bad entry
    records = []
    for set_dir, score_dir in resolved:
        records += attach_recorded_output_tokens(load_train_set(set_dir, router.candidates, score_dir, split="eval"),
                                                 set_dir, router.candidates, score_dir)
    if not records:
        raise empty_split_error([set_dir for set_dir, _ in resolved], "eval")
    policy = calibrate(router, records, prices, args.budget, args.strong_share, args.strong, args.weak)
    write_json(Path(args.router) / POLICY_FILE, policy.to_json())
    print(f"saved {Path(args.router) / POLICY_FILE}:")
    print(yaml.safe_dump({key: value for key, value in policy.to_json().items() if key != "prices"}, sort_keys=False))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main()
