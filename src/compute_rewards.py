"""Score candidate responses for the routers (Fire entry point).

    python src/compute_rewards.py --scorer unit_tests|math_answer|reward_model --data_dir <set> \\
        --llms LLM1,LLM2 [--response_dir responses] [--score_dir responses] \\
        [--model_path RM (reward_model)] [--batch_size 8 (reward_model)] [--max_length 4096 (reward_model)] \\
        [--num_workers N (unit_tests)] [--test_time_s 5 (unit_tests)] [--memory_mb 1024 (unit_tests)] \\
        [--allow_unconfined_code (unit_tests, without bubblewrap: runs model code UNCONFINED)]

Reads ``<set>/instructions.jsonl`` and ``<set>/<response_dir>/<llm>.jsonl`` (prompt_id, response, ...)
and writes ``<set>/<score_dir>/<llm>.jsonl``: each response record with the scorer's fields added
(``score`` among them), which ``data.load_train_set(set, llms, score_dir)`` reads. With the default
folders the responses file is rewritten in place, with its scores. Progress is kept in
``<set>/<score_dir>/.<llm>.<scorer>.partial.jsonl`` so an interrupted run resumes; the final file is
written atomically and the progress file removed.

``--scorer unit_tests`` runs each response's program under bubblewrap (``rewards.sandbox``); where
bubblewrap cannot run it stops before any work, unless ``--allow_unconfined_code`` says to run model
code without it (it could then read, change and delete whatever this user can).

Every input is checked before the scorer is built: the instructions (each row usable by the scorer: a reference
answer for math_answer, tests for unit_tests) and each candidate's responses (one line per prompt of
instructions.jsonl, no repeats, no unknown ids), and that ``<set>/<score_dir>`` can be written.
"""
from __future__ import annotations

import json
from pathlib import Path

import fire
from tqdm import tqdm

from args import as_list
from rewards import SCORERS, build_scorer
from utils.generation import ResumableJsonl, read_instructions
from utils.io import DataError, exists, read_jsonl, require_rows, resolve, writable_dir, write_jsonl

CHUNK = 64  # responses scored between two progress writes


def _scorer_options(scorer: str, model_path, batch_size, max_length, num_workers, test_time_s, memory_mb,
                    allow_unconfined_code):
    if scorer == "reward_model":
        if model_path is None:
            raise ValueError("--scorer reward_model needs --model_path: pass a Hugging Face sequence-classification "
                             "reward model (a folder or hub id).")
        return {"model_path": model_path, "batch_size": batch_size, "max_length": max_length}
    if scorer == "unit_tests":
        from rewards.sandbox import SandboxLimits
        return {"limits": SandboxLimits(test_time_s=test_time_s, memory_mb=memory_mb), "num_workers": num_workers,
                "allow_unconfined_code": allow_unconfined_code}
    return {}


def read_responses(path: Path, instructions: dict[str, dict]) -> list[dict]:
    """The response rows of one candidate, after checking that they answer every prompt of ``instructions`` exactly
    once (field ``prompt_id``) with a string ``response``; DataError naming the file, line and field otherwise."""
    if not exists(path):
        raise DataError(f"{path}: responses not found (nor {path.name}.gz). Check --llms and --response_dir, or "
                        f"generate them with src/generate_responses.py.")
    path = resolve(path)
    rows = require_rows(read_jsonl(path), path, "responses",
                        "Generate them with src/generate_responses.py (one line per prompt).")
    first_line: dict[str, int] = {}
    for lineno, row in enumerate(rows, 1):
        prompt_id = row.get("prompt_id")
        if prompt_id not in instructions:
            raise DataError(f"{path}, line {lineno}: field 'prompt_id' ({prompt_id!r}) is not in "
                            f"instructions.jsonl. Remove the line or add the query.")
        if prompt_id in first_line:
            raise DataError(f"{path}, line {lineno}, prompt_id {prompt_id!r}: field 'prompt_id' repeats line "
                            f"{first_line[prompt_id]}. Keep one response per prompt: delete one of the two lines.")
        if not isinstance(row.get("response"), str):
            raise DataError(f"{path}, line {lineno}, prompt_id {prompt_id!r}: field 'response' is "
                            f"missing or not a string. Regenerate the response.")
        first_line[prompt_id] = lineno
    missing = [prompt_id for prompt_id in instructions if prompt_id not in first_line]
    if missing:
        raise DataError(f"{path}: no response for {len(missing)} of the {len(instructions)} prompts of "
                        f"instructions.jsonl (field 'prompt_id'; e.g. {missing[:3]}). Generate the missing ones "
                        f"first (src/generate_responses.py resumes and adds only those): a scored file must cover "
                        f"every prompt.")
    return rows


