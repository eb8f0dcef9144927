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

# launch_training SCRIPT OUTPUT_DIR STAGE [STAGE FLAGS...] [USER FLAGS...]
#   Adds the flags every experiment shares (data, candidates, cross-fitting, prompt length, optimisation, seed:
#   from the scripts' variables) after STAGE, so the script's own flags and the user's, which come later, win;
#   then the slice flags (MAX_TRAIN_SAMPLES, MAX_EVAL_SAMPLES, MAX_STEPS). Picks the launcher (python on one
#   device; torchrun or accelerate with NUM_GPUS > 1 or DeepSpeed, which needs a distributed launcher even on
#   one device), copies SCRIPT into OUTPUT_DIR and runs src/train.py.
#   GPU flags (each needs its package; train.py names the one to install when it is missing), to add in a
#   script's ARGS or on its command line: --bf16 True, --optim adamw_torch_fused, --torch_compile True (the
#   compile warm-up is paid once per shape), --deepspeed config/deepspeed/ds_z2_config.json (ZeRO-0/2/3 and
#   offload configs in config/deepspeed/), --use_liger_kernel True (liger-kernel; its kernels target Llama-family
#   models), --gradient_checkpointing True; each script names its stage's --attn_implementation.
launch_training() {
    local script="$1" output_dir="$2" stage="$3"; shift 3
    local launch=(python) args=(
        "$stage"
        --data_dir "$DATA_DIR"
        --train_datasets $TRAIN_DATASETS
        --test_datasets $TEST_DATASETS
        --candidate_llms $CANDIDATES
        --cross_fit_folds "$CROSS_FIT_FOLDS"
        --max_prompt_length "$MAX_PROMPT_LENGTH"
        --learning_rate "$LEARNING_RATE"
        --num_train_epochs "$NUM_EPOCHS"
        --warmup_steps 0.1
        --per_device_train_batch_size "$PER_DEVICE_BATCH_SIZE"
        --per_device_eval_batch_size "$((2 * PER_DEVICE_BATCH_SIZE))"
        --gradient_accumulation_steps "$GRADIENT_ACCUMULATION_STEPS"
        --eval_steps 0.2
        --save_steps 0.2
        --seed "$SEED"
        --disable_tqdm True
        "$@"
    )
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
