#!/usr/bin/env bash
# GPU check of the fast Lookahead path (issue 4), in one device call of under 6 minutes.
#
# Here, first:   bash bench/prepare_device_carry.sh        (fills the git-ignored .whl/, about 30 MB)
# On the GPU machine, from the repository root, carrying .whl:
#                bash bench/device_check.sh                 (writes under $OUT; run with timeout_s 480)
#
# Phases, most important first, each under its own time limit (the whole stays under DEADLINE seconds):
#   1. tests/test_packing.py on CUDA: FlexAttention prefix-shared training (logits, loss, gradients) against the
#      plain per-candidate sequences, and the fused / chunked linear cross-entropy (Liger's kernel included)
#   2. bench/bench.py --mode gpu: the layout tables (tokens per epoch, training and routing throughput, MFU)
#   3. src/train.py for each stage: a short real training (random-initialised backbones of the packaged shapes,
#      bf16, fused AdamW; FlexAttention for causal), then routing HumanEval; its results table
#   4. bench/bench.py --mode gpu --compile, if time is left: what torch.compile gives and what it costs
# Compilation (torch.compile, FlexAttention's kernels) is cached in TORCHINDUCTOR_CACHE_DIR, which starts from
# .whl/inductor_cache.tgz when a previous device run's is there, and is packed again at the end.
# Everything lands in $OUT (seven files: the device returns at most eight): summary.md (the tables and verdicts),
# tests.log, bench_gpu.md, bench_compile.md, bench.log, train.log (the full logs) and inductor_cache.tgz: copy
# that into .whl/ here, and the next device run skips most of the compilation (warm-up).
set -u
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
START=$(date +%s)
DEADLINE=${DEADLINE:-340}
OUT=${OUT:-/tmp/device_check}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.md
left() { echo $(( DEADLINE - ($(date +%s) - START) )); }
note() { echo "$*" | tee -a "$SUMMARY"; }

[ -d .whl/data ] || { echo "no .whl/data: run bash bench/prepare_device_carry.sh here first, and carry .whl"; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 2; }
export PYTHONPATH=/tmp/site:$PWD/.whl/site:$PWD/src LOOKAHEAD_CACHE=$PWD/.whl/lookahead_cache
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor_cache
mkdir -p "$TORCHINDUCTOR_CACHE_DIR"
note "# Device check ($(date -u +%FT%TZ))"
if [ -f .whl/inductor_cache.tgz ]; then
  tar xzf .whl/inductor_cache.tgz -C "$TORCHINDUCTOR_CACHE_DIR" && note "compilation caches: from .whl/inductor_cache.tgz"
else
  note "compilation caches: cold (no .whl/inductor_cache.tgz)"
fi
python3 -c "import torch, transformers, triton; print('torch', torch.__version__, '| transformers', \
transformers.__version__, '| triton', triton.__version__, '|', torch.cuda.get_device_name())" 2>&1 | tee -a "$SUMMARY"

# 1. correctness on CUDA
t=$(date +%s)
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_packing.py > "$OUT/tests.log" 2>&1
note "- tests/test_packing.py: rc=$? in $(( $(date +%s) - t ))s: $(tail -1 "$OUT/tests.log")"

# 2. the layout benchmark
t=$(date +%s)
timeout $(( $(left) - 130 )) python3 bench/bench.py --mode gpu --data_dir .whl/data --output "$OUT/bench_gpu.md" \
    >> "$OUT/bench.log" 2>&1
note "- bench --mode gpu: rc=$? in $(( $(date +%s) - t ))s"
[ -f "$OUT/bench_gpu.md" ] && cat "$OUT/bench_gpu.md" >> "$SUMMARY"

# 3. a short real training of each stage (random-initialised backbones of the packaged shapes)
python3 - <<'PY' >> "$OUT/train.log" 2>&1
from transformers import AutoConfig, AutoTokenizer, BertForMaskedLM, LlamaForCausalLM
from model.backbones import resolve_backbone
for name, model_class, folder in [("packaged:smollm2-135m-instruct", LlamaForCausalLM, "/tmp/bb/smollm2"),
                                  ("packaged:all-minilm-l6-v2", BertForMaskedLM, "/tmp/bb/minilm")]:
    path = resolve_backbone(name)
    model_class(AutoConfig.from_pretrained(path)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(path).save_pretrained(folder)
PY
COMMON=(--data_dir .whl/data --test_datasets HumanEval --bf16 True --optim adamw_torch_fused --max_steps 10
        --max_train_samples 512 --max_eval_samples 64 --eval_steps 10 --save_steps 10 --logging_steps 5
        --per_device_eval_batch_size 32 --disable_tqdm True --seed 0)
runtime() {  # the Trainer's own timing from train_metrics.json
  python3 -c "import json, sys; m = json.load(open(sys.argv[1])); print('train_runtime', m['train_runtime'], \
's, samples/s', m['train_samples_per_second'])" "$1" 2>&1 | tail -1
}
train() {  # stage, seconds, flags...
  local stage=$1 limit=$2; shift 2
  [ "$(left)" -gt 25 ] || { note "- train $stage: skipped (time)"; return; }
  [ "$limit" -lt "$(left)" ] || limit=$(left)
  local t=$(date +%s)
  echo "===== $stage" >> "$OUT/train.log"
  timeout "$limit" python3 src/train.py "$stage" "$@" "${COMMON[@]}" --output_dir "/tmp/o/$stage" \
      >> "$OUT/train.log" 2>&1
  local rc=$? seconds=$(( $(date +%s) - t ))
  note "- train $stage: rc=$rc in ${seconds}s; $(runtime "/tmp/o/$stage/train_metrics.json")"
  grep -h "^| " "/tmp/o/$stage/results.md" 2>/dev/null >> "$SUMMARY"
}
train causal 70 --backbone_name_or_path /tmp/bb/smollm2 --attn_implementation flex_attention \
    --per_device_train_batch_size 8 --gradient_accumulation_steps 1 --max_prompt_length 256 --max_length 544
train mask_concat 30 --backbone_name_or_path /tmp/bb/minilm --per_device_train_batch_size 32 \
    --gradient_accumulation_steps 1 --max_length 215 --mask_length 16
train sc 30 --backbone_name_or_path /tmp/bb/minilm --per_device_train_batch_size 32 --gradient_accumulation_steps 1 \
    --max_length 130
train gt_responses 30 --backbone_name_or_path /tmp/bb/minilm --per_device_train_batch_size 16 \
    --gradient_accumulation_steps 1 --max_prompt_length 128 --max_length 387

# 4. torch.compile, if time is left
if [ "$(left)" -gt 120 ]; then
  t=$(date +%s)
  timeout "$(left)" python3 bench/bench.py --mode gpu --compile --data_dir .whl/data \
      --output "$OUT/bench_compile.md" >> "$OUT/bench.log" 2>&1
  note "- bench --compile: rc=$? in $(( $(date +%s) - t ))s"
  [ -f "$OUT/bench_compile.md" ] && cat "$OUT/bench_compile.md" >> "$SUMMARY"
else
  note "- bench --compile: skipped ($(left)s left)"
fi
tar czf "$OUT/inductor_cache.tgz" -C "$TORCHINDUCTOR_CACHE_DIR" . \
    && note "- compilation caches packed: $(du -h "$OUT/inductor_cache.tgz" | cut -f1) (copy into .whl/ for the next run)"
note "total $(( $(date +%s) - START ))s"
