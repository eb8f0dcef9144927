"""Readers for the seven test benchmarks of the paper's released data.

Each benchmark folder ``<data_dir>/test/<Benchmark>`` keeps the files its official evaluation wrote;
``load_benchmark`` turns them into one record per query (the contract in ``data/__init__.py``), with the
candidates' responses and scores in ``candidate_llms`` order. Formats, as released:

    AlpacaEval  instructions.jsonl (instruction, reference = gpt4_1106_preview's output);
                <llm>/model_outputs.json; <llm>/weighted_alpaca_eval_gpt4_turbo/annotations.json
                (output_1 = the reference, output_2 = the candidate, preference in [1, 2]; as alpaca_eval reads
                them, 0 is the older encoding of a draw (1.5) and null a missing verdict, left out of the metrics)
    ArenaHard   question.jsonl; model_answer/<llm>.jsonl; model_judgment/<llm>.jsonl with two games per
                question: game 1 puts the gpt-4-0314 baseline in slot A and the candidate in slot B, game 2
                swaps them (checked against the judge prompts of the released files)
    MT-Bench    question.jsonl; judgments/gpt-4-0125-preview_judge_<llm>_single.jsonl (one row per turn;
                the turn-1 judge prompt quotes the candidate's turn-1 answer; score -1 = judge parse failure)
    GSM8k, MATH         <llm>.json: details[id] with prompt[0].prompt, origin_prediction, correct
    HumanEval, MBPP     predictions/<llm>.json: [id] origin_prompt[0].prompt, prediction;
                        results/<llm>.json: details[id].is_correct

``BENCHMARKS`` (at the end) is the registry: one ``Benchmark`` entry per benchmark names its reader, the
candidates its folder holds, its metric family (``metrics.METRICS``) and, in words, its per-query score and
headline metric. Adding a benchmark is one entry (plus its reader when no existing one fits its files).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from utils.alpaca_lc import read_preference
from utils.io import DataError, read_json, read_jsonl, require_rows, resolve

logger = logging.getLogger(__name__)

PAPER_CANDIDATES = [
    "Yi-1.5-34B-Chat",
    "internlm2_5-20b-chat",
    "Phi-3-medium-4k-instruct",
    "Llama-3.1-8B-Instruct",
    "Qwen2.5-Coder-7B-Instruct",
]

ALPACA_ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"
ALPACA_REFERENCE_MODEL = "gpt4_1106_preview"
MT_BENCH_JUDGE_PREFIX = "gpt-4-0125-preview_judge_"
MT_BENCH_JUDGE_SUFFIX = "_single.jsonl"
MT_BENCH_ANSWER_START = "[The Start of Assistant's Answer]\n"
MT_BENCH_ANSWER_END = "\n[The End of Assistant's Answer]"

MT_BENCH_PARSE_FAILURE = -1  # the judge's score when its rating could not be parsed (FastChat)
# Routing scores of answers the judge left without a usable verdict. The metrics leave those answers out, as the
# official scorers do; for routing they count as the worst outcome, so that neither the oracle nor a trained router
# prefers an answer of unknown quality to a judged one.
MT_BENCH_UNJUDGED_SCORE = 1.0  # both turns -1: the lowest score of the judge's 1-10 scale
ALPACA_UNJUDGED_SCORE = 0.0    # preference null: a loss to the reference (preference 1)

# ArenaHard verdicts, the one table of them: the judge writes "A>>B" (A much better), "A>B", "A=B", "B>A", "B>>A".
# In game 1 the baseline (gpt-4-0314) is A and the candidate B; in game 2 the slots are swapped. A verdict is read
# as the candidate's result in its slot, then as a routing outcome (``arena_score``) and as battles against the
# baseline (``metrics``: a strong result counts ARENA_STRONG_BATTLES battles, a weak one 1, a tie 1 tie).
ARENA_STRONG_BATTLES = 3
ARENA_RESULT_AS_B = {"B>>A": "strong win", "B>A": "win", "A=B": "tie", "A>B": "loss", "A>>B": "strong loss"}
ARENA_RESULT_AS_A = {"A>>B": "strong win", "A>B": "win", "A=B": "tie", "B>A": "loss", "B>>A": "strong loss"}
ARENA_OUTCOME = {"strong win": 1.0, "win": 0.75, "tie": 0.5, "loss": 0.25, "strong loss": 0.0}
ARENA_BATTLES = {"strong win": (ARENA_STRONG_BATTLES, 0, 0), "win": (1, 0, 0), "tie": (0, 0, 1), "loss": (0, 1, 0),
                 "strong loss": (0, ARENA_STRONG_BATTLES, 0)}  # (wins, losses, ties) of the candidate


# --------------------------------------------------------------------------------------------------
# Record helpers shared with the training-set reader
# --------------------------------------------------------------------------------------------------

def make_record(prompt_id: str, prompt: str, source: str, responses: list[str], scores: list[float],
                **benchmark_fields: Any) -> dict:
    """One record of the contract; ``best_model_idx`` is the first index of the highest score."""
    return {
        "prompt_id": prompt_id,
        "prompt": prompt,
        "source": source,
        "responses": responses,
        "scores": scores,
        "best_model_idx": scores.index(max(scores)),
        **benchmark_fields,
    }


def numeric(value: Any, where: str, field: str, fix: str) -> float:
    """``value`` as a finite float; bools, strings, None, NaN and infinities raise a DataError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{where}: field '{field}' must be a finite number, got {value!r}. {fix}")
    return float(value)


