#!/usr/bin/env bash
# Reference routers on the test benchmarks: the oracle, each candidate alone (fixed), random choice (three
# seeds) and the task-aware baseline (each query to the candidate best on average over its predicted source;
# cross-fitted on TASK_AWARE_TRAIN; the first run embeds ~17k prompts with MiniLM, 5-15 min on 2 CPU cores,
# seconds once they are cached). Each run writes its predictions, metrics.json and results.md under
# OUTPUT_ROOT; at the end one combined table is printed and written to OUTPUT_ROOT/results.md.
#
# Usage: bash baselines.sh          (edit the variables below first; uses `python` from your PATH)
set -euo pipefail
cd "$(dirname "$0")"

# ---- edit these ---------------------------------------------------------------------------------
DATA_DIR="${DATA_DIR:-$( [ -d data ] && echo data || echo compressed_data )}"
CANDIDATES=(Yi-1.5-34B-Chat internlm2_5-20b-chat Phi-3-medium-4k-instruct Llama-3.1-8B-Instruct Qwen2.5-Coder-7B-Instruct)
OUTPUT_ROOT="${OUTPUT_ROOT:-output/baselines}"
TEST_DATASETS="${TEST_DATASETS:-}"   # empty: every benchmark of data.BENCHMARKS; else e.g. GSM8k,MATH
RANDOM_SEEDS=(0 1 2)
TASK_AWARE_TRAIN="${TASK_AWARE_TRAIN-SelfOSSInstructSC2_filtered2/responses}"   # empty: no task-aware row
CROSS_FIT_FOLDS=2
# --------------------------------------------------------------------------------------------------
mkdir -p "$OUTPUT_ROOT"

CANDIDATE_LIST=$(IFS=,; echo "[${CANDIDATES[*]}]")
RUN_DIRS=()
TOTAL_RUNS=$((1 + ${#CANDIDATES[@]} + ${#RANDOM_SEEDS[@]} + (${#TASK_AWARE_TRAIN} > 0)))
STARTED=$SECONDS

evaluate() {  # evaluate RUN_DIR ROUTER_ARGS...: one run, with progress (runs done, time elapsed and left)
    local run_dir="$1" done_runs="${#RUN_DIRS[@]}" elapsed=$((SECONDS - STARTED)) left="?"; shift
    [ "$done_runs" -gt 0 ] && left="$((elapsed * (TOTAL_RUNS - done_runs) / done_runs))s"
    echo "[baselines $((done_runs + 1))/${TOTAL_RUNS}] ${run_dir##*/} (${elapsed}s elapsed, ~${left} left)" >&2
    python src/eval_baseline.py --data_dir "$DATA_DIR" --candidate_llms "$CANDIDATE_LIST" \
        ${TEST_DATASETS:+--test_datasets "$TEST_DATASETS"} --output_dir "$run_dir" "$@" >/dev/null 2>"$run_dir.log" \
        || { cat "$run_dir.log" >&2; exit 1; }
    RUN_DIRS+=("$run_dir")
}

evaluate "$OUTPUT_ROOT/oracle" --router_type oracle
for index in "${!CANDIDATES[@]}"; do
    evaluate "$OUTPUT_ROOT/fixed_${index}" --router_type fixed --target_index "$index" \
        --run_name "fixed: ${CANDIDATES[$index]}"
done
for seed in "${RANDOM_SEEDS[@]}"; do
    evaluate "$OUTPUT_ROOT/random_seed${seed}" --router_type random --seed "$seed" --run_name "random (seed ${seed})"
done
if [ -n "$TASK_AWARE_TRAIN" ]; then
    evaluate "$OUTPUT_ROOT/task_aware" --router_type task --cross_fit_folds "$CROSS_FIT_FOLDS" \
        --train_datasets "$TASK_AWARE_TRAIN" --run_name "task-aware (${CROSS_FIT_FOLDS}-fold cross-fit)"
fi

python src/report.py combine "${RUN_DIRS[@]}" --out "$OUTPUT_ROOT/results.md"
