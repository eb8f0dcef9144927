"""Throughput of the router layouts: plain padded vs packed vs prefix-shared packed.

    python bench/bench.py                      CPU mode: short and small (2-layer backbones of the real widths,
                                               short prompts and responses), float32, SDPA with explicit masks
    python bench/bench.py --mode gpu [--compile]
                                               GPU mode: full SmolLM2-135M / MiniLM-L6 shapes, bf16 autocast with
                                               float32 master weights, fused AdamW, FlexAttention for packed rows
                                               (SDPA for the plain baseline); --compile adds torch.compile rows
    python bench/bench.py --routing_only --routers DIR [DIR ...] [--threads 1]
                                               the routing tables alone, plus trained routers' speed and agreement
                                               per inference precision on the test benchmarks' queries

Backbones are random-initialised from the packaged configs (throughput needs no trained weights); prompts
and responses come from the real training data (Self-OSS-Instruct, ``--data_dir``) when it is there, else
from random text. Printed, and written to ``--output``:

1. tokens per epoch on the real training data (SmolLM2 tokenizer, 5 candidates, batches of 2 queries) for each
   causal layout: what the backbone processes, padding included;
2. training throughput per stage, backbone and layout: queries (examples)/s, real tokens/s, model TFLOP/s
   (useful work only: no padding, no masked attention pairs; forward + backward = 3 x forward), MFU against
   the matrix-product ceiling measured in the same run, peak memory, warm-up time; in CPU mode also each stage's
   training throughput in float32 and in bf16 autocast (what ``--bf16 True --use_cpu True`` runs), on the
   library's layout, with the ratio;
3. routing latency per query (p50/p90, a batch of one, collation included) and throughput (batched) per
   stage, backbone and layout; in CPU mode also per inference precision of the library's layout
   (``ROUTING_PRECISIONS``: the float32 path, bf16 weights — ``routers.pretrained``'s ``--precision bf16`` —,
   bf16 autocast over float32 weights, int8 dynamic quantisation of the linear layers), with ratios vs float32;
4. with ``--routers``: for each trained router folder, the same precisions on the real test benchmarks' queries
   (``--data_dir``/test): throughput in batches of ``DEFAULT_BATCH_SIZE``, latency of one query, and agreement with
   float32 (share of queries routed to the same candidate, largest score difference).

CPU mode times the process's CPU seconds (use one thread: ``--threads 1``), so that other work on the machine
does not skew the comparison; GPU mode times the wall clock. Warm-up (the steps before the timed ones: kernel
selection, compilation by torch.compile and FlexAttention, which runs partly in worker processes) is wall clock in
both modes.

Layouts (``model.packing``): *plain padded* = one sequence per row, padded to the longest (causal: k copies of
the prompt, one per candidate); *packed* = the same sequences back to back, rows of the longest document (CPU,
dense masks) or one row (GPU, FlexAttention); *prefix-shared packed* (causal) = the prompt once, then one
block per candidate (the library's layout).
"""
from __future__ import annotations

import argparse
import copy
import gc
import random
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from transformers import AutoConfig, AutoTokenizer  # noqa: E402

from data import PAPER_CANDIDATES, load_train_set  # noqa: E402
from model import RouterModelConfig  # noqa: E402
from model.backbones import resolve_backbone  # noqa: E402
from model.packing import IGNORE_INDEX, Document, one_document_per_row, pack, single_row  # noqa: E402
from trainers import CausalTrainer, GTResponsesTrainer, MaskConcatTrainer, SCTrainer  # noqa: E402
from model.collators import CausalCollator, prompt_frame  # noqa: E402
from model.losses import routing_loss  # noqa: E402
from trainers.mask_concat import mask_slots  # noqa: E402
from data import BENCHMARKS, load_benchmark  # noqa: E402
from routers.pretrained import DEFAULT_BATCH_SIZE, PretrainedRouter  # noqa: E402

SMOLLM2, MINILM = "packaged:smollm2-135m-instruct", "packaged:all-minilm-l6-v2"
SELF_OSS = Path("train") / "SelfOSSInstructSC2_filtered2"
STAGES = {"causal": (CausalTrainer, SMOLLM2), "mask_concat": (MaskConcatTrainer, MINILM),
          "sc": (SCTrainer, MINILM), "gt_responses": (GTResponsesTrainer, MINILM)}
