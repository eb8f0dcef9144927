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
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import fire

from model.backbones import resolve_backbone
from utils.generation import (SamplingParams, build_engine, generate_responses, make_training_set,
                              read_instructions)

DEFAULT_MODEL = "packaged:smollm2-135m-instruct"


def llm_name(model_path: str) -> str:
    """The candidate's name in file names: the packaged name, else the model folder's name."""
    if model_path.startswith("packaged:"):
        return model_path.split(":", 1)[1]
    return Path(os.path.normpath(model_path)).name


def main(data_path: str, output_path: str | None = None, model_path: str = DEFAULT_MODEL,
         engine: str = "huggingface", batch_size: int = 8, temperature: float = 0.8, top_p: float = 0.95,
         max_new_tokens: int = 4096, seed: int = 0, dtype: str = "auto", make_set: str | None = None,
         num_prompts: int | None = None, eval_fraction: float = 0.2) -> None:
    if make_set is not None:
        make_training_set(data_path, make_set, num_prompts, eval_fraction, seed)
        data_path = str(Path(make_set) / "instructions.jsonl")
    elif num_prompts is not None:
        raise ValueError("--num_prompts samples prompts for a new set: use it with --make_set DIR.")
    instructions = read_instructions(data_path)
    if output_path is None:
        output_path = str(Path(data_path).parent / "responses" / f"{llm_name(model_path)}.jsonl")
    engine_ = build_engine(engine, resolve_backbone(model_path), dtype=dtype)
    sampling = SamplingParams(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
    stats = generate_responses(engine_, instructions, output_path, sampling, batch_size)
    print(json.dumps({"output_path": output_path, **stats}))


if __name__ == "__main__":
    fire.Fire(main)
