#!/usr/bin/env bash
# Lookahead-CLM router (stage causal): a decoder reads the prompt and a model-ID token per candidate; in
# training it also continues each candidate's response after its ID token (next-token loss, weight
# SFT_LOSS_WEIGHT), and the routing head reads the hidden state at the ID tokens.
#
# Usage: bash lookahead_clm.sh [more train.py flags]
#   Edit the variables below, or set any of them in the environment, e.g. a small slice on CPU:
#   MAX_TRAIN_SAMPLES=32 MAX_EVAL_SAMPLES=16 MAX_STEPS=2 TEST_DATASETS=MT-Bench bash lookahead_clm.sh
# Output: OUTPUT_DIR (printed at the start) holds train.log, a copy of this script, run_args.json, the router,
# its checkpoints, trainer_state.json, training_curves.png, test_predictions/, metrics.json and results.md
# (with cross-fitting: one fold_<f>/ router folder per fold, merged predictions and metrics on top).
set -euo pipefail
SCRIPT="$(realpath "$0")"
cd "$(dirname "$SCRIPT")"

# ---- edit these -----------------------------------------------------------------------------------------
NUM_GPUS="${NUM_GPUS:-1}"                    # 1: python; more: one process per GPU with LAUNCHER (several CPU processes use gloo)
LAUNCHER="${LAUNCHER:-torchrun}"             # torchrun | accelerate (config/accelerate.yaml)
BACKBONE="${BACKBONE:-packaged:smollm2-135m-instruct}"   # paper: HuggingFaceTB/SmolLM2-135M (a local folder or hub id)
DATA_DIR="${DATA_DIR:-$( [ -d data ] && echo data || echo compressed_data )}"
TRAIN_DATASETS="${TRAIN_DATASETS:-SelfOSSInstructSC2_filtered2}"      # space-separated folders of DATA_DIR/train
TEST_DATASETS="${TEST_DATASETS:-AlpacaEval ArenaHard MT-Bench GSM8k MATH HumanEval MBPP}"
CANDIDATES="${CANDIDATES:-Yi-1.5-34B-Chat internlm2_5-20b-chat Phi-3-medium-4k-instruct Llama-3.1-8B-Instruct Qwen2.5-Coder-7B-Instruct}"
CROSS_FIT_FOLDS="${CROSS_FIT_FOLDS:-2}"      # 0: route the benchmarks with a router trained on TRAIN_DATASETS only
MAX_TRAIN_SAMPLES="${MAX_TRAIN_SAMPLES:-}"   # empty: every training query; a number: a seeded random slice
MAX_EVAL_SAMPLES="${MAX_EVAL_SAMPLES:-}"     # empty: the whole validation split (eval_ids.json)
MAX_STEPS="${MAX_STEPS:-}"                   # empty: NUM_EPOCHS epochs
MAX_PROMPT_LENGTH="${MAX_PROMPT_LENGTH:-128}"
MAX_RESPONSE_LENGTH="${MAX_RESPONSE_LENGTH:-128}"   # response tokens learnt after each model-ID token
NUM_EPOCHS="${NUM_EPOCHS:-1}"
LEARNING_RATE="${LEARNING_RATE:-5e-5}"
PER_DEVICE_BATCH_SIZE="${PER_DEVICE_BATCH_SIZE:-4}"      # queries per step (k sequences each)
GRADIENT_ACCUMULATION_STEPS="${GRADIENT_ACCUMULATION_STEPS:-4}"
ROUTING_LOSS="${ROUTING_LOSS:-CE}"           # CE | BCE | MSE | ForwardKL | ReverseKL
MODEL_ID_TYPE="${MODEL_ID_TYPE:-special}"    # special (added <|model_i|> tokens) | letter | number
SFT_LOSS_WEIGHT="${SFT_LOSS_WEIGHT:-1.0}"
SEED="${SEED:-42}"
# ----------------------------------------------------------------------------------------------------------

source scripts/experiment.sh
OUTPUT_DIR="${OUTPUT_DIR:-$(experiment_output_dir causal "_rl${MAX_RESPONSE_LENGTH}_${ROUTING_LOSS}_sft${SFT_LOSS_WEIGHT}_${MODEL_ID_TYPE}")}"

ARGS=(
    causal
    --backbone_name_or_path "$BACKBONE"
    --max_response_length "$MAX_RESPONSE_LENGTH"
    --model_id_type "$MODEL_ID_TYPE"
    --sft_loss_weight "$SFT_LOSS_WEIGHT"
    --routing_loss "$ROUTING_LOSS"
    # --attn_implementation flex_attention    # on GPUs: FlexAttention block masks for the prefix-shared documents; GPU flags: scripts/experiment.sh
)

launch_training "$SCRIPT" "$OUTPUT_DIR" "${ARGS[@]}" "$@"
