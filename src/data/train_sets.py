"""Reader for the training-set format.

A training set is a folder ``<set>/``:

    instructions.jsonl          one line per query: prompt_id, prompt (other fields are ignored)
    <score_dir>/<llm>.jsonl     one line per query and candidate: prompt_id, response, score
                                (other fields, e.g. the per-test results, are ignored)
    eval_ids.json               the prompt_ids held out for validation (a JSON list)

``load_train_set`` returns records of the contract in ``data/__init__.py`` in instructions order, with
``source`` = the set folder's name (an empty instructions.jsonl is a DataError). ``load_train_sets`` reads several
sets and refuses a split that is empty across all of them.
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


def load_train_sets(set_dirs: list[str | os.PathLike], candidate_llms: list[str], score_dir: str = "responses",
                    split: str = "all") -> list[dict]:
    """The ``split`` records of every set in ``set_dirs``, concatenated in that order.

    One set may hold only validation queries (or none), but when the split is empty across all the sets it is a
    DataError naming their eval_ids.json files: a "train" split with every query held out, an "eval" split with
    none held out.
    """
    records = [record for set_dir in set_dirs
               for record in load_train_set(set_dir, candidate_llms, score_dir=score_dir, split=split)]
    if set_dirs and not records:
        raise empty_split_error(set_dirs, split)
    return records


def empty_split_error(set_dirs: list[str | os.PathLike], split: str) -> DataError:
    """The error for a ``split`` that is empty across the training sets ``set_dirs``."""
    files = ", ".join(str(Path(set_dir) / "eval_ids.json") for set_dir in set_dirs)
    held_out = "every query" if split == "train" else "no query"
    return DataError(f"{files}: split {split!r} is empty: eval_ids.json holds out {held_out} of the training "
                     f"set(s). List some, but not all, prompt_ids of a set in its eval_ids.json.")
