#!/usr/bin/env bash
# Generate one candidate LLM's responses to a training set's prompts: OUTPUT_PATH (prompt_id, response,
# response_tokens per line). Reruns resume where a run stopped. Run it once per candidate (MODEL_PATH), then
# score the responses with compute_reward.sh.
#
# Usage: bash generate_responses.sh      (edit the variables below first, or set them in the environment;
#                                         uses `python` from your PATH)
set -euo pipefail
cd "$(dirname "$0")"

# ---- edit these: the paper's variables ------------------------------------------------------------------
MODEL_PATH="${MODEL_PATH:-packaged:smollm2-135m-instruct}"   # a local chat model folder, a hub id, or packaged:...
DATA_PATH="${DATA_PATH:-output/sets/my_set/instructions.jsonl}"   # prompt_id, prompt[, tests|answer] per line
OUTPUT_PATH="${OUTPUT_PATH:-}"                      # empty: <DATA_PATH's folder>/responses/<model name>.jsonl
ENGINE="${ENGINE:-huggingface}"                     # huggingface (CPU or GPU) or vllm (GPU, if installed)
BATCH_SIZE="${BATCH_SIZE:-8}"                       # prompts per batch (use a few hundred with vllm)
TEMPERATURE="${TEMPERATURE:-0.8}"                   # the paper's sampling settings
TOP_P="${TOP_P:-0.95}"
MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-4096}"
SEED="${SEED:-0}"
# ----------------------------------------------------------------------------------------------------------

ARGS=(--data_path "$DATA_PATH" --model_path "$MODEL_PATH" --engine "$ENGINE" --batch_size "$BATCH_SIZE"
      --temperature "$TEMPERATURE" --top_p "$TOP_P" --max_new_tokens "$MAX_NEW_TOKENS" --seed "$SEED")
[ -n "$OUTPUT_PATH" ] && ARGS+=(--output_path "$OUTPUT_PATH")
python src/generate_responses.py "${ARGS[@]}" "$@"