def nonempty_text(value: Any, where: str, field: str, fix: str) -> str:
    """``value`` if it is a string with some non-space character, else a DataError."""
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field '{field}' must be a non-empty string, got {value!r}. {fix}")
    return value


def text(value: Any, where: str, field: str, fix: str) -> str:
    """``value`` if it is a string (possibly empty: a candidate may answer nothing), else a DataError."""
    if not isinstance(value, str):
        raise DataError(f"{where}: field '{field}' must be a string, got {value!r}. {fix}")
    return value


def check_candidates(candidate_llms: list[str]) -> list[str]:
    """The candidate list as given, after checking it is a non-empty list of distinct names."""
    if isinstance(candidate_llms, str) or not candidate_llms:
        raise ValueError(f"candidate_llms must be a non-empty list of model names, got {candidate_llms!r}.")
    duplicates = sorted({llm for llm in candidate_llms if list(candidate_llms).count(llm) > 1})
    if duplicates:
        raise ValueError(f"candidate_llms lists {duplicates} more than once; name each candidate once.")
    return list(candidate_llms)


def files_named(folder: Path, suffix: str) -> list[str]:
    """Sorted names ``X`` of the files ``X + suffix`` or ``X + suffix + ".gz"`` in ``folder``."""
    if not folder.is_dir():
        return []
    names = set()
    for entry in os.listdir(folder):
        for ending in (suffix, suffix + ".gz"):
            if entry.endswith(ending) and (folder / entry).is_file():
                names.add(entry[: -len(ending)])
    return sorted(names)


def natural_id_order(ids) -> list[str]:
    """Ids sorted numerically when they are all digits ("2" before "10"), else as strings."""
    ids = list(ids)
    if all(i.isdigit() for i in ids):
        return sorted(ids, key=int)
    return sorted(ids)


# --------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------

def benchmark_dir(name: str, data_dir: str | os.PathLike) -> Path:
    """``<data_dir>/test/<name>``, after checking the name and that the folder exists."""
    if name not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)} (data.BENCHMARKS).")
    folder = Path(data_dir) / "test" / name
    if not folder.is_dir():
        raise DataError(f"{folder}: benchmark folder not found. data_dir must hold test/<Benchmark>: "
                        f"pass the decompressed data/ (`bash decompress_data.sh`) or compressed_data/.")
    return folder


# A record pack (``data.packs``): the readers' output in one file per benchmark, with its description.
PACK_RECORDS, PACK_DESCRIPTION = "records.jsonl.gz", "pack.json"


def _is_pack(folder: Path) -> bool:
    return (folder / PACK_DESCRIPTION).exists() and (folder / PACK_RECORDS).exists()


