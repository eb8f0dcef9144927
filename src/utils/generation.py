"""Generate candidate responses for a training set: engines, sampling settings, a resumable writer.

* ``HuggingFaceEngine`` (CPU or GPU) and ``VllmEngine`` (when ``vllm`` is installed) turn prompts into
  responses through the model's chat template, one user turn per prompt.
* ``ResumableJsonl`` is an append-only JSON Lines output keyed by ``prompt_id``: each batch is written
  with one ``write`` of complete lines and fsync'ed; on opening, a partial last line left by a killed run
  is cut off, so the file only ever holds whole records, and the ids already there are skipped.
* ``generate_responses`` runs an engine over the pending prompts with a progress bar (prompts, tokens/s).
* ``make_training_set`` starts a new set folder from (a sample of) an instructions file.
"""
from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from utils.io import DataError, exists, read_jsonl, require_rows, resolve, write_json, write_jsonl


@dataclass(frozen=True)
class SamplingParams:
    """Sampling settings (the paper's: temperature 0.8, top_p 0.95, up to 4096 new tokens).
    temperature 0 means greedy decoding."""
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 4096
    seed: int = 0


@dataclass(frozen=True)
class Generation:
    text: str
    num_tokens: int  # generated tokens, end-of-sequence token excluded


def chat_messages(prompt: str) -> list[dict]:
    return [{"role": "user", "content": prompt}]