PLAIN, PACKED, SHARED = "plain padded", "packed", "prefix-shared packed"
FP32, BF16, BF16_AUTOCAST, INT8_DYNAMIC = "fp32", "bf16", "bf16 autocast", "int8 dynamic"
ROUTING_PRECISIONS = (FP32, BF16, BF16_AUTOCAST, INT8_DYNAMIC)  # CPU routing rows
MODES = {  # prompt/response: SmolLM2 (causal) lengths; encoder_*: MiniLM (512 positions)
    "cpu": dict(layers=2, warmup=1, steps=2, causal_batch=2, large_batch=None, encoder_batch=8, route_batch=8,
                route_batches=2, latency_queries=6, prompt=128, response=32, encoder_prompt=128, encoder_response=32,
                mask_length=16, packed_attention={SMOLLM2: "sdpa", MINILM: "sdpa"}, dtype=None,
                matmul=(torch.float32, 1024), clock=time.process_time),
    "gpu": dict(layers=None, warmup=2, steps=6, causal_batch=2, large_batch=16, encoder_batch=32, route_batch=64,
                route_batches=2, latency_queries=20, prompt=1024, response=1024, encoder_prompt=256,
                encoder_response=250, mask_length=16, dtype=torch.bfloat16,
                # FlexAttention refuses attention dropout in training (MiniLM has 0.1): dense SDPA rows there
                packed_attention={SMOLLM2: "flex_attention", MINILM: "sdpa"},
                matmul=(torch.bfloat16, 8192), clock=time.perf_counter),
}


# ----- data -----

def training_records(data_dir: Path | None, count: int, seed: int = 0) -> tuple[list[dict], str]:
    """``count`` records of the real training set (a seeded sample), else random text."""
    if data_dir is not None and (data_dir / SELF_OSS).is_dir():
        records = load_train_set(data_dir / SELF_OSS, PAPER_CANDIDATES, split="all")
        return random.Random(seed).sample(records, min(count, len(records))), "Self-OSS-Instruct"
    generator = random.Random(seed)
    words = "sort list parse string count words merge dict read file print tree return value loop".split()
    text = lambda n: " ".join(generator.choice(words) for _ in range(n))  # noqa: E731
    records = [{"prompt_id": str(i), "prompt": text(generator.randint(20, 200)), "source": "random",
                "responses": [text(generator.randint(10, 400)) for _ in PAPER_CANDIDATES],
                "scores": [generator.random() for _ in PAPER_CANDIDATES]} for i in range(count)]
    return records, "random text"


def unshared_causal_batch(collator: CausalCollator, features: list[dict], assign_rows) -> dict:
    """The causal layout without prefix sharing: ``prompt <id_i> [response_i <eos>]``, one sequence per
    (query, candidate), laid out by ``assign_rows``."""
    documents, id_offsets = [], []
    training = "response_ids" in features[0]
    for feature in features:
        prompt = feature["prompt_ids"]
        for i, token in enumerate(collator.model_id_token_ids):
            response = feature["response_ids"][i] if training else []
            ids = prompt + [token] + response
            labels = [IGNORE_INDEX] * (len(prompt) + 1) + response if training else None
            documents.append(Document(ids, list(range(len(ids))), labels=labels))
            id_offsets.append(len(prompt))
    batch, starts = pack(documents, assign_rows([len(d) for d in documents]), collator.pad_token_id)
    batch["model_id_positions"] = torch.tensor(starts) + torch.tensor(id_offsets)
    if "scores" in features[0]:
        batch["scores"] = torch.tensor([f["scores"] for f in features], dtype=torch.float32)
    return batch


def make_batch(stage: str, layout: str, collator, features: list[dict]) -> dict:
    """One batch of ``features`` in ``layout``."""
    if stage == "causal" and layout != SHARED:
        return unshared_causal_batch(collator, features,
                                     one_document_per_row if layout == PLAIN else collator.assign_rows)
    if layout == PLAIN:
        collator = copy.copy(collator)
        collator.assign_rows = one_document_per_row
    return collator(features)


