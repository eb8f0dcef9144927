"""Reader for the training-set format.

A training set is a folder ``<set>/``:

    instructions.jsonl          one line per query: prompt_id, prompt (other fields are ignored)
    <score_dir>/<llm>.jsonl     one line per query and candidate: prompt_id, response, score
                                (other fields, e.g. the per-test results, are ignored)
    eval_ids.json               the prompt_ids held out for validation (a JSON list)

``load_train_set`` returns records of the contract in ``data/__init__.py`` in instructions order, with
``source`` = the set folder's name (an empty instructions.jsonl is a DataError). ``load_train_sets`` reads several
sets and refuses a split that is empty across all of them.

A training set is named on the command line (``--train_datasets``) as ``<set>/<score dir>``, relative to
``<data_dir>/train`` or absolute, the paper's form (e.g. ``SelfOSSInstructSC2_filtered2/responses``,
``UltraFeedback/Skywork-Reward-Gemma-2-27B-v0.2``); ``resolve_train_set`` splits it. A bare ``<set>`` names
its only score directory.
"""
from __future__ import annotations

import os
from pathlib import Path

from utils.io import DataError, exists, read_json, read_jsonl, require_rows, resolve

from .benchmarks import check_candidates, files_named, make_record, nonempty_text, numeric, text

SPLITS = ("all", "train", "eval")


def _read_instructions(path: Path) -> dict[str, str]:
    """``{prompt_id: prompt}`` in file order, refusing missing, duplicate or empty fields."""
    prompts, first_line = {}, {}
    rows = require_rows(read_jsonl(path), path, "queries",
                        "Write one JSON object per line with a unique prompt_id and the prompt.")
    for lineno, row in enumerate(rows, 1):
        prompt_id = row.get("prompt_id")
        where = f"{path}, line {lineno}, prompt_id {prompt_id!r}"
        nonempty_text(prompt_id, where, "prompt_id", "Give every query a unique string prompt_id.")
        if prompt_id in prompts:
            raise DataError(f"{where}: field 'prompt_id' repeats line {first_line[prompt_id]}. "
                            f"Give every query a unique prompt_id.")
        prompts[prompt_id] = nonempty_text(row.get("prompt"), where, "prompt",
                                           "Write the query text or remove the line.")
        first_line[prompt_id] = lineno
    return prompts


def _read_candidate(path: Path, prompts: dict[str, str]) -> dict[str, tuple[str, float]]:
    """``{prompt_id: (response, score)}`` of one candidate, covering exactly the ids of ``prompts``."""
    answers, first_line = {}, {}
    for lineno, row in enumerate(read_jsonl(path), 1):
        prompt_id = row.get("prompt_id")
        where = f"{path}, line {lineno}, prompt_id {prompt_id!r}"
        if prompt_id not in prompts:
            raise DataError(f"{where}: field 'prompt_id' is not in instructions.jsonl. Remove the line or "
                            f"add the query to instructions.jsonl.")
        if prompt_id in answers:
            raise DataError(f"{where}: field 'prompt_id' repeats line {first_line[prompt_id]}. "
                            f"Keep one response per query.")
        response = text(row.get("response"), where, "response", "Write the candidate's response text.")
        score = numeric(row.get("score"), where, "score", "Score the response (higher is better).")
        answers[prompt_id] = (response, score)
        first_line[prompt_id] = lineno
    missing = [prompt_id for prompt_id in prompts if prompt_id not in answers]
    if missing:
        raise DataError(f"{path}: prompt_id {missing[0]!r} of instructions.jsonl has no line ({len(missing)} "
                        f"missing; fields 'prompt_id', 'response', 'score'). Every candidate needs a response "
                        f"and score for every query.")
    return answers


def _read_eval_ids(path: Path, prompts: dict[str, str]) -> set[str]:
    eval_ids = read_json(path)
    if not isinstance(eval_ids, list) or not all(isinstance(i, str) for i in eval_ids):
        raise DataError(f"{path}: expected a JSON list of prompt_id strings. Fix the file.")
    unknown = [i for i in eval_ids if i not in prompts]
    if unknown:
        raise DataError(f"{path}: prompt_id {unknown[0]!r} is not in instructions.jsonl ({len(unknown)} "
                        f"unknown). Remove it from eval_ids.json or add the query.")
    return set(eval_ids)


def score_dirs(set_dir: Path) -> list[str]:
    """Sorted names of the sub-folders of ``set_dir`` that hold candidate files (``*.jsonl[.gz]``)."""
    if not set_dir.is_dir():
        return []
    return sorted(entry.name for entry in set_dir.iterdir() if entry.is_dir() and files_named(entry, ".jsonl"))


