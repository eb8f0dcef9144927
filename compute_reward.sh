#!/usr/bin/env bash
# Score every candidate's responses in a training set, so the routers can learn from them:
# DATA_DIR/SCORE_DIR/<llm>.jsonl gets each response with its score (read by data.load_train_set; name the set
# in train.py as <set>/<SCORE_DIR>).
#
# Usage: bash compute_reward.sh          (edit the variables below first, or set them in the environment;
#                                         uses `python` from your PATH)
set -euo pipefail
cd "$(dirname "$0")"

# ---- edit these: the paper's variables ------------------------------------------------------------------
MODEL_NAME_OR_PATH="${MODEL_NAME_OR_PATH:-}"      # the reward model (SCORER=reward_model), e.g. a local copy of
                                                  # Skywork/Skywork-Reward-Gemma-2-27B-v0.2 (the paper's)
DATA_DIR="${DATA_DIR:-output/sets/my_set}"        # the training set's folder (instructions.jsonl, responses/)
LLMS="${LLMS:-smollm2-135m-instruct}"             # comma-separated names of DATA_DIR/RESPONSE_DIR/<llm>.jsonl
SCORER="${SCORER:-unit_tests}"                    # unit_tests (code), math_answer (math), reward_model (chat)
RESPONSE_DIR="${RESPONSE_DIR:-responses}"         # where the generated responses are
SCORE_DIR="${SCORE_DIR:-responses}"               # where the scored files go (the same folder: in place)
ALLOW_UNCONFINED_CODE="${ALLOW_UNCONFINED_CODE:-0}"  # unit_tests only: 1 runs model code without bubblewrap (see README)
# ----------------------------------------------------------------------------------------------------------

ARGS=(--scorer "$SCORER" --data_dir "$DATA_DIR" --llms "$LLMS" --response_dir "$RESPONSE_DIR" --score_dir "$SCORE_DIR")
if [ "$SCORER" = reward_model ]; then
    [ -n "$MODEL_NAME_OR_PATH" ] || { echo "compute_reward.sh: SCORER=reward_model needs MODEL_NAME_OR_PATH (a reward model folder)" >&2; exit 2; }
    ARGS+=(--model_path "$MODEL_NAME_OR_PATH")
fi
if [ "$ALLOW_UNCONFINED_CODE" = 1 ]; then
    ARGS+=(--allow_unconfined_code)
fi
python src/compute_rewards.py "${ARGS[@]}" "$@"