def layouts_of(stage: str) -> list[str]:
    return [PLAIN, PACKED, SHARED] if stage == "causal" else [PLAIN, PACKED]


# ----- models -----

def stage_max_length(stage: str, frame: int, prompt: int, response: int, mask_length: int, k: int) -> int:
    """The --max_length at which ``stage`` keeps ``prompt`` prompt tokens and ``response`` response tokens (causal,
    gt_responses; a response takes what the prompt leaves) or ``mask_length`` slots (mask_concat)."""
    if stage == "causal":
        return frame + prompt + 1 + response + 1
    if stage == "gt_responses":
        return frame + prompt + response + 1
    if stage == "mask_concat":
        return frame + prompt + k * (mask_length + 1)
    return frame + prompt


def random_router(stage: str, attention: str, settings: dict, device: torch.device):
    """A router of ``stage`` on a random-initialised backbone of the packaged shape, its tokenizer and collator."""
    trainer, backbone_name = STAGES[stage]
    path = resolve_backbone(backbone_name)
    encoder = backbone_name == MINILM
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompt, response = settings["encoder_prompt" if encoder else "prompt"], settings["encoder_response" if encoder else "response"]
    options = SimpleNamespace(
        candidate_llms=PAPER_CANDIDATES, backbone_name_or_path=backbone_name, model_id_type="special", pooling=None,
        routing_head="prediction", foresight="predicted",
        max_prompt_length=prompt, mask_length=settings["mask_length"], response_truncation_side="right")
    backbone_config = AutoConfig.from_pretrained(path)
    if settings["layers"]:
        backbone_config.num_hidden_layers = settings["layers"]
    torch.manual_seed(0)
    backbone = trainer.model_class.backbone_auto_class.from_config(backbone_config, attn_implementation=attention)
    frame = sum(map(len, prompt_frame(tokenizer)))
    max_length = stage_max_length(stage, frame, prompt, response, settings["mask_length"], len(PAPER_CANDIDATES))
    config = RouterModelConfig(stage=stage, backbone_name_or_path=backbone_name, candidate_llms=PAPER_CANDIDATES,
                               max_seq_length=max_length, **trainer.model_config_fields(options))
    config.backbone_config = backbone.config
    model = trainer.model_class(config, backbone=backbone)
    trainer.add_candidate_tokens(model, tokenizer, options)
    return model.to(device), tokenizer, trainer.model_class.collator_for(model.config, tokenizer)


def matrix_parameters(base_model: nn.Module) -> int:
    """Weights used once per token in matrix products: every 2-D parameter except embedding tables."""
    tables = {id(module.weight) for module in base_model.modules() if isinstance(module, nn.Embedding)}
    return sum(p.numel() for p in base_model.parameters() if p.dim() == 2 and id(p) not in tables)