def check_instructions(scorer: str, instructions: list[dict], path: Path) -> None:
    """Run the scorer's own check of an instruction row (its reference answer, its tests) on every row, so a row the
    scorer cannot use fails before any scoring, with the file and line."""
    if scorer == "math_answer":
        from rewards.math_answer import reference_of as check
    elif scorer == "unit_tests":
        from rewards.unit_tests import instruction_tests as check
    else:
        return
    for lineno, row in enumerate(instructions, 1):
        try:
            check(row)
        except DataError as error:
            raise DataError(f"{path}, line {lineno}: {error}") from None


def score_candidate(scorer, name: str, set_dir: Path, llm: str, instructions: dict[str, dict],
                    response_dir: str, score_dir: str) -> dict:
    """Score one candidate's responses; returns its summary (scored, mean_score, errors)."""
    responses = read_responses(set_dir / response_dir / f"{llm}.jsonl", instructions)
    target = set_dir / score_dir / f"{llm}.jsonl"
    progress_path = target.with_name(f".{llm}.{name}.partial.jsonl")
    with ResumableJsonl(progress_path) as progress:
        pending = [row for row in responses if row["prompt_id"] not in progress.done_ids]
        with tqdm(total=len(responses), initial=len(responses) - len(pending), unit="response", desc=llm) as bar:
            for first in range(0, len(pending), CHUNK):
                chunk = pending[first:first + CHUNK]
                fields = scorer.score([instructions[row["prompt_id"]] for row in chunk],
                                      [row["response"] for row in chunk])
                progress.append([{**row, **extra} for row, extra in zip(chunk, fields)])
                bar.update(len(chunk))
    scored = {row["prompt_id"]: row for row in read_jsonl(progress_path)}
    rows = [scored[row["prompt_id"]] for row in responses]
    write_jsonl(target, rows)
    progress_path.unlink()
    scores = [row["score"] for row in rows]
    return {"scored": len(rows), "mean_score": round(sum(scores) / len(scores), 4) if scores else None,
            "errors": sum(1 for row in rows if row.get("error"))}


def main(scorer: str, data_dir: str, llms, response_dir: str = "responses", score_dir: str = "responses",
         model_path: str | None = None, batch_size: int = 8, max_length: int = 4096,
         num_workers: int | None = None, test_time_s: float = 5.0, memory_mb: int = 1024,
         allow_unconfined_code: bool = False) -> None:
    if scorer not in SCORERS:
        raise ValueError(f"--scorer must be one of {SCORERS}, got {scorer!r}. Pass one of those.")
    llms = as_list(llms)
    if not llms:
        raise ValueError("--llms is empty; name the candidates whose responses to score (separated by commas).")
    set_dir = Path(data_dir)
    if not set_dir.is_dir():
        raise DataError(f"{set_dir}: --data_dir is not a folder. Pass the set folder that holds instructions.jsonl "
                        f"and {response_dir}/<llm>.jsonl.")
    options = _scorer_options(scorer, model_path, batch_size, max_length, num_workers, test_time_s, memory_mb,
                              allow_unconfined_code)
    # Every input is checked before the scorer is built and before any response is scored.
    instructions_path = resolve(set_dir / "instructions.jsonl")
    rows = read_instructions(instructions_path)
    check_instructions(scorer, rows, instructions_path)
    instructions = {row["prompt_id"]: row for row in rows}
    for llm in llms:
        read_responses(set_dir / response_dir / f"{llm}.jsonl", instructions)
    writable_dir(set_dir / score_dir, "--score_dir")
    scorer_ = build_scorer(scorer, **options)
    summary = {llm: score_candidate(scorer_, scorer, set_dir, llm, instructions, response_dir, score_dir)
               for llm in llms}
    print(json.dumps(summary))


if __name__ == "__main__":
    fire.Fire(main)
