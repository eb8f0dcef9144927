#!/usr/bin/env bash
# Score every candidate's responses in a training set, so the routers can learn from them:
# SET_DIR/SCORE_DIR/<llm>.jsonl gets each response with its score (read by data.load_train_set).
#
# Usage: bash compute_reward.sh          (edit the variables below first; uses `python` from your PATH)
set -euo pipefail
cd "$(dirname "$0")"

# ---- edit these ---------------------------------------------------------------------------------
SET_DIR="${SET_DIR:-output/sets/my_set}"
LLMS="${LLMS:-smollm2-135m-instruct}"             # comma-separated names of SET_DIR/responses/<llm>.jsonl
SCORER="${SCORER:-unit_tests}"                    # unit_tests (code), math_answer (math), reward_model (chat)
RESPONSE_DIR="${RESPONSE_DIR:-responses}"         # where the generated responses are
SCORE_DIR="${SCORE_DIR:-responses}"               # where the scored files go (the same folder: in place)
REWARD_MODEL="${REWARD_MODEL:-}"                  # reward_model only, e.g. Skywork/Skywork-Reward-Gemma-2-27B-v0.2
ALLOW_UNCONFINED_CODE="${ALLOW_UNCONFINED_CODE:-0}"  # unit_tests only: 1 runs model code without bubblewrap (see README)
# --------------------------------------------------------------------------------------------------

ARGS=(--scorer "$SCORER" --data_dir "$SET_DIR" --llms "$LLMS" --response_dir "$RESPONSE_DIR" --score_dir "$SCORE_DIR")
if [ "$SCORER" = reward_model ]; then
    ARGS+=(--model_path "$REWARD_MODEL")
fi
if [ "$ALLOW_UNCONFINED_CODE" = 1 ]; then
    ARGS+=(--allow_unconfined_code)
fi
python src/compute_rewards.py "${ARGS[@]}"
