"""Synthetic routing data shared by the training, trained-router and report tests."""
import json
from pathlib import Path

CANDIDATES = ["A", "B"]
WORDS = "sort list add numbers parse string count words merge dict read file print tree".split()
TINY = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)


def write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_synthetic_data(root: Path) -> Path:
    """train/Synth (12 training + 4 validation queries, token counts recorded) and test/GSM8k (8 questions)."""
    synth = root / "train" / "Synth"
    ids = [f"q{i}" for i in range(16)]
    write_jsonl(synth / "instructions.jsonl",
                [{"prompt_id": i, "prompt": f"{WORDS[n % 14]} {WORDS[(3 * n) % 14]} {n}"} for n, i in enumerate(ids)])
    (synth / "eval_ids.json").write_text(json.dumps(ids[12:]))
    for c, llm in enumerate(CANDIDATES):
        write_jsonl(synth / "responses" / f"{llm}.jsonl",
                    [{"prompt_id": i, "response": f"{llm} answers {WORDS[(n + c) % 14]} " * (1 + n % 3),
                      "response_toknes": 100 * (c + 1), "score": float((n + c) % 3) / 2} for n, i in enumerate(ids)])
    gsm = root / "test" / "GSM8k"
    gsm.mkdir(parents=True)
    for c, llm in enumerate(CANDIDATES):
        details = {str(n): {"prompt": [{"prompt": f"how many {WORDS[n]} are {n}"}], "origin_prediction": f"{n + c}",
                            "correct": (n + c) % 2 == 0} for n in range(8)}
        (gsm / f"{llm}.json").write_text(json.dumps({"details": details}))
    return root
