#!/usr/bin/env bash
# Response-aware upper bound (stage gt_responses): a classifier that reads the prompt with each candidate's
# actual response and scores it. It needs the responses at routing time too, so it is not a router: it
# bounds what perfectly foreseen responses can give.
#
# Usage: bash router_with_gt_responses.sh [more train.py flags]
#   Edit the variables below, or set any of them in the environment, e.g. a small slice on CPU:
#   MAX_TRAIN_SAMPLES=32 MAX_EVAL_SAMPLES=16 MAX_STEPS=2 TEST_DATASETS=MT-Bench bash router_with_gt_responses.sh
# Output: OUTPUT_DIR (printed at the start) holds train.log, a copy of this script, run_args.json, the router,
# its checkpoints, trainer_state.json, training_curves.png, test_predictions/, metrics.json and results.md
# (with cross-fitting: one fold_<f>/ router folder per fold, merged predictions and metrics on top).
set -euo pipefail
SCRIPT="$(realpath "$0")"
cd "$(dirname "$SCRIPT")"

# ---- edit these -----------------------------------------------------------------------------------------
NUM_GPUS="${NUM_GPUS:-1}"                    # 1: python; more: one process per GPU with LAUNCHER (several CPU processes use gloo)
LAUNCHER="${LAUNCHER:-torchrun}"             # torchrun | accelerate (config/accelerate.yaml)
BACKBONE="${BACKBONE:-packaged:smollm2-135m-instruct}"   # paper backbones: HuggingFaceTB/SmolLM2-135M or answerdotai/ModernBERT-base
DATA_DIR="${DATA_DIR:-$( [ -d data ] && echo data || echo compressed_data )}"
TRAIN_DATASETS="${TRAIN_DATASETS:-SelfOSSInstructSC2_filtered2}"      # space-separated folders of DATA_DIR/train
TEST_DATASETS="${TEST_DATASETS:-AlpacaEval ArenaHard MT-Bench GSM8k MATH HumanEval MBPP}"
CANDIDATES="${CANDIDATES:-Yi-1.5-34B-Chat internlm2_5-20b-chat Phi-3-medium-4k-instruct Llama-3.1-8B-Instruct Qwen2.5-Coder-7B-Instruct}"
CROSS_FIT_FOLDS="${CROSS_FIT_FOLDS:-2}"      # 0: route the benchmarks with a router trained on TRAIN_DATASETS only
MAX_TRAIN_SAMPLES="${MAX_TRAIN_SAMPLES:-}"   # empty: every training query; a number: a seeded random slice
MAX_EVAL_SAMPLES="${MAX_EVAL_SAMPLES:-}"     # empty: the whole validation split (eval_ids.json)
MAX_STEPS="${MAX_STEPS:-}"                   # empty: NUM_EPOCHS epochs
MAX_PROMPT_LENGTH="${MAX_PROMPT_LENGTH:-128}"
MAX_RESPONSE_LENGTH="${MAX_RESPONSE_LENGTH:-128}"   # response tokens read after the prompt
NUM_EPOCHS="${NUM_EPOCHS:-1}"
LEARNING_RATE="${LEARNING_RATE:-5e-5}"
PER_DEVICE_BATCH_SIZE="${PER_DEVICE_BATCH_SIZE:-4}"      # queries per step (k sequences each)
GRADIENT_ACCUMULATION_STEPS="${GRADIENT_ACCUMULATION_STEPS:-4}"
ROUTING_LOSS="${ROUTING_LOSS:-CE}"           # CE | BCE | MSE | ForwardKL | ReverseKL
SEED="${SEED:-42}"
# ----------------------------------------------------------------------------------------------------------

source scripts/experiment.sh
OUTPUT_DIR="${OUTPUT_DIR:-$(experiment_output_dir gt_responses "_rl${MAX_RESPONSE_LENGTH}_${ROUTING_LOSS}")}"

ARGS=(
    gt_responses
    --backbone_name_or_path "$BACKBONE"
    --max_response_length "$MAX_RESPONSE_LENGTH"
    --routing_loss "$ROUTING_LOSS"
    # --attn_implementation flash_attention_2 # on GPUs: flash-attn; GPU flags: scripts/experiment.sh
)

launch_training "$SCRIPT" "$OUTPUT_DIR" "${ARGS[@]}" "$@"
