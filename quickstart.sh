#!/usr/bin/env bash
# The main job on the embedded defaults, from a fresh machine:
#   1. set up .venv (dependencies + packaged offline backbones) and the paper's data (scripts/setup_env.sh);
#   2. evaluate the baseline routers (oracle, each fixed candidate, random, task-aware) on the seven benchmarks
#      (the task-aware row embeds ~17k prompts with MiniLM the first time, several minutes on 2 CPU cores, cached
#      after; TASK_AWARE_TRAIN= bash quickstart.sh leaves it out);
#   3. train a smoke-size Lookahead-MLM router with lookahead_mlm.sh on the packaged MiniLM (CPU, minutes): a
#      1,000-query slice of the training pool, 2-fold cross-fitting on the benchmarks, short lengths, one epoch;
#   4. print one table: the Lookahead router beside the baselines.
# Every phase prints its progress (done / total, time elapsed and left) on the terminal; the full logs are in
# output/quickstart/. Rerunning reuses the environment, the data and the baselines; the router is retrained.
#
# The router here is a smoke test of the pipeline, not a quality result: at this size the seed alone moves its
# mean gap_closed by ~0.2. The README's quality section has the study (several seeds, intervals).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH"
OUT=output/quickstart
mkdir -p "$OUT"

echo "== baselines: oracle, each fixed candidate, random (3 seeds), task-aware (2-fold cross-fit)" >&2
OUTPUT_ROOT=$OUT/baselines bash baselines.sh > /dev/null

echo "== training a smoke-size Lookahead-MLM router (lookahead_mlm.sh, packaged all-MiniLM-L6-v2, 2-fold cross-fit);" \
     "log: $OUT/lookahead_mlm.log" >&2
set +e
MAX_TRAIN_SAMPLES=1000 MAX_EVAL_SAMPLES=200 MAX_LENGTH=111 MASK_LENGTH=8 LEARNING_RATE=1e-4 EPOCHS=1 \
    BATCH_SIZE=16 ACCUMULATION_STEPS=1 EVAL_STEPS=0.5 SEED=42 OUTPUT_DIR=$OUT/lookahead_mlm \
    bash lookahead_mlm.sh --run_name "Lookahead-MLM (smoke size, seed 42)" 2>&1 \
    | tee "$OUT/lookahead_mlm.log" \
    | grep --line-buffered -E "progress:|: fold [0-9]+/|training on [0-9]+ queries" \
    | sed -u -E 's/^[0-9-]+ [0-9:]+ INFO lookahead: /  /' >&2
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
    echo "training failed (exit $status); the end of $OUT/lookahead_mlm.log:" >&2
    tail -n 20 "$OUT/lookahead_mlm.log" >&2
    exit "$status"
fi

baseline_runs=($OUT/baselines/{oracle,fixed_0,fixed_1,fixed_2,fixed_3,fixed_4,random_seed0})
[ -n "${TASK_AWARE_TRAIN-default}" ] && baseline_runs+=("$OUT/baselines/task_aware")
python src/report.py combine "${baseline_runs[@]}" $OUT/lookahead_mlm