def attended_pairs(batch: dict, causal: bool) -> int:
    """(query, key) pairs the layout's attention needs: per document, the prompt causally (or every pair in
    both directions for encoders); each prefix-shared block reads the prompt and itself causally."""
    documents = batch["document_ids"].flatten().tolist()
    blocks = batch["block_ids"].flatten().tolist() if "block_ids" in batch else [0] * len(documents)
    sizes: dict[int, dict[int, int]] = {}
    for document, block in zip(documents, blocks):
        if document >= 0:
            sizes.setdefault(document, {}).setdefault(block, 0)
            sizes[document][block] += 1
    pairs = 0
    for per_block in sizes.values():
        prompt = per_block.get(0, 0)
        if not causal:
            pairs += sum(per_block.values()) ** 2
            continue
        pairs += prompt * (prompt + 1) // 2
        pairs += sum(size * prompt + size * (size + 1) // 2 for block, size in per_block.items() if block)
    return pairs


def forward_flops(model, batch: dict, stage: str) -> float:
    """Model FLOPs of one forward pass on ``batch``: matrix products on real tokens, the attention pairs the
    layout needs, and the LM / MLM head on the predicted tokens."""
    base = model.backbone.base_model
    config = base.config
    tokens = int((batch["document_ids"] >= 0).sum())
    causal = getattr(model, "causal", stage == "causal")  # classifiers know; CLM is causal, MLM is not
    flops = 2 * matrix_parameters(base) * tokens
    flops += 4 * config.hidden_size * config.num_hidden_layers * attended_pairs(batch, causal)
    labels = batch.get("labels", batch.get("mlm_labels"))
    if labels is not None:
        predicted = int((labels != IGNORE_INDEX).sum())
        head = config.vocab_size + (config.hidden_size if "mlm_labels" in batch else 0)  # MLM: transform + decoder
        flops += 2 * config.hidden_size * head * predicted
    return float(flops)


# ----- measurement -----

class PeakMemory:
    """Peak memory of a region: CUDA's allocator peak on GPU, else the resident set sampled every 10 ms
    (above its value at entry)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_bytes = 0

    @staticmethod
    def resident() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * 4096

    def _sample(self):
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self.resident() - self._base)
            time.sleep(0.01)

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._base, self._stop = self.resident(), threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_ceiling(device: torch.device, dtype: torch.dtype, size: int, clock, seconds: float = 1.0) -> float:
    """Measured FLOP/s of a size x size x size matrix product (the MFU denominator)."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    synchronize(device)
    start, count = clock(), 0
    while clock() - start < seconds:
        for _ in range(5):
            a @ b
        count += 5
        synchronize(device)
    return 2 * size ** 3 * count / (clock() - start)


def model_inputs(stage: str, batch: dict, model) -> dict:
    """The model's keyword arguments: mask_concat training batches get every slot masked (the routing-time
    input) with its MLM labels."""
    if "slot_positions" in batch:
        batch = mask_slots(batch, 1.0, "right", model.config.candidate_token_ids)
    return {name: value for name, value in batch.items() if name != "scores"}


def measure_training(stage: str, layout: str, attention: str, batch_size: int, compile_backbone: bool,
                     settings: dict, records: list[dict], device: torch.device, ceiling: float) -> dict:
    clock = settings["clock"]
    model, _, collator = random_router(stage, attention, settings, device)
    if compile_backbone:  # the backbone only: the packed attention masks are built outside the compiled graph
        prefix = model.backbone.base_model_prefix
        setattr(model.backbone, prefix, torch.compile(getattr(model.backbone, prefix), dynamic=True))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=device.type == "cuda")
    features = collator.encode(records, scores=[r["scores"] for r in records], with_responses=stage != "sc")
    steps = settings["warmup"] + settings["steps"]
    batches = [make_batch(stage, layout, collator, [features[(s * batch_size + i) % len(features)]
                                                      for i in range(batch_size)]) for s in range(steps)]
    timed = [model_inputs(stage, batch, model) for batch in batches[settings["warmup"]:]]
    flops = sum(3 * forward_flops(model, inputs, stage) for inputs in timed)
    tokens = sum(int((inputs["document_ids"] >= 0).sum()) for inputs in timed)
    grid = sum(inputs["input_ids"].numel() for inputs in timed)
    with PeakMemory(device) as memory:
        warmup_start = time.perf_counter()
        for step, batch in enumerate(batches):
            if step == settings["warmup"]:
                synchronize(device)
                warmup_seconds = time.perf_counter() - warmup_start
                start = clock()
            inputs = {k: v.to(device) for k, v in model_inputs(stage, batch, model).items()}
            with torch.autocast(device.type, dtype=settings["dtype"], enabled=settings["dtype"] is not None):
                outputs = model(**inputs)
                loss = routing_loss("CE", outputs.routing_logits, batch["scores"].to(device))
                if outputs.lm_loss is not None:
                    loss = loss + outputs.lm_loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        seconds = clock() - start
    queries = batch_size * settings["steps"]
    return {"examples/s": queries / seconds, "tokens/s": tokens / seconds, "tokens/step": grid / settings["steps"],
            "TFLOP/s": flops / seconds / 1e12, "MFU": flops / seconds / ceiling,
            "peak GiB": memory.peak_bytes / 2 ** 30, "warm-up s": warmup_seconds}


