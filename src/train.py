"""Train a router, keep its best checkpoint on the validation set, and route the test benchmarks.

    python src/train.py <stage> [--config run.yaml] [--flags]      stage: mask_concat | causal | sc | gt_responses

Flags: the stage's config (``trainers.STAGES``; ``python src/train.py <stage> --help``), which includes every
``TrainingArguments`` flag (--learning_rate, --num_train_epochs, --per_device_train_batch_size, --eval_steps,
--save_steps, --bf16, --deepspeed, --gradient_checkpointing, --seed, --report_to tensorboard, --push_to_hub, ...).
``--config`` reads them from a YAML or JSON file first (the flags on the command line win); the run's
``run_args.json`` is such a file, so ``--config <run>/run_args.json`` runs the same experiment again.

* Data: --train_datasets entries are ``<set>/<score dir>`` under ``<data_dir>/train`` (the paper's form). The
  "train" split of every set (queries not in its eval_ids.json, cut to --train_slice) is the training pool,
  the "eval" split is the validation set (``eval_reward`` every --eval_steps; the best checkpoint is kept and
  loaded at the end; its validation metrics go to ``eval_results.json``). Every set, candidate file and test
  benchmark is read and checked before any training.
* --do_train (default on): train and save the router in --output_dir; with --do_train False the router
  already saved there is loaded instead.
* --do_predict (default on): route every --test_datasets benchmark and write the run folder (``runs``) in
  --output_dir: ``test_predictions/<benchmark>.json`` (list of {prompt_id, router_scores [k], choice, fold}),
  ``metrics.json`` (``metrics.evaluate_benchmarks``) and ``results.md`` (``metrics.format_table``, also printed).
* Every router folder gets its model card ``README.md`` (``trainers.model_card``); --push_to_hub uploads the
  router with it through the Trainer (not with --cross_fit_folds).
* --cross_fit_folds K: K routers in ``fold_<f>/``; router f trains on the training pool plus the benchmark
  records outside fold f and routes the records in fold f (``data.cross_fit.cross_fit_predict``); the merged
  predictions are scored on the full benchmarks.
* --resume_from_checkpoint PATH, or ``last-checkpoint`` for the newest complete checkpoint in the output folder
  (one a kill interrupted while it was being written is skipped, with a warning; per fold with cross-fitting;
  folds whose predictions are written are kept as they are).

Everything this script writes is written atomically; the log also goes to ``<output_dir>/train.log``, with a
``progress:`` line (steps or batches done, time elapsed and left) at most every 10 s of each phase.
After training, each router folder also holds ``trainer_state.json`` (every training and validation log)
and ``training_curves.png`` (``utils.plots``; with cross-fitting the top folder's plot shows every fold).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import random
import sys
from pathlib import Path

import numpy as np
import transformers
import yaml
from accelerate.state import AcceleratorState
from transformers import HfArgumentParser
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

import runs
from data import load_benchmark, load_train_set, resolve_train_set
from data.cross_fit import cross_fit_predict, hold_out_by_source
from model import RouterModelConfig, load_router_model
from routers.task_prior import TASK_PRIOR_FILE, TaskPrior
from trainers import STAGES, RouterConfig, RouterTrainer
from trainers.base import train_slice_bounds
from trainers.callbacks import LogToFile
from trainers.model_card import write_model_card
from utils.io import DataError, read_json, read_text, write_json
from utils.plots import plot_run

logger = logging.getLogger("lookahead")
LAST_CHECKPOINT = "last-checkpoint"


def read_run_config(path: str, stage: str) -> dict:
    """The flag values of a run config file (``--config``): a YAML or JSON object mapping flag names (without
    ``--``) to values, as ``run_args.json`` holds them. A ``stage`` key, if any, must name ``stage``; the
    placeholders ``TrainingArguments`` writes for secret tokens (``"<HUB_TOKEN>"``) are left out. SystemExit naming
    the file, and the line of a syntax error, otherwise."""
    try:
        config = read_json(path) if path.endswith(".json") else yaml.safe_load(read_text(path))
    except (DataError, FileNotFoundError) as error:  # unreadable, not UTF-8 or malformed JSON: file and line named
        raise SystemExit(f"error: --config: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SystemExit(f"error: --config {path}{where}: not valid YAML ({getattr(error, 'problem', None) or error})"
                         f". Fix the file.") from None
    if not isinstance(config, dict):
        raise SystemExit(f"error: --config {path}: expected a mapping of flag names to values, got "
                         f"{type(config).__name__}. Write one `flag: value` per line.")
    if config.get("stage", stage) != stage:
        raise SystemExit(f"error: --config {path}: field 'stage' is {config['stage']!r}, but the command trains "
                         f"{stage!r}. Run `python src/train.py {config['stage']} --config {path}`.")
    return {key: value for key, value in config.items()
            if key != "stage" and not (key.endswith("_token") and value == f"<{key.upper()}>")}


def parse_args(argv: list[str]) -> tuple[str, RouterConfig]:
    """``(stage, config)`` from ``<stage> [--config FILE] [--flags]``: the stage's defaults, then the file's values,
    then the flags (each later one wins), as TRL's ``TrlParser`` reads a config file."""
    usage = (f"usage: python src/train.py {{{','.join(STAGES)}}} [--config run.yaml] [--flags]   (--help after the "
             f"stage lists them)")
    if not argv or argv[0] not in STAGES:
        raise SystemExit(usage)
    stage, flags = argv[0], list(argv[1:])
    config_class = STAGES[stage][0]
    parser = HfArgumentParser(config_class)
    if "--config" in flags or any(flag.startswith("--config=") for flag in flags):
        at = next(i for i, flag in enumerate(flags) if flag == "--config" or flag.startswith("--config="))
        if flags[at] == "--config" and at + 1 == len(flags):
            raise SystemExit("error: --config needs a file: --config run.yaml")
        path = flags[at].split("=", 1)[1] if "=" in flags[at] else flags[at + 1]
        del flags[at:at + (1 if "=" in flags[at] else 2)]
        config = read_run_config(path, stage)
        unknown = sorted(set(config) - {field.name for field in dataclasses.fields(config_class) if field.init})
        if unknown:
            raise SystemExit(f"error: --config {path}: {unknown} are not flags of stage {stage!r}. Remove them "
                             f"(`python src/train.py {stage} --help` lists the flags).")
        parser.set_defaults(**config)  # every flag has a default, so none is required
    try:
        (args,) = parser.parse_args_into_dataclasses(flags)
    except (ModuleNotFoundError, ValueError) as error:  # a bad value, or a flag whose optional package is missing
        raise SystemExit(f"error: {error}") from None
    return stage, args


