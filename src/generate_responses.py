"""Generate one candidate LLM's responses to a training set's prompts (Fire entry point).

    python src/generate_responses.py --data_path <set>/instructions.jsonl \\
        [--output_path <set>/responses/<llm>.jsonl] [--model_path packaged:smollm2-135m-instruct] \\
        [--engine huggingface|vllm] [--batch_size 8] [--temperature 0.8] [--top_p 0.95] \\
        [--max_new_tokens 4096] [--seed 0] [--dtype auto]

Each output line: ``prompt_id``, ``response``, ``response_tokens``. The run resumes: prompts already in
the output are skipped, and a killed run leaves only whole lines. ``--make_set DIR`` first makes a new
set folder DIR from ``--data_path`` (``--num_prompts`` sampled prompts, ``--eval_fraction`` of them held
out in eval_ids.json), then generates into ``DIR/responses/<llm>.jsonl``. Score the responses with
``src/compute_rewards.py``.

Every argument and the instructions are checked before the model is loaded: an empty or malformed instructions
file, a sampling setting out of range, an unknown engine, a missing model folder or an output path that cannot be
written stops the run with an error naming the file or flag.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import fire

from args import integer, number
from model.backbones import resolve_backbone
from utils.generation import (ENGINES, SamplingParams, build_engine, generate_responses, make_training_set,
                              read_instructions)
from utils.io import DataError, writable_dir

DEFAULT_MODEL = "packaged:smollm2-135m-instruct"


def llm_name(model_path: str) -> str:
    """The candidate's name in file names: the packaged name, else the model folder's name."""
    if model_path.startswith("packaged:"):
        return model_path.split(":", 1)[1]
    return Path(os.path.normpath(model_path)).name


def check_model_path(model_path: str) -> None:
    """A ``--model_path`` written as a local path (absolute, or starting with ``.`` or ``~``) must be a folder; names
    like ``org/model`` are left to the hub lookup and ``packaged:<name>`` to ``resolve_backbone``."""
    if model_path.startswith(("/", ".", "~")) and not Path(model_path).expanduser().is_dir():
        raise DataError(f"{model_path}: --model_path is not a folder. Pass a local model folder, a hub id or "
                        f"{DEFAULT_MODEL}.")


def main(data_path: str, output_path: str | None = None, model_path: str = DEFAULT_MODEL,
         engine: str = "huggingface", batch_size: int = 8, temperature: float = 0.8, top_p: float = 0.95,
         max_new_tokens: int = 4096, seed: int = 0, dtype: str = "auto", make_set: str | None = None,
         num_prompts: int | None = None, eval_fraction: float = 0.2) -> None:
    # Every argument and input is checked before the model is loaded.
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}. Pass one of those.")
    sampling = SamplingParams(temperature=number(temperature, "temperature", low=0.0),
                              top_p=number(top_p, "top_p", low=0.0, high=1.0, low_open=True),
                              max_new_tokens=integer(max_new_tokens, "max_new_tokens", minimum=1),
                              seed=integer(seed, "seed"))
    batch_size = integer(batch_size, "batch_size", minimum=1)
    model_path = str(model_path)
    check_model_path(model_path)
    if make_set is not None:
        if num_prompts is not None:
            num_prompts = integer(num_prompts, "num_prompts", minimum=1)
        make_training_set(data_path, make_set, num_prompts,
                          number(eval_fraction, "eval_fraction", low=0.0, high=1.0, high_open=True), sampling.seed)
        data_path = str(Path(make_set) / "instructions.jsonl")
    elif num_prompts is not None:
        raise ValueError("--num_prompts samples prompts for a new set: use it with --make_set DIR.")
    instructions = read_instructions(data_path)
    if output_path is None:
        output_path = str(Path(data_path).parent / "responses" / f"{llm_name(model_path)}.jsonl")
    if Path(output_path).is_dir():
        raise DataError(f"{output_path}: --output_path is a folder. Pass the path of the JSON Lines file to write "
                        f"(e.g. {Path(output_path) / (llm_name(model_path) + '.jsonl')}).")
    writable_dir(Path(output_path).parent, "--output_path's folder")
    engine_ = build_engine(engine, resolve_backbone(model_path), dtype=dtype)
    stats = generate_responses(engine_, instructions, output_path, sampling, batch_size)
    print(json.dumps({"output_path": output_path, **stats}))


if __name__ == "__main__":
    fire.Fire(main)