def _read_pack(folder: Path, candidates: list[str]) -> list[dict]:
    """A pack's records for ``candidates`` (a subset of the pack's, in any order: k-lists are re-indexed)."""
    packed = read_json(folder / PACK_DESCRIPTION).get("candidate_llms") or []
    index = [packed.index(llm) for llm in candidates]
    records = []
    for record in read_jsonl(folder / PACK_RECORDS):
        for field, value in list(record.items()):
            if isinstance(value, list) and len(value) == len(packed):
                record[field] = [value[i] for i in index]
        record["best_model_idx"] = max(range(len(index)), key=lambda c: (record["scores"][c], -c))
        records.append(record)
    return records


def available_candidates(name: str, data_dir: str | os.PathLike) -> list[str]:
    """The candidate LLMs whose files ``name`` holds under ``data_dir`` (or whose records its pack holds), sorted."""
    folder = benchmark_dir(name, data_dir)
    if _is_pack(folder):
        return sorted(read_json(folder / PACK_DESCRIPTION).get("candidate_llms") or [])
    return sorted(BENCHMARKS[name].candidates(folder))


def load_benchmark(name: str, data_dir: str | os.PathLike, candidate_llms: list[str]) -> list[dict]:
    """Records of benchmark ``name`` (one of BENCHMARKS) for ``candidate_llms``, in that order.

    ``data_dir`` holds ``test/<name>`` (the decompressed ``data/``, the released ``compressed_data/``, or a record
    pack: ``data.packs``). A candidate the benchmark lacks is a DataError listing the available ones.
    """
    candidates = check_candidates(candidate_llms)
    folder = benchmark_dir(name, data_dir)
    available = available_candidates(name, data_dir)
    missing = [llm for llm in candidates if llm not in available]
    if missing:
        raise DataError(f"{folder}: no files for candidate(s) {missing}. Available candidates for {name}: "
                        f"{available}. Pick candidate_llms among them.")
    if _is_pack(folder):
        return _read_pack(folder, candidates)
    return BENCHMARKS[name].read(folder, candidates)


# --------------------------------------------------------------------------------------------------
# AlpacaEval
# --------------------------------------------------------------------------------------------------

def _by_instruction(rows: Any, path: Path, what: str) -> dict[str, dict]:
    """Index a JSON list of AlpacaEval rows by their instruction text, refusing duplicates."""
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of {what}, got {type(rows).__name__}. "
                        f"Regenerate the file with alpaca_eval.")
    indexed = {}
    for position, row in enumerate(rows):
        where = f"{path}, line {position + 1}" if ".jsonl" in path.name else f"{path}, entry {position}"
        instruction = nonempty_text(row.get("instruction") if isinstance(row, dict) else None, where,
                                    "instruction", "Each entry needs the AlpacaEval instruction text.")
        if instruction in indexed:
            raise DataError(f"{where}: field 'instruction' repeats an earlier entry ({instruction[:60]!r}). "
                            f"Keep one {what} per instruction.")
        indexed[instruction] = row
    return indexed


def _check_same_instructions(indexed: dict[str, dict], expected: dict[str, str], path: Path) -> None:
    missing = [i for i in expected if i not in indexed]
    extra = [i for i in indexed if i not in expected]
    if missing or extra:
        problem = (f"misses {len(missing)} instruction(s) of instructions.jsonl, e.g. "
                   f"{expected[missing[0]]} ({missing[0][:60]!r})" if missing else
                   f"has {len(extra)} instruction(s) not in instructions.jsonl, e.g. {extra[0][:60]!r}")
        raise DataError(f"{path}: field 'instruction' {problem}. Every candidate must answer exactly the "
                        f"instructions of instructions.jsonl; regenerate or replace the file.")