def setup_logging(args: RouterConfig) -> None:
    """INFO to stderr and to <output_dir>/train.log (main process), transformers at --log_level.

    Calling it again (another run in the same process) replaces the handlers of the previous call."""
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        logging.getLogger("transformers").removeHandler(handler)  # no-op for handlers it does not hold
        handler.close()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers = [logging.StreamHandler(sys.stderr)]
    if args.should_log:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(Path(args.output_dir) / "train.log", encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logger.setLevel(logging.INFO if args.should_log else logging.WARNING)
    logger.propagate = False
    transformers.utils.logging.set_verbosity(args.get_process_log_level())
    if len(handlers) > 1:
        transformers.utils.logging.add_handler(handlers[1])


def subsample(records: list[dict], limit: int | None, seed: int | str) -> list[dict]:
    """At most ``limit`` records, a seeded random subset kept in input order."""
    if limit is None or limit >= len(records):
        return records
    keep = sorted(random.Random(seed).sample(range(len(records)), limit))
    return [records[i] for i in keep]


def training_split(args: RouterConfig, split: str) -> list[dict]:
    """The ``split`` ("train" or "eval") records of every --train_datasets set; the train split is cut to
    --train_slice of each set (in file order)."""
    start, end = train_slice_bounds(args.train_slice)
    records = []
    for entry in args.train_datasets:
        set_dir, score_dir = resolve_train_set(entry, args.data_dir)
        rows = load_train_set(set_dir, args.candidate_llms, score_dir=score_dir, split=split)
        if split == "train":
            rows = rows[int(round(start * len(rows))):int(round(end * len(rows)))]
        records += rows
    return records


def load_inputs(args: RouterConfig) -> tuple[list[dict], list[dict], dict[str, list[dict]]]:
    """``(training pool, validation records, test benchmarks)``, all read and checked before any training:
    a bad set, file, candidate or benchmark stops the run here, with the file and the fix named."""
    train_records = training_split(args, "train") if args.do_train else []
    if args.do_train and not train_records and not args.cross_fit_folds:
        raise DataError(f"--train_datasets {' '.join(args.train_datasets)}: no training queries left (every "
                        f"prompt_id is held out in eval_ids.json, or --train_slice {args.train_slice} is empty). "
                        f"Hold out fewer queries or widen --train_slice.")
    eval_records = subsample(training_split(args, "eval"), args.max_eval_samples, args.seed)
    if args.do_train and args.eval_strategy != "no" and not eval_records:
        raise DataError(f"--train_datasets {' '.join(args.train_datasets)}: no validation queries (eval_ids.json "
                        f"is empty); list held-out prompt_ids there, or pass --eval_strategy no.")
    needed = args.do_predict or args.cross_fit_folds
    benchmarks = {name: load_benchmark(name, args.data_dir, args.candidate_llms)
                  for name in args.test_datasets} if needed else {}
    return train_records, eval_records, benchmarks


def is_complete_checkpoint(folder: Path, save_only_model: bool = False) -> bool:
    """Whether the Trainer finished writing ``folder``: its trainer_state.json (written last) parses, and the
    weights and (unless ``save_only_model``) the optimizer, scheduler and RNG states are all there (DeepSpeed:
    its ``latest`` tag). A run killed while writing a checkpoint, or while deleting an old one, leaves a folder
    that fails this."""
    try:
        json.loads((folder / "trainer_state.json").read_text())
        names = {path.name for path in folder.iterdir()}
        if "model.safetensors.index.json" in names:
            shards = set(json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"].values())
            has_weights = shards <= names
        else:
            has_weights = bool(names & {"model.safetensors", "pytorch_model.bin", "latest"})
    except (OSError, ValueError, KeyError):
        return False
    states = save_only_model or "latest" in names or (
        {"optimizer.pt", "scheduler.pt"} <= names and any(name.startswith("rng_state") for name in names))
    return has_weights and states


def last_complete_checkpoint(output_dir: str, save_only_model: bool = False) -> str | None:
    """The newest complete ``checkpoint-<step>`` of ``output_dir`` (``is_complete_checkpoint``), or None."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    steps = sorted((int(path.name.split("-")[1]), path) for path in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
                   if path.is_dir() and path.name.split("-")[1].isdigit())
    for _, path in reversed(steps):
        if is_complete_checkpoint(path, save_only_model):
            return str(path)
        logger.warning("%s is incomplete (the run stopped while writing or deleting it): skipped", path)
    return None


def resume_point(args: RouterConfig, output_dir: str) -> str | None:
    """The checkpoint to resume from in ``output_dir`` (``last-checkpoint``: its newest complete one, if any)."""
    value = args.resume_from_checkpoint
    if value != LAST_CHECKPOINT:
        return value
    last = last_complete_checkpoint(output_dir, args.save_only_model)
    if last:
        logger.info("resuming from %s", last)
    else:
        logger.info("no complete checkpoint in %s: starting afresh", output_dir)
    return last


# the RouterModelConfig fields a run's flags set (train.py flag when it has another name): a checkpoint built with
# other values is another router, whose training a resumed run must not continue
RESUME_FIELDS = {"stage": "stage", "candidate_llms": "--candidate_llms", "loss_type": "--loss_type",
                 "score_normalization": "--score_normalization", "max_seq_length": "--max_length",
                 "max_prompt_length": "--max_prompt_length", "mask_length": "--mask_length",
                 "response_truncation_side": "--response_truncation_side", "routing_head": "--routing_head",
                 "foresight": "--foresight",
                 "model_id_type": "--model_id_type", "pooling": "--pooling", "head_dropout": "--head_dropout"}


def check_resume_config(checkpoint: str, config: RouterModelConfig) -> None:
    """DataError when the router saved in ``checkpoint`` (its ``config.json``) differs from the one this run builds
    (``config``) in a field of ``RESUME_FIELDS``, e.g. a run folder of the prediction head resumed with
    ``--routing_head linear``: the Trainer would load the weights that fit, warn about the rest, and either fail on
    the optimizer state or silently go on training a router of mixed settings. Fields the checkpoint leaves unset
    (written before the field existed) are not compared; a checkpoint without config.json is not checked."""
    if not (Path(checkpoint) / "config.json").exists():
        return
    saved = RouterModelConfig.from_pretrained(checkpoint)
    differing = [(name, getattr(saved, name), getattr(config, name)) for name in RESUME_FIELDS
                 if getattr(saved, name) is not None and getattr(saved, name) != getattr(config, name)]
    if not differing:
        return

    def shown(value):
        return " ".join(map(str, value)) if isinstance(value, list) else str(value)

    fields = ", ".join(f"{name} {shown(old)} (this run: {shown(new)})" for name, old, new in differing)
    flags = " ".join(f"{RESUME_FIELDS[name]} {shown(old)}" for name, old, _ in differing)
    raise DataError(f"{Path(checkpoint) / 'config.json'}: the checkpoint's router differs from this run's: {fields}. "
                    f"Resume it with its own settings ({flags}), or train in another --output_dir.")


def save_eval_results(trainer: RouterTrainer) -> None:
    """``eval_results.json``: the validation metrics of the kept model (the best checkpoint's evaluation in the
    log history when one was kept, else a fresh evaluation), as ``Trainer.save_metrics("eval", ...)`` writes."""
    best = trainer.state.best_model_checkpoint
    results = None
    if best:
        step = int(Path(best).name.split("-")[1])
        results = next((dict(entry) for entry in trainer.state.log_history
                        if entry.get("step") == step and "eval_reward" in entry), None)
    if results is None:
        trainer.progress.label = "validation"
        results = trainer.evaluate()
    results = {name: value for name, value in results.items() if name.startswith("eval_") or name == "epoch"}
    trainer.save_metrics("eval", results, combined=False)


def fit_router(trainer_class: type[RouterTrainer], args: RouterConfig, train_records: list[dict],
               eval_records: list[dict]) -> RouterTrainer:
    """Train (or, with --do_train False, load) the router of ``args.output_dir`` on ``train_records`` (the callers
    draw --max_train_samples' subset, so that the task prior fits the same queries). Training first removes a
    task_prior.json of an earlier run. DataError when the checkpoint it resumes from holds another router
    (``check_resume_config``)."""
    if not args.do_train:
        model, tokenizer = load_router_model(args.output_dir)
        return trainer_class(args, eval_dataset=eval_records, model=model, processing_class=tokenizer)
    stale = Path(args.output_dir) / TASK_PRIOR_FILE
    if args.should_save and stale.exists():  # an earlier run's prior, its weight chosen for an earlier router
        logger.info("removing %s: an earlier run chose its weight for an earlier router", stale)
        stale.unlink()
    logger.info("training on %d queries, validating on %d, in %s", len(train_records), len(eval_records),
                args.output_dir)
    trainer = trainer_class(args, train_dataset=train_records, eval_dataset=eval_records,
                            callbacks=[LogToFile()])
    checkpoint = resume_point(args, args.output_dir)
    if checkpoint:
        check_resume_config(checkpoint, trainer.model.config)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(args.output_dir)
    if eval_records and args.eval_strategy != "no":
        save_eval_results(trainer)
    if trainer.is_world_process_zero():
        trainer.save_state()  # trainer_state.json: every training and validation log
        trainer.create_model_card()  # README.md (save_model wrote one already when it pushed to the hub)
        plot_run(args.output_dir)
        write_json(Path(args.output_dir) / "train_metrics.json", {
            **result.metrics, "best_metric": trainer.state.best_metric,
            "best_model_checkpoint": trainer.state.best_model_checkpoint})
    return trainer


def fit_task_prior(trainer: RouterTrainer, args: RouterConfig, pool: list[dict],
                   eval_records: list[dict]) -> TaskPrior | None:
    """With --task_prior_blend: the task prior fitted on ``pool`` (the queries the router trained on), its weight
    chosen on ``eval_records`` routed by the trained router, saved next to the router (with --do_train False: the
    saved one).
    None without the flag; DataError with --do_train False and without the flag when the folder holds a prior (the
    router would route here otherwise than where it is loaded). ``fit_router`` removes an earlier run's prior
    before training."""
    if not args.task_prior_blend:
        if not args.do_train and (Path(args.output_dir) / TASK_PRIOR_FILE).exists():
            raise DataError(f"{Path(args.output_dir) / TASK_PRIOR_FILE}: this router routes with its task prior "
                            f"(PretrainedRouter, serve.py and calibrate.py blend it in); pass --task_prior_blend True "
                            f"to route with it here too, or delete the file to route with the router alone.")
        return None
    if not args.do_train:
        prior = TaskPrior.load(args.output_dir, len(args.candidate_llms))
        if prior is None:
            raise DataError(f"{args.output_dir}: no task_prior.json to route with (--task_prior_blend True); train "
                            f"with that flag, or drop it.")
        return prior
    prior = TaskPrior().fit(pool, args.bce_threshold)
    weight = prior.choose_weight(eval_records, trainer.route(eval_records, "validation routing for the task prior"))
    if trainer.is_world_process_zero():
        prior.save(args.output_dir)
    logger.info("task prior: weight %.1f chosen on %d validation queries (macro reward per weight: %s)", weight,
                len(eval_records), ", ".join(f"{w}: {r:.4f}" for w, r in prior.curve.items()))
    return prior


def route_records(trainer: RouterTrainer, prior: TaskPrior | None, records: list[dict], label: str) -> np.ndarray:
    """[n, k] the router's logits for ``records``, blended with ``prior`` when there is one."""
    logits = trainer.route(records, label)
    return logits if prior is None else prior.blend_logits([record["prompt"] for record in records], logits)


def run_single(trainer_class: type[RouterTrainer], args: RouterConfig) -> None:
    train_records, eval_records, benchmarks = load_inputs(args)
    train_records = subsample(train_records, args.max_train_samples, args.seed)
    trainer = fit_router(trainer_class, args, train_records, eval_records)
    prior = fit_task_prior(trainer, args, train_records, eval_records)
    if not args.do_predict:
        return
    predictions = {name: runs.prediction_rows(records, route_records(trainer, prior, records, f"routing {name}"))
                   for name, records in benchmarks.items()}
    if trainer.is_world_process_zero():
        print(runs.write_results(args.output_dir, runs.run_name(vars(args), args.output_dir), benchmarks, predictions,
                                 args.data_dir, args.candidate_llms), end="")
        trainer.create_model_card()  # now with the test metrics
    if args.push_to_hub:
        trainer.push_to_hub(commit_message="Router with its test metrics")


def run_cross_fit(trainer_class: type[RouterTrainer], args: RouterConfig) -> None:
    """One router per fold in ``fold_<f>/``; each routes its own fold of every benchmark
    (``data.cross_fit.cross_fit_predict``)."""
    if args.resume_from_checkpoint not in (None, LAST_CHECKPOINT):
        raise SystemExit(f"error: with --cross_fit_folds use --resume_from_checkpoint {LAST_CHECKPOINT} "
                         f"(each fold resumes from its own folder).")
    if args.push_to_hub:
        raise SystemExit("error: --push_to_hub uploads one router, and a cross-fit run trains one per fold on the test "
                         "benchmarks' other folds (for evaluation, not for use): train without --cross_fit_folds to "
                         "push.")
    folds = args.cross_fit_folds
    train_records, eval_records, benchmarks = load_inputs(args)

    def args_of_fold(fold: int) -> RouterConfig:
        fold_args = copy.deepcopy(args)
        fold_args.output_dir = str(Path(args.output_dir) / f"fold_{fold}")
        return fold_args

    def predict_fold(fold: int, pool: list[dict], in_fold: dict[str, list[dict]]) -> dict[str, list[dict]] | None:
        fold_args = args_of_fold(fold)
        fold_eval = eval_records
        if args.cross_fit_eval_fraction:
            kept, held = hold_out_by_source(pool[len(train_records):], args.cross_fit_eval_fraction, args.seed)
            pool, fold_eval = pool[:len(train_records)] + kept, eval_records + held
        if args.resume_from_checkpoint == LAST_CHECKPOINT and runs.has_predictions(fold_args.output_dir, benchmarks):
            logger.info("fold %d: predictions already written, kept", fold)
            return {name: runs.read_predictions(fold_args.output_dir, name) for name in benchmarks}
        logger.info("fold %d/%d: %d training queries (%d from the benchmarks), %d validation queries", fold + 1,
                    folds, len(pool), len(pool) - len(train_records), len(fold_eval))
        if fold > 0:  # a second Trainer in one process: let it build its own Accelerator (DeepSpeed refuses otherwise)
            AcceleratorState._reset_state(reset_partial_state=False)
        pool = subsample(pool, args.max_train_samples, f"{args.seed}:fold{fold}")  # seeded per fold: folds differ
        trainer = fit_router(trainer_class, fold_args, pool, fold_eval)
        prior = fit_task_prior(trainer, fold_args, pool, fold_eval)
        if not args.do_predict:
            return None
        rows = {name: runs.prediction_rows(records, route_records(trainer, prior, records, f"fold {fold} routing {name}"),
                                           fold)
                if records else [] for name, records in in_fold.items()}
        if trainer.is_world_process_zero():
            for name, fold_rows in rows.items():
                runs.write_predictions(fold_args.output_dir, name, fold_rows)
        return rows

    only = None if args.cross_fit_only_fold is None else [args.cross_fit_only_fold]
    predictions = cross_fit_predict(train_records, benchmarks, folds, predict_fold, only)
    if args.should_save:
        plot_run(args.output_dir)  # the folds' curves side by side
        write_fold_eval_results(args.output_dir, folds)
    if predictions is not None and args.should_save:
        print(runs.write_results(args.output_dir, runs.run_name(vars(args), args.output_dir), benchmarks, predictions,
                                 args.data_dir, args.candidate_llms), end="")
        for fold in range(folds):  # the folds' model cards, now with the merged test metrics
            fold_dir = Path(args.output_dir) / f"fold_{fold}"
            write_model_card(fold_dir, trainer_class.stage, RouterModelConfig.from_pretrained(fold_dir), args)


def write_fold_eval_results(output_dir: str, folds: int) -> None:
    """``<output_dir>/eval_results.json`` of a cross-fit run: each validation metric averaged over the folds that
    wrote one, plus ``fold_<f>_<metric>`` per fold."""
    per_fold = {fold: read_json(path) for fold in range(folds)
                if (path := Path(output_dir) / f"fold_{fold}" / "eval_results.json").exists()}
    if not per_fold:
        return
    names = sorted(set.intersection(*(set(values) for values in per_fold.values())))
    merged = {name: float(np.mean([values[name] for values in per_fold.values()])) for name in names}
    merged.update({f"fold_{fold}_{name}": value for fold, values in per_fold.items() for name, value in values.items()})
    write_json(Path(output_dir) / "eval_results.json", merged)


def main(argv: list[str] | None = None) -> None:
    stage, args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args)
    logger.info("python src/train.py %s", " ".join(sys.argv[1:] if argv is None else argv))
    if args.should_save:  # `python src/train.py <stage> --config <output_dir>/run_args.json` runs it again
        runs.write_metadata(args.output_dir, {"stage": stage, **json.loads(args.to_json_string())})
    trainer_class = STAGES[stage][1]
    try:
        if args.cross_fit_folds:
            run_cross_fit(trainer_class, args)
        else:
            run_single(trainer_class, args)
    except (DataError, FileNotFoundError) as error:  # bad input: say what and where, without a traceback
        logger.error("%s", error)
        raise SystemExit(f"error: {error}") from None


def shutdown_distributed() -> None:
    """Tear down the process group of a multi-process launch (torchrun / accelerate) before exiting: a
    process that exits with gloo's threads alive can abort ("terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
    shutdown_distributed()