def routing_variant(model: nn.Module, precision: str) -> tuple[nn.Module, torch.dtype | None]:
    """(the model to route with, the autocast dtype or None) for ``precision`` (one of ``ROUTING_PRECISIONS``);
    ``model`` (float32) is converted in place for bf16, copied for int8."""
    if precision == BF16:
        return model.to(torch.bfloat16), None
    if precision == BF16_AUTOCAST:
        return model, torch.bfloat16
    if precision == INT8_DYNAMIC:
        with warnings.catch_warnings():  # torch.ao's notice that this API moves to torchao
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8), None
    return model, None


@torch.inference_mode()
def measure_routing(stage: str, layout: str, attention: str, settings: dict, records: list[dict],
                    device: torch.device, precision: str | None = None) -> dict:
    """Routing latency and throughput of a random ``stage`` router; ``precision`` (CPU): one of
    ``ROUTING_PRECISIONS``, None for the mode's own (float32 on CPU, bf16 autocast on GPU)."""
    clock = settings["clock"]
    model, _, collator = random_router(stage, attention, settings, device)
    model.eval()
    dtype = settings["dtype"]
    if precision is not None:
        model, dtype = routing_variant(model, precision)
    features = collator.encode(records, with_responses=stage == "gt_responses")

    def route(chunk: list[dict]) -> None:
        inputs = {k: v.to(device) for k, v in make_batch(stage, layout, collator, chunk).items()}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            model(**inputs)
        synchronize(device)

    for size in (1, 2, 3):  # warm-up: kernels, and FlexAttention's compilation for a first and a dynamic shape
        route(features[:size])
    latencies = []
    for feature in features[:settings["latency_queries"]]:
        start = clock()
        route([feature])
        latencies.append(1000 * (clock() - start))
    batch = settings["route_batch"]
    route(features[:batch])
    start = clock()
    for offset in range(0, batch * settings["route_batches"], batch):
        route(features[offset:offset + batch])
    seconds = clock() - start
    routed = batch * settings["route_batches"]
    quantiles = statistics.quantiles(latencies, n=10)
    return {"p50 ms": statistics.median(latencies), "p90 ms": quantiles[8], "queries/s": routed / seconds}


def benchmark_prompts(data_dir: Path) -> list[str]:
    """The prompts of the seven test benchmarks under ``data_dir``."""
    return [record["prompt"] for name in BENCHMARKS for record in load_benchmark(name, data_dir, PAPER_CANDIDATES)]


@torch.inference_mode()
def trained_routing_rows(folder: Path, prompts: list[str], sample_size: int = 512, latency_queries: int = 20,
                         clock=time.process_time) -> list[list]:
    """One row per ``ROUTING_PRECISIONS`` for the trained router in ``folder`` (on CPU): latency of one query
    (p50 ms), throughput in batches of ``DEFAULT_BATCH_SIZE`` on a seeded sample of ``sample_size`` prompts
    (queries/s, ratio vs float32), and over all ``prompts`` the share routed to float32's choice, the count that
    differ, the largest |score difference| from float32, and among the queries that differ the largest gap
    between float32's two best scores (how near a tie the flipped choices were). The precisions are timed in
    turns (each batch, each single query, in every precision before the next), so that a machine whose load
    changes during the run slows them alike; throughput is the sample over the summed batch times."""
    sample = random.Random(0).sample(prompts, min(sample_size, len(prompts)))
    routes = {}
    for precision in ROUTING_PRECISIONS:
        router = PretrainedRouter.from_pretrained(folder, precision="fp32")
        router.model, dtype = routing_variant(router.model, precision)

        def route(chunk: list[str], router=router, dtype=dtype):
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                return router.route(chunk)

        route(sample[:DEFAULT_BATCH_SIZE])  # warm-up
        routes[precision] = route
    latencies = {precision: [] for precision in routes}
    seconds = dict.fromkeys(routes, 0.0)
    for prompt in sample[:latency_queries]:
        for precision, route in routes.items():
            start = clock()
            route([prompt])
            latencies[precision].append(1000 * (clock() - start))
    for offset in range(0, len(sample), DEFAULT_BATCH_SIZE):
        for precision, route in routes.items():
            start = clock()
            route(sample[offset:offset + DEFAULT_BATCH_SIZE])
            seconds[precision] += clock() - start
    reference = routes[FP32](prompts)
    top2 = np.sort(reference, axis=1)[:, -2:]
    rows = []
    for precision, route in routes.items():
        scores = reference if precision == FP32 else route(prompts)
        same = scores.argmax(1) == reference.argmax(1)
        speed = len(sample) / seconds[precision]
        rows.append([f"{router.stage} ({folder})", precision, statistics.median(latencies[precision]), speed,
                     f"{speed * seconds[FP32] / len(sample):.2f}x", f"{same.mean():.2%}", int((~same).sum()),
                     float(np.abs(scores - reference).max()), float((top2[:, 1] - top2[:, 0])[~same].max(initial=0))])
        print("  " + " | ".join(str(value) for value in rows[-1]), flush=True)
    return rows