def _load_alpaca_eval(folder: Path, candidates: list[str]) -> list[dict]:
    instructions_path = resolve(folder / "instructions.jsonl")
    instructions = require_rows(read_jsonl(instructions_path), instructions_path, "instructions",
                                "Write one JSON object per line with the instruction and the reference output.")
    by_text = _by_instruction(instructions, instructions_path, "instruction")
    labels = {instruction: f"prompt_id {position}" for position, instruction in enumerate(by_text)}

    outputs, preferences = {}, {}
    for llm in candidates:
        outputs_path = resolve(folder / llm / "model_outputs.json")
        annotations_path = resolve(folder / llm / ALPACA_ANNOTATOR / "annotations.json")
        model_outputs = _by_instruction(read_json(outputs_path), outputs_path, "model output")
        annotations = _by_instruction(read_json(annotations_path), annotations_path, "annotation")
        _check_same_instructions(model_outputs, labels, outputs_path)
        _check_same_instructions(annotations, labels, annotations_path)
        outputs[llm], preferences[llm] = {}, {}
        for instruction, row in model_outputs.items():
            where = f"{outputs_path}, {labels[instruction]}"
            outputs[llm][instruction] = text(row.get("output"), where, "output",
                                             "Each model output needs the candidate's answer text.")
            annotation = annotations[instruction]
            where = f"{annotations_path}, {labels[instruction]}"
            if annotation.get("generator_1") != ALPACA_REFERENCE_MODEL:
                raise DataError(f"{where}: field 'generator_1' is {annotation.get('generator_1')!r}, not the "
                                f"reference {ALPACA_REFERENCE_MODEL!r}. Annotate against {ALPACA_REFERENCE_MODEL}.")
            if annotation.get("output_1") != by_text[instruction].get("reference"):
                raise DataError(f"{where}: field 'output_1' differs from the reference in instructions.jsonl. "
                                f"Annotate against the same reference outputs.")
            if annotation.get("output_2") != outputs[llm][instruction]:
                raise DataError(f"{where}: field 'output_2' differs from {outputs_path.name}'s output. The "
                                f"annotations must judge the candidate's released outputs; re-annotate.")
            preferences[llm][instruction] = read_preference(annotation.get("preference"), where)

    records = []
    for position, (instruction, row) in enumerate(by_text.items()):
        reference = text(row.get("reference"), f"{instructions_path}, line {position + 1}", "reference",
                         f"Each instruction needs {ALPACA_REFERENCE_MODEL}'s reference output.")
        responses = [outputs[llm][instruction] for llm in candidates]
        prefs = [preferences[llm][instruction] for llm in candidates]
        records.append(make_record(
            str(position), instruction, "AlpacaEval", responses,
            [ALPACA_UNJUDGED_SCORE if math.isnan(p) else p - 1.0 for p in prefs],
            preferences=prefs,
            output_lengths=[len(response) for response in responses],
            reference_output=reference,
            reference_length=len(reference),
        ))
    return records


# --------------------------------------------------------------------------------------------------
# ArenaHard
# --------------------------------------------------------------------------------------------------

def _rows_by_question(path: Path, read_row: Callable[[dict, str], Any], question_ids: dict) -> dict:
    """``{question_id: read_row(row, where)}`` for a JSON Lines file, refusing duplicate or unknown ids."""
    by_id = {}
    for lineno, row in enumerate(read_jsonl(path), 1):
        question_id = row.get("question_id")
        where = f"{path}, line {lineno}, question_id {question_id!r}"
        if question_id not in question_ids:
            raise DataError(f"{where}: field 'question_id' is not in question.jsonl. Remove the line or use "
                            f"the matching question.jsonl.")
        if question_id in by_id:
            raise DataError(f"{where}: field 'question_id' repeats an earlier line. Keep one line per question.")
        by_id[question_id] = read_row(row, where)
    return by_id


def _arena_answer(row: dict, where: str) -> str:
    try:
        content = row["choices"][0]["turns"][0]["content"]
    except (KeyError, IndexError, TypeError):
        raise DataError(f"{where}: field 'choices[0].turns[0].content' is missing. Regenerate the answer "
                        f"with arena-hard's gen_answer.") from None
    return text(content, where, "choices[0].turns[0].content", "Regenerate the answer.")


def _arena_verdicts(row: dict, where: str) -> list[str | None]:
    games = row.get("games")
    if not isinstance(games, list) or len(games) != 2 or not all(isinstance(g, dict) for g in games):
        raise DataError(f"{where}: field 'games' must list the two games (baseline first, then swapped). "
                        f"Re-run arena-hard's gen_judgment for this question.")
    verdicts = [game.get("score") for game in games]
    for game, verdict in enumerate(verdicts):
        if verdict is not None and verdict not in ARENA_RESULT_AS_B:
            raise DataError(f"{where}: field 'games[{game}].score' is {verdict!r}, not one of "
                            f"{sorted(ARENA_RESULT_AS_B)} or null. Re-run the judgment.")
    return verdicts