def resolve_train_set(entry: str, data_dir: str | os.PathLike) -> tuple[Path, str]:
    """``(set folder, score directory)`` of a ``--train_datasets`` entry (see the module docstring).

    Raises DataError naming the entry when it is not a training set, when its score directory is missing
    (listing the ones present), or when a bare ``<set>`` has several score directories."""
    path = Path(entry) if Path(entry).is_absolute() else Path(data_dir) / "train" / entry
    if exists(path / "instructions.jsonl"):
        found = score_dirs(path)
        if len(found) == 1:
            return path, found[0]
        if not found:
            raise DataError(f"--train_datasets {entry!r}: {path} has no score directory (a sub-folder with "
                            f"<llm>.jsonl files). Score the responses first (compute_reward.sh).")
        raise DataError(f"--train_datasets {entry!r}: {path} has several score directories ({', '.join(found)}); "
                        f"name one, e.g. {entry.rstrip('/')}/{found[0]}.")
    if exists(path.parent / "instructions.jsonl"):
        if not path.is_dir():
            found = score_dirs(path.parent)
            raise DataError(f"--train_datasets {entry!r}: score directory {path} not found; {path.parent} has "
                            f"{', '.join(found) if found else 'none'}. Name one of them as <set>/<score dir>.")
        return path.parent, path.name
    train_dir = Path(data_dir) / "train"
    available = sorted(p.name for p in train_dir.iterdir() if p.is_dir()) if train_dir.is_dir() else []
    raise DataError(f"--train_datasets {entry!r}: neither {path} nor {path.parent} holds instructions.jsonl. "
                    f"Name a training set as <set>/<score dir> under {Path(data_dir) / 'train'} "
                    f"(there: {', '.join(available) or 'nothing'}) or give an absolute folder.")


def load_train_set(set_dir: str | os.PathLike, candidate_llms: list[str], score_dir: str = "responses",
                   split: str = "all") -> list[dict]:
    """Records of the training set in ``set_dir`` for ``candidate_llms`` (in that order).

    ``score_dir`` is the sub-folder holding ``<llm>.jsonl``; ``split`` is "all", "train" (the queries not
    in eval_ids.json) or "eval" (those in it).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    candidates = check_candidates(candidate_llms)
    folder = Path(set_dir)
    prompts = _read_instructions(resolve(folder / "instructions.jsonl"))

    selected_ids = list(prompts)
    if split != "all":
        if not exists(folder / "eval_ids.json"):
            raise DataError(f"{folder / 'eval_ids.json'}: not found, so split={split!r} is undefined. Add "
                            f"eval_ids.json (a JSON list of held-out prompt_ids) or use split='all'.")
        eval_ids = _read_eval_ids(resolve(folder / "eval_ids.json"), prompts)
        selected_ids = [i for i in prompts if (i in eval_ids) == (split == "eval")]

    answers = {}
    for llm in candidates:
        candidate_path = folder / score_dir / f"{llm}.jsonl"
        if not exists(candidate_path):
            found = files_named(folder / score_dir, ".jsonl")
            raise DataError(f"{candidate_path}: candidate file not found. Candidates in {folder / score_dir}: "
                            f"{found or 'none'}. Pick candidate_llms among them or add the file.")
        answers[llm] = _read_candidate(resolve(candidate_path), prompts)

    source = folder.absolute().name
    return [
        make_record(prompt_id, prompts[prompt_id], source,
                    [answers[llm][prompt_id][0] for llm in candidates],
                    [answers[llm][prompt_id][1] for llm in candidates])
        for prompt_id in selected_ids
    ]


def load_train_sets(sets: list[tuple[str | os.PathLike, str]], candidate_llms: list[str],
                    split: str = "all") -> list[dict]:
    """The ``split`` records of every ``(set folder, score directory)`` in ``sets`` (``resolve_train_set``),
    concatenated in that order.

    One set may hold only validation queries (or none), but when the split is empty across all the sets it is a
    DataError naming their eval_ids.json files: a "train" split with every query held out, an "eval" split with
    none held out.
    """
    records = [record for set_dir, score_dir in sets
               for record in load_train_set(set_dir, candidate_llms, score_dir=score_dir, split=split)]
    if sets and not records:
        raise empty_split_error([set_dir for set_dir, _ in sets], split)
    return records


def empty_split_error(set_dirs: list[str | os.PathLike], split: str) -> DataError:
    """The error for a ``split`` that is empty across the training sets ``set_dirs``."""
    files = ", ".join(str(Path(set_dir) / "eval_ids.json") for set_dir in set_dirs)
    held_out = "every query" if split == "train" else "no query"
    return DataError(f"{files}: split {split!r} is empty: eval_ids.json holds out {held_out} of the training "
                     f"set(s). List some, but not all, prompt_ids of a set in its eval_ids.json.")
