"""Record packs: what the readers return, written once, for a machine that gets a trimmed copy of the data.

A pack is a data folder in which each benchmark folder holds ``records.jsonl.gz`` (one record per line, as
``load_benchmark`` returns them: the contract in ``data/__init__.py``) and ``pack.json`` (``candidate_llms``, the
candidates the records score, in their order, and ``max_response_chars``), and each training set keeps its native
format (gzipped). Responses (and AlpacaEval's reference output) are cut to ``max_response_chars`` characters: a router that
reads at most a few hundred tokens of each response (Lookahead-MLM's mask slots) trains the same on the pack.
``load_benchmark`` reads a pack's benchmark folder transparently (``data.benchmarks``). Metrics that need more than the records (the
AlpacaEval length-controlled rate fits its instruction difficulty on all 16 models' annotations) are computed on
the full data, from the predictions.

    python src/data/packs.py --data_dir data --out .whl/pack [--max_response_chars 600]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: import from src/
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from data.benchmarks import BENCHMARKS, PACK_DESCRIPTION, PACK_RECORDS, PAPER_CANDIDATES, load_benchmark  # noqa: E402
from data.train_sets import resolve_train_set  # noqa: E402
from utils.io import read_json, read_jsonl, write_json  # noqa: E402

def _cut(text, limit: int):
    return text[:limit] if isinstance(text, str) else text


def write_pack(data_dir: str | os.PathLike, out_dir: str | os.PathLike, candidate_llms: list[str],
               train_datasets: list[str], max_response_chars: int = 600,
               benchmarks: tuple[str, ...] = BENCHMARKS) -> Path:
    """Write the pack of ``data_dir``'s ``benchmarks`` and ``train_datasets`` (``<set>/<score dir>`` entries) to
    ``out_dir``; returns ``out_dir``."""
    out = Path(out_dir)
    for name in benchmarks:
        records = load_benchmark(name, data_dir, candidate_llms)
        for record in records:
            record["responses"] = [_cut(response, max_response_chars) for response in record["responses"]]
            if "reference_output" in record:
                record["reference_output"] = _cut(record["reference_output"], max_response_chars)
        folder = out / "test" / name
        folder.mkdir(parents=True, exist_ok=True)
        _write_gz(folder / PACK_RECORDS, "".join(json.dumps(record) + "\n" for record in records))
        write_json(folder / PACK_DESCRIPTION, {"candidate_llms": list(candidate_llms), "max_response_chars": max_response_chars})
    for entry in train_datasets:
        set_dir, score_dir = resolve_train_set(entry, data_dir)
        target = out / "train" / set_dir.name
        (target / score_dir).mkdir(parents=True, exist_ok=True)
        _write_gz(target / "instructions.jsonl.gz", "".join(json.dumps({"prompt_id": row["prompt_id"],
                                                                        "prompt": row["prompt"]}) + "\n"
                                                            for row in read_jsonl(set_dir / "instructions.jsonl")))
        _write_gz(target / "eval_ids.json.gz", json.dumps(read_json(set_dir / "eval_ids.json")))
        for llm in candidate_llms:
            rows = [{"prompt_id": row["prompt_id"], "response": _cut(row.get("response"), max_response_chars),
                     "score": row.get("score")} for row in read_jsonl(set_dir / score_dir / f"{llm}.jsonl")]
            _write_gz(target / score_dir / f"{llm}.jsonl.gz", "".join(json.dumps(row) + "\n" for row in rows))
    return out


def _write_gz(path: Path, text: str) -> None:
    """``text`` gzipped into ``path``, atomically (the readers read ``.gz`` files as they are)."""
    temporary = path.with_name(f".{path.name}.tmp")
    with gzip.open(temporary, "wt", encoding="utf-8") as handle:
        handle.write(text)
    temporary.replace(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a record pack of the benchmarks and training sets.")
    parser.add_argument("--data_dir", required=True, help="The full data folder (test/ and train/).")
    parser.add_argument("--out", required=True, help="The pack's folder (a data folder train.py can read).")
    parser.add_argument("--candidate_llms", nargs="+", default=list(PAPER_CANDIDATES))
    parser.add_argument("--train_datasets", nargs="+", default=["SelfOSSInstructSC2_filtered2/responses"])
    parser.add_argument("--max_response_chars", type=int, default=600)
    args = parser.parse_args(argv)
    out = write_pack(args.data_dir, args.out, args.candidate_llms, args.train_datasets, args.max_response_chars)
    print(out)


if __name__ == "__main__":
    main()