def arena_score(verdicts: list[str | None]) -> float:
    """The candidate's mean outcome over the two games; a missing (None) verdict counts as 0."""
    game1, game2 = verdicts
    outcome1 = ARENA_OUTCOME[ARENA_RESULT_AS_B[game1]] if game1 is not None else 0.0
    outcome2 = ARENA_OUTCOME[ARENA_RESULT_AS_A[game2]] if game2 is not None else 0.0
    return (outcome1 + outcome2) / 2


def _read_questions(folder: Path, read_question: Callable[[dict, str], Any]) -> dict:
    """``{question_id: read_question(row, where)}`` for ``question.jsonl``, each id present and used once."""
    path = resolve(folder / "question.jsonl")
    questions = {}
    rows = require_rows(read_jsonl(path), path, "questions",
                        "Write one JSON object per line with its question_id and turns.")
    for lineno, row in enumerate(rows, 1):
        question_id = row.get("question_id")
        where = f"{path}, line {lineno}, question_id {question_id!r}"
        if question_id is None or question_id in questions:
            raise DataError(f"{where}: field 'question_id' must be present and used once. Fix the line.")
        questions[question_id] = read_question(row, where)
    return questions


def _arena_question(row: dict, where: str) -> str:
    try:
        prompt = row["turns"][0]["content"]
    except (KeyError, IndexError, TypeError):
        raise DataError(f"{where}: field 'turns[0].content' is missing. Fix the line.") from None
    return nonempty_text(prompt, where, "turns[0].content", "Fix the line.")


def _load_arena_hard(folder: Path, candidates: list[str]) -> list[dict]:
    questions = _read_questions(folder, _arena_question)

    answers, verdicts = {}, {}
    for llm in candidates:
        answers_path = resolve(folder / "model_answer" / f"{llm}.jsonl")
        judgments_path = resolve(folder / "model_judgment" / f"{llm}.jsonl")
        answers[llm] = _rows_by_question(answers_path, _arena_answer, questions)
        verdicts[llm] = _rows_by_question(judgments_path, _arena_verdicts, questions)
        unanswered = [q for q in verdicts[llm] if q not in answers[llm]]
        if unanswered:
            raise DataError(f"{judgments_path}: question_id {unanswered[0]!r} is judged but has no answer in "
                            f"{answers_path.name} (field 'question_id'). Use matching answer and judgment files.")

    judged_by_all = [q for q in questions if all(q in verdicts[llm] for llm in candidates)]
    if len(judged_by_all) < len(questions):
        unjudged = {llm: len(questions) - len(verdicts[llm]) for llm in candidates
                    if len(verdicts[llm]) < len(questions)}
        logger.warning("ArenaHard: skipping %d of %d questions not judged for every candidate "
                       "(questions missing per candidate: %s)",
                       len(questions) - len(judged_by_all), len(questions), unjudged)

    records = []
    for question_id in judged_by_all:
        question_verdicts = [verdicts[llm][question_id] for llm in candidates]
        records.append(make_record(
            question_id, questions[question_id], "ArenaHard",
            [answers[llm][question_id] for llm in candidates],
            [arena_score(v) for v in question_verdicts],
            verdicts=question_verdicts,
        ))
    return records


# --------------------------------------------------------------------------------------------------
# MT-Bench
# --------------------------------------------------------------------------------------------------

def _turn1_answer(judge_prompt: Any, where: str) -> str:
    """The candidate's turn-1 answer quoted in the turn-1 judge prompt."""
    if (not isinstance(judge_prompt, str) or judge_prompt.count(MT_BENCH_ANSWER_START) != 1
            or judge_prompt.count(MT_BENCH_ANSWER_END) != 1):
        raise DataError(f"{where}: field 'user_prompt' must quote the answer once between "
                        f"{MT_BENCH_ANSWER_START.strip()!r} and {MT_BENCH_ANSWER_END.strip()!r}. "
                        f"Use FastChat's single-answer judge output.")
    start = judge_prompt.index(MT_BENCH_ANSWER_START) + len(MT_BENCH_ANSWER_START)
    return judge_prompt[start: judge_prompt.index(MT_BENCH_ANSWER_END, start)]


