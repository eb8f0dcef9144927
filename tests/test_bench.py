"""The layout benchmark (bench/bench.py) runs in CPU mode within the CI budget and prints complete tables.

Timings are not asserted (performance claims are the benchmark's table, not a test); what is checked is that every
stage x layout row is there with numbers in it, and the token counts, which are deterministic: on the real training
data the prefix-shared layout processes fewer tokens per epoch than packing, and packing fewer than padding.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "compressed_data"
SELF_OSS = DATA / "train" / "SelfOSSInstructSC2_filtered2"
LAYOUTS = {"causal": ["plain padded", "packed", "prefix-shared packed"], "mask_concat": ["plain padded", "packed"],
           "sc": ["plain padded", "packed"], "gt_responses": ["plain padded", "packed"]}


def table(text: str, heading: str) -> list[list[str]]:
    """The rows of the markdown table under the section whose heading starts with `heading`."""
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def test_cpu_benchmark_prints_every_table(tmp_path):
    output = tmp_path / "bench.md"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "bench.py"), "--threads", "1", "--data_dir", str(DATA),
                          "--output", str(output)], capture_output=True, text=True, timeout=900, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    text = output.read_text()
    assert re.search(r"Matrix-product ceiling \(float32, 1024\^3\): [0-9.e+-]+ TFLOP/s", text)

    training = table(text, "Training throughput")
    assert sorted((row[0], row[2]) for row in training) == sorted(
        (stage, layout) for stage, layouts in LAYOUTS.items() for layout in layouts)
    for row in training:
        examples_per_s, tokens_per_s, tflops = number(row[5]), number(row[6]), number(row[8])
        assert examples_per_s > 0 and tokens_per_s > 0 and tflops > 0, row
        assert row[9].endswith("%"), row

    routing = table(text, "Routing")
    assert sorted((row[0], row[2]) for row in routing) == sorted(
        (stage, layout) for stage, layouts in LAYOUTS.items() for layout in layouts)
    for row in routing:
        p50, p90, queries_per_s = number(row[4]), number(row[5]), number(row[6])
        assert 0 < p50 <= p90 and queries_per_s > 0, row
        if row[2] == "plain padded":
            assert row[7] == "1.00x", row

    ratios = text.split("## Ratios", 1)[1]
    assert re.search(r"causal routing, prefix-shared vs k prompt copies \(plain padded\): [0-9.]+x", ratios)
    assert re.search(r"causal training, prefix-shared vs plain padded at 2 queries/step: [0-9.]+x", ratios)

    if SELF_OSS.is_dir():  # the token counts of the real training data (the 17.1M / 11.0M / 8.1M layout)
        epoch = table(text, "Tokens per epoch")
        assert len(epoch) == 6
        for first in (0, 3):
            plain, packed, shared = (float(row[2].rstrip("M")) for row in epoch[first:first + 3])
            assert [row[1] for row in epoch[first:first + 3]] == LAYOUTS["causal"]
            assert shared < packed < plain, epoch
