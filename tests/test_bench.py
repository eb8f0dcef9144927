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

import numpy as np
import pytest

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

    precision = table(text, "Training precision on CPU")
    assert [(row[0], row[2], row[3]) for row in precision] == [
        (stage, layouts[-1], name) for stage, layouts in LAYOUTS.items() for name in ("fp32", "bf16 autocast")]
    for fp32, bf16 in zip(precision[::2], precision[1::2]):
        assert fp32[7] == "1.00x" and number(fp32[5]) > 0 and number(bf16[5]) > 0
        assert float(bf16[7][:-1]) == pytest.approx(number(bf16[5]) / number(fp32[5]), rel=0.01, abs=0.01), bf16

    routing = table(text, "Routing")
    # float32 rows for every layout, and the other precisions on the layout the library routes with
    assert sorted((row[0], row[2], row[4]) for row in routing) == sorted(
        [(stage, layout, "fp32") for stage, layouts in LAYOUTS.items() for layout in layouts]
        + [(stage, layouts[-1], precision) for stage, layouts in LAYOUTS.items()
           for precision in ("bf16", "bf16 autocast", "int8 dynamic")])
    speeds = {(row[0], row[2], row[4]): number(row[7]) for row in routing}
    for row in routing:
        p50, p90, queries_per_s = number(row[5]), number(row[6]), number(row[7])
        assert 0 < p50 <= p90 and queries_per_s > 0, row
        # the ratios, against the table's own rows (printed to 3 significant digits)
        for cell, baseline in ((row[8], (row[0], "plain padded", "fp32")), (row[9], (row[0], row[2], "fp32"))):
            assert cell.endswith("x") and float(cell[:-1]) == pytest.approx(queries_per_s / speeds[baseline],
                                                                             rel=0.01, abs=0.01), row

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


def test_trained_router_rows_measure_the_library_precisions(tmp_path):
    sys.path.insert(0, str(REPO / "bench"))
    import bench
    from routers.pretrained import PretrainedRouter
    from trainers import save_untrained_router
    from test_pretrained_router import save_tiny_bert
    from synthetic import CANDIDATES, WORDS

    folder = save_untrained_router(tmp_path / "sc", "sc", save_tiny_bert(tmp_path / "bert"), CANDIDATES, max_length=12)
    prompts = [" ".join(WORDS[(n * 7 + i) % len(WORDS)] for i in range(2 + n % 9)) for n in range(60)]
    rows = {row[1]: row for row in bench.trained_routing_rows(folder, prompts, sample_size=16, latency_queries=3)}
    assert list(rows) == list(bench.ROUTING_PRECISIONS)
    assert rows["fp32"][4:9] == ["1.00x", "100.00%", 0, 0.0, 0.0]
    # The bf16 row is the library's --precision bf16: the same choices and differences as computed here.
    fp32 = PretrainedRouter.from_pretrained(folder, precision="fp32").route(prompts)
    bf16 = PretrainedRouter.from_pretrained(folder, precision="bf16").route(prompts)
    differ = fp32.argmax(1) != bf16.argmax(1)
    assert rows["bf16"][5:8] == [f"{1 - differ.mean():.2%}", int(differ.sum()), float(np.abs(bf16 - fp32).max())]
    assert rows["bf16"][7] > 0  # it did run in bf16
    top2 = np.sort(fp32, axis=1)[:, -2:]
    assert rows["bf16"][8] == float(max([0.0] + list((top2[:, 1] - top2[:, 0])[differ])))
    for row in rows.values():
        assert row[2] > 0 and row[3] > 0 and row[4] == f"{row[3] / rows['fp32'][3]:.2f}x"