def _mt_bench_question(row: dict, where: str) -> dict:
    turns = row.get("turns")
    if not isinstance(turns, list) or len(turns) != 2:
        raise DataError(f"{where}: field 'turns' must list the two user turns. Fix the line.")
    nonempty_text(turns[0], where, "turns[0]", "Fix the line.")
    return row


def _load_mt_bench(folder: Path, candidates: list[str]) -> list[dict]:
    questions = _read_questions(folder, _mt_bench_question)

    responses, turn_scores = {}, {}
    for llm in candidates:
        path = resolve(folder / "judgments" / f"{MT_BENCH_JUDGE_PREFIX}{llm}{MT_BENCH_JUDGE_SUFFIX}")
        rows = {}
        for lineno, row in enumerate(read_jsonl(path), 1):
            key = (row.get("question_id"), row.get("turn"))
            where = f"{path}, line {lineno}, question_id {key[0]!r} turn {key[1]!r}"
            if key[0] not in questions or key[1] not in (1, 2):
                raise DataError(f"{where}: fields 'question_id'/'turn' must name a question of "
                                f"question.jsonl and turn 1 or 2. Remove or fix the line.")
            if key in rows:
                raise DataError(f"{where}: repeats an earlier judgment of this question and turn (fields "
                                f"'question_id', 'turn'). Keep one judgment per turn.")
            numeric(row.get("score"), where, "score", "Re-run the judge for this turn.")
            rows[key] = (row["score"], row.get("user_prompt"), where)
        responses[llm], turn_scores[llm] = {}, {}
        for question_id in questions:
            for turn in (1, 2):
                if (question_id, turn) not in rows:
                    raise DataError(f"{path}: question_id {question_id!r} turn {turn} has no judgment (fields "
                                    f"'question_id', 'turn'). Judge every turn of every question.")
            _, judge_prompt, where = rows[(question_id, 1)]
            responses[llm][question_id] = _turn1_answer(judge_prompt, where)
            turn_scores[llm][question_id] = [rows[(question_id, 1)][0], rows[(question_id, 2)][0]]

    records = []
    for question_id, question in questions.items():
        question_turn_scores = [turn_scores[llm][question_id] for llm in candidates]
        records.append(make_record(
            str(question_id), question["turns"][0], "MT-Bench",
            [responses[llm][question_id] for llm in candidates],
            [_mean_valid_turns(turns, question_id, llm) for turns, llm in zip(question_turn_scores, candidates)],
            turn_scores=question_turn_scores,
            category=question.get("category"),
        ))
    return records


# --------------------------------------------------------------------------------------------------
# Correctness benchmarks: GSM8k, MATH, HumanEval, MBPP
# --------------------------------------------------------------------------------------------------

def _id_map(obj: Any, path: Path) -> dict:
    """``obj`` if it is a JSON object mapping ids to entries, else a DataError."""
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a JSON object mapping ids to entries, got {type(obj).__name__}. "
                        f"Regenerate the file with OpenCompass.")
    if not obj:
        raise DataError(f"{path}: no entries (an empty JSON object). Regenerate the file with OpenCompass.")
    return obj


def _details(path: Path) -> dict:
    """The ``details`` id map of an OpenCompass result file."""
    obj = _id_map(read_json(path), path)
    if "details" not in obj:
        raise DataError(f"{path}: field 'details' is missing. Regenerate the file with OpenCompass.")
    return _id_map(obj["details"], path)


def _first_prompt(entry: Any, where: str, field: str) -> str:
    try:
        prompt = entry[field][0]["prompt"]
    except (KeyError, IndexError, TypeError):
        raise DataError(f"{where}: field '{field}[0].prompt' is missing. Regenerate the file with "
                        f"OpenCompass.") from None
    return nonempty_text(prompt, where, f"{field}[0].prompt", "Regenerate the file with OpenCompass.")