TRAINED_ROUTING_HEADERS = ["router", "precision", "p50 ms (1 query)", f"queries/s (batches of {DEFAULT_BATCH_SIZE})",
                           "vs fp32", "same choice as fp32", "queries differing", "largest score change",
                           "largest fp32 top-2 gap where differing"]


def tokens_per_epoch(data_dir: Path, prompt_length: int, response_length: int, batch_size: int = 2) -> dict:
    """Tokens the backbone processes per epoch of the whole Self-OSS-Instruct set (padding included), per
    causal layout, with the SmolLM2 tokenizer and the library's prompt framing (chat template)."""
    records = load_train_set(data_dir / SELF_OSS, PAPER_CANDIDATES, split="all")
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone(SMOLLM2))
    tokenizer.add_tokens([f"<|model_{i + 1}|>" for i in range(len(PAPER_CANDIDATES))], special_tokens=True)
    ids = tokenizer.convert_tokens_to_ids([f"<|model_{i + 1}|>" for i in range(len(PAPER_CANDIDATES))])
    max_length = stage_max_length("causal", sum(map(len, prompt_frame(tokenizer))), prompt_length, response_length, 0,
                                  len(PAPER_CANDIDATES))
    collator = CausalCollator(tokenizer, len(PAPER_CANDIDATES), max_length, prompt_length, ids, assign_rows=single_row)
    features = collator.encode(records, with_responses=True)
    totals = {layout: 0 for layout in (PLAIN, PACKED, SHARED)}
    for start in range(0, len(features), batch_size):
        chunk = features[start:start + batch_size]
        for layout in totals:
            totals[layout] += make_batch("causal", layout, collator, chunk)["input_ids"].numel()
    return {"queries": len(records), **totals}


# ----- report -----

def markdown(headers: list[str], rows: list[list]) -> str:
    def cell(value):
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def epoch_table(data_dir: Path) -> str:
    rows = []
    for prompt_length, response_length in ((1024, 1024), (256, 256)):
        counts = tokens_per_epoch(data_dir, prompt_length, response_length)
        rows += [[f"<= {prompt_length} + <= {response_length}", layout, f"{counts[layout] / 1e6:.2f}M",
                  f"{counts[layout] / counts[PLAIN]:.0%}"] for layout in (PLAIN, PACKED, SHARED)]
    return (f"## Tokens per epoch: Self-OSS-Instruct ({counts['queries']} queries), SmolLM2 tokenizer with its chat "
            f"template, 5 candidates, batches of 2 queries\n\n"
            + markdown(["prompt + response tokens", "layout", "tokens per epoch", "of plain"], rows))


def training_row(stage: str, layout: str, attention: str, batch_size: int, compiled: bool, settings: dict,
                 records: list[dict], device: torch.device, ceiling: float) -> tuple[list, dict]:
    result = measure_training(stage, layout, attention, batch_size, compiled, settings, records, device, ceiling)
    row = [stage, STAGES[stage][1].split(":")[1], layout + (" + compile" if compiled else ""), attention,
           batch_size, result["examples/s"], result["tokens/s"], result["tokens/step"], result["TFLOP/s"],
           f"{result['MFU']:.1%}", f"{result['peak GiB']:.2f}", result["warm-up s"]]
    print("  " + " | ".join(str(value) for value in row), flush=True)
    return row, result