class HuggingFaceEngine:
    """Batched ``generate`` with left padding; bf16 on GPU, float32 on CPU unless ``dtype`` says."""

    def __init__(self, model_path: str, dtype: str = "auto"):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        if not self.tokenizer.chat_template:
            raise ValueError(f"{model_path}: the tokenizer has no chat template. Use a chat (instruct) model "
                             f"or add a chat_template to its tokenizer_config.json.")
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if dtype == "auto":
            dtype = "bfloat16" if self.device == "cuda" else "float32"
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype))
        self.model.to(self.device).eval()
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.stop_ids = {i for i in [*eos, self.tokenizer.eos_token_id] if i is not None}

    def generate(self, prompts: list[str], sampling: SamplingParams) -> list[Generation]:
        texts = self.tokenizer.apply_chat_template([chat_messages(p) for p in prompts], tokenize=False,
                                                   add_generation_prompt=True)
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        batch = batch.to(self.device)
        options = {"max_new_tokens": sampling.max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if sampling.temperature > 0:
            options.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with self.torch.inference_mode():
            output = self.model.generate(**batch, **options)
        generations = []
        for row in output[:, batch["input_ids"].shape[1]:].tolist():
            length = next((i for i, token in enumerate(row) if token in self.stop_ids), len(row))
            generations.append(Generation(self.tokenizer.decode(row[:length], skip_special_tokens=True),
                                          length))
        return generations


class VllmEngine:
    """vLLM's offline ``LLM.chat``; it batches internally, so give it large batches."""

    def __init__(self, model_path: str, dtype: str = "auto"):
        if importlib.util.find_spec("vllm") is None:
            raise ModuleNotFoundError("The vllm engine needs the `vllm` package (GPU): `pip install vllm`, "
                                      "or use --engine huggingface.")
        from vllm import LLM

        self.llm = LLM(model=model_path, dtype=dtype)

    def generate(self, prompts: list[str], sampling: SamplingParams) -> list[Generation]:
        from vllm import SamplingParams as VllmSamplingParams

        params = VllmSamplingParams(temperature=sampling.temperature, top_p=sampling.top_p,
                                    max_tokens=sampling.max_new_tokens, seed=sampling.seed)
        outputs = self.llm.chat([chat_messages(p) for p in prompts], params, use_tqdm=False)
        generations = []
        for output in outputs:
            completion = output.outputs[0]
            ends_with_eos = completion.finish_reason == "stop" and completion.stop_reason is None
            generations.append(Generation(completion.text, len(completion.token_ids) - int(ends_with_eos)))
        return generations


ENGINES = {"huggingface": HuggingFaceEngine, "vllm": VllmEngine}


def build_engine(engine: str, model_path: str, dtype: str = "auto"):
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {sorted(ENGINES)}, got {engine!r}.")
    return ENGINES[engine](model_path, dtype=dtype)


class ResumableJsonl:
    """Append-only JSON Lines file of records keyed by ``prompt_id`` (see the module docstring).

    Use as a context manager; it holds an exclusive lock so two runs cannot write the same file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise RuntimeError(f"{self.path} is being written by another process; wait for it or stop it.")
        self._cut_partial_line()
        self.done_ids = set()
        for lineno, row in enumerate(read_jsonl(self.path), 1):
            if "prompt_id" not in row:
                raise DataError(f"{self.path}, line {lineno}: no 'prompt_id' field. This file is not an "
                                f"output of this tool; move it away or choose another output path.")
            self.done_ids.add(row["prompt_id"])

    def _cut_partial_line(self) -> None:
        size = os.fstat(self._fd).st_size
        keep, position = 0, size
        while position > 0:  # find the last newline, reading backwards
            start = max(0, position - 65536)
            chunk = os.pread(self._fd, position - start, start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            position = start
        if keep < size:
            os.ftruncate(self._fd, keep)
            os.fsync(self._fd)
            print(f"{self.path}: removed a partial last line ({size - keep} bytes) left by an interrupted run.",
                  file=sys.stderr)

    def append(self, rows: list[dict]) -> None:
        """Write ``rows`` as complete lines with one write (repeated only if the OS writes less), then fsync."""
        data = memoryview("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode())
        while data:
            data = data[os.write(self._fd, data):]
        os.fsync(self._fd)
        self.done_ids.update(row["prompt_id"] for row in rows)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> "ResumableJsonl":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_instructions(path: str | os.PathLike) -> list[dict]:
    """Rows of an instructions file, each with a unique string ``prompt_id`` and a non-empty ``prompt``; an empty file
    or a bad row is a DataError naming the file, the line and the field."""
    path = resolve(path)
    rows = require_rows(read_jsonl(path), path, "instructions",
                        "Write one JSON object per line with a unique string prompt_id and the prompt text.")
    first_line: dict[str, int] = {}
    for lineno, row in enumerate(rows, 1):
        prompt_id = row.get("prompt_id")
        if not isinstance(prompt_id, str) or not prompt_id:
            raise DataError(f"{path}, line {lineno}: field 'prompt_id' is missing or not a non-empty string "
                            f"({prompt_id!r}). Give every query a unique string prompt_id.")
        if prompt_id in first_line:
            raise DataError(f"{path}, line {lineno}: field 'prompt_id' ({prompt_id!r}) repeats line "
                            f"{first_line[prompt_id]}. Give every query a unique string prompt_id.")
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise DataError(f"{path}, line {lineno}, prompt_id {prompt_id!r}: field 'prompt' is missing or "
                            f"empty. Write the query text or remove the line.")
        first_line[prompt_id] = lineno
    return rows


def generate_responses(engine, instructions: list[dict], output_path: str | os.PathLike,
                       sampling: SamplingParams, batch_size: int) -> dict:
    """Generate the responses missing from ``output_path`` (records: prompt_id, response, response_tokens).

    Returns counts and throughput: generated, skipped, tokens, seconds, tokens_per_s.
    """
    from tqdm import tqdm

    import torch

    torch.manual_seed(sampling.seed)
    with ResumableJsonl(output_path) as output:
        pending = [row for row in instructions if row["prompt_id"] not in output.done_ids]
        pending.sort(key=lambda row: len(row["prompt"]), reverse=True)  # similar lengths share a batch
        tokens, start = 0, time.perf_counter()
        with tqdm(total=len(instructions), initial=len(instructions) - len(pending), unit="prompt",
                  desc=Path(output_path).stem) as bar:
            for first in range(0, len(pending), batch_size):
                batch = pending[first:first + batch_size]
                generations = engine.generate([row["prompt"] for row in batch], sampling)
                output.append([{"prompt_id": row["prompt_id"], "response": g.text, "response_tokens": g.num_tokens}
                               for row, g in zip(batch, generations)])
                tokens += sum(g.num_tokens for g in generations)
                bar.update(len(batch))
                bar.set_postfix(tokens_per_s=f"{tokens / (time.perf_counter() - start):.1f}")
    seconds = time.perf_counter() - start
    return {"generated": len(pending), "skipped": len(instructions) - len(pending), "tokens": tokens,
            "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 2) if seconds > 0 else 0.0}


def make_training_set(source_path: str | os.PathLike, set_dir: str | os.PathLike, num_prompts: int | None,
                      eval_fraction: float, seed: int) -> list[dict]:
    """Write ``set_dir/instructions.jsonl`` (``num_prompts`` rows sampled from ``source_path``, all of
    them when None, in source order, every field kept) and ``set_dir/eval_ids.json`` (a random
    ``eval_fraction`` of them). Rerunning with the same arguments rewrites the same files; a folder that
    holds other prompts is an error."""
    rows = read_instructions(source_path)
    rng = random.Random(seed)
    if num_prompts is not None:
        if isinstance(num_prompts, bool) or not isinstance(num_prompts, int) or not 0 < num_prompts <= len(rows):
            raise ValueError(f"--num_prompts must be an integer in 1..{len(rows)} (the prompts in {source_path}), "
                             f"got {num_prompts!r}. Pass a number in that range.")
        chosen = set(rng.sample(range(len(rows)), num_prompts))
        rows = [row for i, row in enumerate(rows) if i in chosen]
    ids = [row["prompt_id"] for row in rows]
    held_out = set(rng.sample(ids, round(len(ids) * eval_fraction)))
    target = Path(set_dir) / "instructions.jsonl"
    if exists(target) and [row["prompt_id"] for row in read_instructions(target)] != ids:
        raise DataError(f"{target} already holds other prompts. Remove {set_dir} or choose another "
                        f"--make_set folder.")
    write_json(Path(set_dir) / "eval_ids.json", [i for i in ids if i in held_out])
    write_jsonl(target, rows)
    return rows