def _correct(value: Any, where: str, field: str) -> float:
    if not isinstance(value, bool):
        raise DataError(f"{where}: field '{field}' must be true or false, got {value!r}. Re-run the "
                        f"OpenCompass evaluation.")
    return 1.0 if value else 0.0


def _check_same_ids(ids, expected_ids: list[str], path: Path, first_path: Path) -> None:
    expected = set(expected_ids)
    missing = [i for i in expected_ids if i not in ids]
    extra = [i for i in ids if i not in expected]
    if missing or extra:
        problem = f"misses id {missing[0]!r}" if missing else f"has id {extra[0]!r}"
        raise DataError(f"{path}: {problem} ({len(missing)} missing, {len(extra)} extra compared with "
                        f"{first_path}). Regenerate the file so that every candidate file covers the same question "
                        f"ids.")


def _assemble(source: str, candidates: list[str], per_candidate: dict[str, tuple[Path, dict]]) -> list[dict]:
    """Records from ``per_candidate[llm] = (path, {id: (prompt, response, score)})``, checking that the
    candidates cover the same ids with the same prompts."""
    first_path, first = per_candidate[candidates[0]]
    ids = natural_id_order(first)
    for llm in candidates[1:]:
        path, entries = per_candidate[llm]
        _check_same_ids(entries, ids, path, first_path)
        for i in ids:
            if entries[i][0] != first[i][0]:
                raise DataError(f"{path}, id {i!r}: field 'prompt' differs from {first_path}. The candidates "
                                f"must answer the same prompts; regenerate the file.")
    return [
        make_record(i, first[i][0], source,
                    [per_candidate[llm][1][i][1] for llm in candidates],
                    [per_candidate[llm][1][i][2] for llm in candidates])
        for i in ids
    ]


def _load_math_style(folder: Path, candidates: list[str]) -> list[dict]:
    per_candidate = {}
    for llm in candidates:
        path = resolve(folder / f"{llm}.json")
        entries = {}
        for i, entry in _details(path).items():
            where = f"{path}, id {i!r}"
            prompt = _first_prompt(entry, where, "prompt")
            response = text(entry.get("origin_prediction"), where, "origin_prediction",
                            "Regenerate the file with OpenCompass.")
            entries[i] = (prompt, response, _correct(entry.get("correct"), where, "correct"))
        per_candidate[llm] = (path, entries)
    return _assemble(folder.name, candidates, per_candidate)


def _load_code_style(folder: Path, candidates: list[str]) -> list[dict]:
    per_candidate = {}
    for llm in candidates:
        predictions_path = resolve(folder / "predictions" / f"{llm}.json")
        results_path = resolve(folder / "results" / f"{llm}.json")
        predictions = _id_map(read_json(predictions_path), predictions_path)
        results = _details(results_path)
        _check_same_ids(results, list(predictions), results_path, predictions_path)
        entries = {}
        for i, entry in predictions.items():
            where = f"{predictions_path}, id {i!r}"
            prompt = _first_prompt(entry, where, "origin_prompt")
            response = text(entry.get("prediction") if isinstance(entry, dict) else None, where, "prediction",
                            "Regenerate the predictions with OpenCompass.")
            result = results[i] if isinstance(results[i], dict) else {}
            entries[i] = (prompt, response, _correct(result.get("is_correct"), f"{results_path}, id {i!r}",
                                                     "is_correct"))
        per_candidate[llm] = (predictions_path, entries)
    return _assemble(folder.name, candidates, per_candidate)


def _mean_valid_turns(turns: list, question_id, llm: str) -> float:
    """A query's routing score: the mean of its valid turn scores. A judge parse failure (−1) is left out, as
    FastChat's show_result drops those rows; ``turn_scores`` keeps the raw values. With no valid turn the answer is
    unjudged and routes as the lowest score of the scale (``MT_BENCH_UNJUDGED_SCORE``); the metric drops it."""
    valid = [t for t in turns if t != MT_BENCH_PARSE_FAILURE]
    if not valid:
        logger.warning("MT-Bench question %s, candidate %s: both turn scores are -1 (judge parse failures); the "
                       "answer routes as %s and the metric drops its turns", question_id, llm, MT_BENCH_UNJUDGED_SCORE)
        return MT_BENCH_UNJUDGED_SCORE
    return sum(valid) / len(valid)