TRAINING_HEADERS = ["stage", "backbone", "layout", "attention", "queries/step", "examples/s", "tokens/s",
                    "grid tokens/step", "model TFLOP/s", "MFU", "peak GiB", "warm-up s (wall)"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=sorted(MODES), default="cpu")
    parser.add_argument("--data_dir", type=Path, default=REPO.parent / "shared" / "data" / "compressed_data",
                        help="Folder holding train/SelfOSSInstructSC2_filtered2 (random text when absent).")
    parser.add_argument("--stages", nargs="+", choices=list(STAGES), default=list(STAGES))
    parser.add_argument("--compile", action="store_true",
                        help="Measure only what torch.compile of the backbone gives: the causal prefix-shared row "
                             "without and with it (warm-up = compilation).")
    parser.add_argument("--skip_epoch", action="store_true", help="Skip the tokens-per-epoch table.")
    parser.add_argument("--routing_only", action="store_true",
                        help="Only the routing tables (no training throughput, no tokens per epoch).")
    parser.add_argument("--routers", nargs="+", type=Path, default=[],
                        help="Trained router folders: add their speed and agreement per precision on the test "
                             "benchmarks' queries (CPU; --data_dir must hold test/).")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's).")
    parser.add_argument("--output", type=Path, default=None, help="Also write the tables to this file.")
    args = parser.parse_args(argv)
    settings = MODES[args.mode]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.mode == "gpu" else "cpu")
    sections = []

    def emit(text: str) -> None:
        print(text + "\n", flush=True)
        sections.append(text)
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text("\n\n".join(sections) + "\n")

    dtype, size = settings["matmul"]
    ceiling = matmul_ceiling(device, dtype, size, settings["clock"])
    where = (torch.cuda.get_device_name(device) + ", wall clock" if device.type == "cuda"
             else f"CPU, {torch.get_num_threads()} threads, times in process CPU seconds")
    emit(f"# Layout benchmark ({args.mode} mode, {where}; torch {torch.__version__})\n\n"
         f"Matrix-product ceiling ({str(dtype).replace('torch.', '')}, {size}^3): {ceiling / 1e12:.3g} TFLOP/s.")
    data_present = (args.data_dir / SELF_OSS).is_dir()
    records, source = training_records(args.data_dir if data_present else None, 256)
    layers = f"{settings['layers']} layers of each backbone" if settings["layers"] else "full-depth backbones"
    shape = (f"{layers}, random init; {source}; prompts <= {settings['prompt']} / {settings['encoder_prompt']} "
             f"tokens, responses <= {settings['response']} / {settings['encoder_response']} (SmolLM2 / MiniLM); "
             f"{settings['warmup']} warm-up + {settings['steps']} timed steps")

    if args.compile:
        batch = settings["large_batch"] or settings["causal_batch"]
        attention = settings["packed_attention"][SMOLLM2]
        rows = [training_row("causal", SHARED, attention, batch, compiled, settings, records, device, ceiling)[0]
                for compiled in (False, True)]
        emit(f"## torch.compile of the backbone ({shape})\n\n" + markdown(TRAINING_HEADERS, rows))
        return

    if not args.skip_epoch and not args.routing_only and data_present:
        emit(epoch_table(args.data_dir))

    training_rows, precision_rows, routing_rows, speedups = [], [], [], {}
    mode_precision = FP32 if settings["dtype"] is None else BF16_AUTOCAST
    for stage in args.stages:
        batch = settings["causal_batch" if stage == "causal" else "encoder_batch"]
        packed_attention = settings["packed_attention"][STAGES[stage][1]]
        variants = [(layout, "sdpa" if layout == PLAIN else packed_attention, batch) for layout in layouts_of(stage)]
        if stage == "causal" and settings["large_batch"]:
            variants.append((SHARED, packed_attention, settings["large_batch"]))
        measured = {}
        for layout, attention, batch_size in variants if not args.routing_only else []:
            row, measured[layout, batch_size] = training_row(stage, layout, attention, batch_size, False, settings,
                                                             records, device, ceiling)
            training_rows.append(row)
            speedups.setdefault(("train", stage), {})[(layout, batch_size)] = measured[layout, batch_size]["examples/s"]
        if device.type == "cpu" and not args.routing_only:  # the Trainer's --bf16 on CPU: bf16 autocast
            library_layout = layouts_of(stage)[-1]
            fp32 = measured[library_layout, batch]  # the float32 row of the training table
            bf16 = measure_training(stage, library_layout, packed_attention, batch, False,
                                    {**settings, "dtype": torch.bfloat16}, records, device, ceiling)
            for precision, result in ((FP32, fp32), (BF16_AUTOCAST, bf16)):
                precision_rows.append([stage, STAGES[stage][1].split(":")[1], library_layout, precision, batch,
                                       result["examples/s"], result["tokens/s"],
                                       f"{result['examples/s'] / fp32['examples/s']:.2f}x"])
                print("  " + " | ".join(str(value) for value in precision_rows[-1]), flush=True)
        library_layout = layouts_of(stage)[-1]
        routings = [(layout, None) for layout in layouts_of(stage)]
        if device.type == "cpu":  # the other precisions, on the layout the library routes with
            routings += [(library_layout, precision) for precision in ROUTING_PRECISIONS if precision != FP32]
        for layout, precision in routings:
            attention = "sdpa" if layout == PLAIN else packed_attention
            result = measure_routing(stage, layout, attention, settings, records, device, precision)
            speed = result["queries/s"]
            if precision is None:
                speedups.setdefault(("route", stage), {})[layout] = speed
            measured = speedups[("route", stage)]
            routing_rows.append([stage, STAGES[stage][1].split(":")[1], layout, attention, precision or mode_precision,
                                 result["p50 ms"], result["p90 ms"], speed, f"{speed / measured[PLAIN]:.2f}x",
                                 f"{speed / measured[layout]:.2f}x"])
            print("  " + " | ".join(str(value) for value in routing_rows[-1]), flush=True)

    if training_rows:
        emit(f"## Training throughput ({shape})\n\n" + markdown(TRAINING_HEADERS, training_rows))
    if precision_rows:
        emit(f"## Training precision on CPU (the library's layout; bf16 autocast is the Trainer's --bf16 with "
             f"--use_cpu; {shape})\n\n"
             + markdown(["stage", "backbone", "layout", "precision", "queries/step", "examples/s", "tokens/s",
                         "vs fp32"], precision_rows))
    emit(f"## Routing (latency: one query at a time, collation included; throughput: batches of "
         f"{settings['route_batch']}; vs plain: vs the plain padded row, vs fp32: vs the same layout's "
         f"{mode_precision} row)\n\n"
         + markdown(["stage", "backbone", "layout", "attention", "precision", "p50 ms", "p90 ms", "queries/s",
                     "vs plain", f"vs {mode_precision}"], routing_rows))
    if args.routers:
        prompts = benchmark_prompts(args.data_dir)
        rows = [row for folder in args.routers for row in trained_routing_rows(folder, prompts)]
        emit(f"## Routing with trained routers, per precision (CPU, {torch.get_num_threads()} threads, process CPU "
             f"time; agreement over the {len(prompts)} queries of the seven test benchmarks)\n\n"
             + markdown(TRAINED_ROUTING_HEADERS, rows))
    if "causal" in args.stages and not args.routing_only:
        train, route = speedups[("train", "causal")], speedups[("route", "causal")]
        batch = settings["causal_batch"]
        plain = train[(PLAIN, batch)]
        emit("## Ratios\n\n"
             f"- causal routing, prefix-shared vs k prompt copies (plain padded): {route[SHARED] / route[PLAIN]:.2f}x "
             f"queries/s (target >= 4x on CPU)\n"
             f"- causal training, prefix-shared vs plain padded at {batch} queries/step: "
             f"{train[(SHARED, batch)] / plain:.2f}x examples/s\n"
             f"- causal training, best row vs plain padded at {batch} queries/step: {max(train.values()) / plain:.2f}x "
             f"examples/s (GPU target >= 5x, eager)")


if __name__ == "__main__":
    main()
