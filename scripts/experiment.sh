# Sourced by the experiment scripts (lookahead_clm.sh, lookahead_mlm.sh, mlc_router.sh,
# router_with_gt_responses.sh), after their variables: the run folder's name and the launcher.

# experiment_output_dir METHOD EXTRA_TAGS
#   output/<train sets>/<config>/<backbone short name>/<method>/lr<LR>_<ep|steps>_bs<global batch><EXTRA_TAGS>[_n<N>]
experiment_output_dir() {
    local method="$1" extra="$2" length train config backbone hyperparameters
    length="ep${NUM_EPOCHS}"; [ -n "$MAX_STEPS" ] && length="steps${MAX_STEPS}"
    hyperparameters="lr${LEARNING_RATE}_${length}_bs$((PER_DEVICE_BATCH_SIZE * NUM_GPUS * GRADIENT_ACCUMULATION_STEPS))${extra}"
    [ -n "$MAX_TRAIN_SAMPLES" ] && hyperparameters+="_n${MAX_TRAIN_SAMPLES}"
    train=$(for name in $TRAIN_DATASETS; do basename "$name"; done | paste -sd+)
    config=$([ "$CROSS_FIT_FOLDS" -gt 0 ] && echo "cf${CROSS_FIT_FOLDS}" || echo "no_cf")
    [ "$TEST_DATASETS" != "AlpacaEval ArenaHard MT-Bench GSM8k MATH HumanEval MBPP" ] && config+="_${TEST_DATASETS// /+}"
    backbone="${BACKBONE%/}"; backbone="${backbone##*[:/]}"
    echo "output/${train}/${config}/${backbone}/${method}/${hyperparameters}"
}

# launch_training SCRIPT OUTPUT_DIR TRAIN_PY_ARGS...
#   Adds the slice flags (MAX_TRAIN_SAMPLES, MAX_EVAL_SAMPLES, MAX_STEPS), picks the launcher (python on one
#   device; torchrun or accelerate with NUM_GPUS > 1 or DeepSpeed, which needs a distributed launcher even on
#   one device), copies SCRIPT into OUTPUT_DIR and runs src/train.py.
launch_training() {
    local script="$1" output_dir="$2"; shift 2
    local args=("$@") launch=(python)
    [ -n "$MAX_TRAIN_SAMPLES" ] && args+=(--max_train_samples "$MAX_TRAIN_SAMPLES")
    [ -n "$MAX_EVAL_SAMPLES" ] && args+=(--max_eval_samples "$MAX_EVAL_SAMPLES")
    [ -n "$MAX_STEPS" ] && args+=(--max_steps "$MAX_STEPS")
    if [[ " ${args[*]} " == *" --deepspeed "* ]] || [ "$NUM_GPUS" -gt 1 ]; then
        if [ "$LAUNCHER" = accelerate ]; then
            launch=(accelerate launch --config_file config/accelerate.yaml --num_processes "$NUM_GPUS")
        else
            launch=(torchrun --standalone --nproc_per_node "$NUM_GPUS")
        fi
    fi
    mkdir -p "$output_dir"
    cp "$script" "$output_dir/"
    echo "output: $output_dir" >&2
    "${launch[@]}" src/train.py "${args[@]}" --output_dir "$output_dir"
}