# --------------------------------------------------------------------------------------------------
# Which candidates a benchmark folder holds, per file layout
# --------------------------------------------------------------------------------------------------

def _alpaca_eval_candidates(folder: Path) -> list[str]:
    return [entry for entry in os.listdir(folder)
            if (folder / entry).is_dir() and files_named(folder / entry, "model_outputs.json")
            and files_named(folder / entry / ALPACA_ANNOTATOR, "annotations.json")]


def _arena_hard_candidates(folder: Path) -> list[str]:
    return list(set(files_named(folder / "model_judgment", ".jsonl")) & set(files_named(folder / "model_answer",
                                                                                          ".jsonl")))


def _mt_bench_candidates(folder: Path) -> list[str]:
    return [stem[len(MT_BENCH_JUDGE_PREFIX):] for stem in files_named(folder / "judgments", MT_BENCH_JUDGE_SUFFIX)
            if stem.startswith(MT_BENCH_JUDGE_PREFIX)]


def _math_style_candidates(folder: Path) -> list[str]:
    return files_named(folder, ".json")


def _code_style_candidates(folder: Path) -> list[str]:
    return list(set(files_named(folder / "predictions", ".json")) & set(files_named(folder / "results", ".json")))


# --------------------------------------------------------------------------------------------------
# The benchmark registry: adding a benchmark is one entry here
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Benchmark:
    """One test benchmark: how its folder is read and how a routing of it is scored.

    name        its folder under ``<data_dir>/test`` and its key everywhere (flags, metrics.json, tables)
    read        ``(folder, candidates) -> records`` (the contract of ``data/__init__.py``); each record's
                ``scores`` are the per-query routing scores (what routers learn from and the oracle maximises)
    candidates  ``folder -> names`` of the candidates whose files the folder holds (any order)
    metric      the metric family that scores a routing, a key of ``metrics.METRICS``: ``alpaca_eval_lc``
                (AlpacaEval 2 length-controlled win rate), ``arena_hard_bt`` (Bradley-Terry win rate against the
                baseline), ``mt_bench`` (mean valid turn score) or ``accuracy`` (100 x mean score); the family
                holds the metric's conventions (``metrics``' docstring)
    score       the per-query routing score in words (reports)
    headline    the headline metric in words (reports)
    """

    name: str
    read: Callable[[Path, list[str]], list[dict]]
    candidates: Callable[[Path], list[str]]
    metric: str
    score: str
    headline: str


def _registry(*benchmarks: Benchmark) -> dict[str, Benchmark]:
    return {benchmark.name: benchmark for benchmark in benchmarks}


# name -> Benchmark, in table order. Every entry point reads this dict (``name in BENCHMARKS``, ``list(BENCHMARKS)``,
# ``BENCHMARKS[name]``), so an entry added here is readable, scorable and routable everywhere.
BENCHMARKS: dict[str, Benchmark] = _registry(
    Benchmark("AlpacaEval", _load_alpaca_eval, _alpaca_eval_candidates, "alpaca_eval_lc",
              f"judge preference − 1 vs {ALPACA_REFERENCE_MODEL}", "LC win rate"),
    Benchmark("ArenaHard", _load_arena_hard, _arena_hard_candidates, "arena_hard_bt",
              "mean game outcome vs gpt-4-0314", "win rate"),
    Benchmark("MT-Bench", _load_mt_bench, _mt_bench_candidates, "mt_bench",
              "mean of the valid turn scores", "mean score"),
    Benchmark("GSM8k", _load_math_style, _math_style_candidates, "accuracy", "correct (1/0)", "accuracy"),
    Benchmark("MATH", _load_math_style, _math_style_candidates, "accuracy", "correct (1/0)", "accuracy"),
    Benchmark("HumanEval", _load_code_style, _code_style_candidates, "accuracy", "passes the tests (1/0)",
              "accuracy"),
    Benchmark("MBPP", _load_code_style, _code_style_candidates, "accuracy", "passes the tests (1/0)", "accuracy"),
)
