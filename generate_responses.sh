#!/usr/bin/env bash
# Generate every candidate LLM's responses to a training set's prompts, one output file per candidate:
# SET_DIR/responses/<llm>.jsonl (prompt_id, response, response_tokens). Reruns resume where a run stopped.
# Then score them with compute_reward.sh.
#
# Usage: bash generate_responses.sh      (edit the variables below first; uses `python` from your PATH)
set -euo pipefail
cd "$(dirname "$0")"

# ---- edit these ---------------------------------------------------------------------------------
SET_DIR="${SET_DIR:-output/sets/my_set}"            # holds instructions.jsonl (prompt_id, prompt[, tests|answer])
MODELS=(packaged:smollm2-135m-instruct)             # local model folders or hub ids (chat models)
ENGINE="${ENGINE:-huggingface}"                     # huggingface (CPU or GPU) or vllm (GPU, if installed)
BATCH_SIZE="${BATCH_SIZE:-8}"                       # prompts per batch (use a few hundred with vllm)
TEMPERATURE="${TEMPERATURE:-0.8}"                   # the paper's sampling settings
TOP_P="${TOP_P:-0.95}"
MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-4096}"
SEED="${SEED:-0}"
# --------------------------------------------------------------------------------------------------

for model in "${MODELS[@]}"; do
    echo "== ${model}" >&2
    python src/generate_responses.py --data_path "$SET_DIR/instructions.jsonl" --model_path "$model" \
        --engine "$ENGINE" --batch_size "$BATCH_SIZE" --temperature "$TEMPERATURE" --top_p "$TOP_P" \
        --max_new_tokens "$MAX_NEW_TOKENS" --seed "$SEED"
done
