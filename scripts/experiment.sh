# Sourced by the experiment scripts (lookahead_clm.sh, lookahead_mlm.sh, mlc_router.sh,
# router_with_gt_responses.sh), after their variables: the run folder's name and the launcher.
#
# Variables every script has (each also read from the environment):
#   MODEL_PATH DATA_DIR TRAIN_SETS TEST_SETS CANDIDATE_LLMS LOSS_TYPE BATCH_SIZE ACCUMULATION_STEPS LEARNING_RATE
#   EPOCHS (the paper's names), MAX_LENGTH, EVAL_STEPS, CROSS_FIT_FOLDS, CROSS_FIT_EVAL_FRACTION, SOURCE_WEIGHTING,
#   TASK_PRIOR_BLEND (True | False | auto: True with LOSS_TYPE BCE, the loss the prior needs), SEED, MAX_TRAIN_SAMPLES, MAX_EVAL_SAMPLES,
#   MAX_STEPS, ADDITIONAL_ARGS (more train.py flags), CPU_BF16 (auto | 1 | 0), and the launch: NUM_GPUS (processes per machine), NNODES,
#   NODE_RANK, MASTER_ADDR, MASTER_PORT (several machines: run the script on each with its NODE_RANK),
#   LAUNCHER (torchrun | accelerate), DRY_RUN=1 (print the launch line and exit), OUTPUT_DIR.

NUM_GPUS="${NUM_GPUS:-1}"
NNODES="${NNODES:-1}"
NODE_RANK="${NODE_RANK:-0}"
MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
MASTER_PORT="${MASTER_PORT:-29500}"
LAUNCHER="${LAUNCHER:-torchrun}"
DRY_RUN="${DRY_RUN:-0}"
[ "$TASK_PRIOR_BLEND" = auto ] && TASK_PRIOR_BLEND=$([ "$LOSS_TYPE" = BCE ] && echo True || echo False)
# flags_not_in_folder_name FLAG...: the flags, shell-quoted on one line, less those (each with its value) that work
#   on the same run folder on purpose, --resume_from_checkpoint (a resume continues its run) and --cross_fit_only_fold
#   (the folds of one run, trained in parallel), or change how a run is launched, logged or named but not what it
#   learns: --deepspeed, --run_name, --report_to, --logging_steps, --disable_tqdm, --dataloader_num_workers.
flags_not_in_folder_name() {
    local shown="" flag
    while [ $# -gt 0 ]; do
        flag="${1%%=*}"
        case "$flag" in
            --resume_from_checkpoint | --cross_fit_only_fold | --deepspeed | --run_name | --report_to | \
            --logging_steps | --disable_tqdm | --dataloader_num_workers)
                # and its value, when it comes as the next word
                [ "$1" = "$flag" ] && [ $# -gt 1 ] && [[ "$2" != --* ]] && shift ;;
            *) shown+="${shown:+ }$(printf %q "$1")" ;;
        esac
        shift
    done
    printf %s "$shown"
}
# Read here, before the script computes OUTPUT_DIR: whether the user named the run folder, and the flags the folder's
# name does not show (ADDITIONAL_ARGS and the script's own arguments, which this file sees as its "$@": source it
# without arguments).
OUTPUT_DIR_GIVEN="${OUTPUT_DIR:+1}"
# shellcheck disable=SC2086  # ADDITIONAL_ARGS is a string of flags, split on spaces as the scripts pass it
UNNAMED_FLAGS="$(flags_not_in_folder_name ${ADDITIONAL_ARGS:-} "$@")"
CPU_BF16="${CPU_BF16:-auto}"   # 1: --bf16 True --use_cpu True; auto: so when there is no GPU and the CPU has native bf16


# experiment_output_dir METHOD EXTRA_TAGS
#   output/<train sets>/<config>/<model>/<method>/lr<LR>_<ep|steps>_bs<global batch><EXTRA_TAGS>[_n<N>]_s<SEED>
experiment_output_dir() {
    local method="$1" extra="$2" length train config model hyperparameters
    length="ep${EPOCHS}"; [ -n "$MAX_STEPS" ] && length="steps${MAX_STEPS}"
    hyperparameters="lr${LEARNING_RATE}_${length}_bs$((BATCH_SIZE * NUM_GPUS * NNODES * ACCUMULATION_STEPS))${extra}"
    [ "$SOURCE_WEIGHTING" != none ] && hyperparameters+="_sw${SOURCE_WEIGHTING}"
    [ "$TASK_PRIOR_BLEND" = True ] && hyperparameters+="_tp"
    [ -n "$MAX_TRAIN_SAMPLES" ] && hyperparameters+="_n${MAX_TRAIN_SAMPLES}"
    hyperparameters+="_s${SEED}"
    train=$(for name in ${TRAIN_SETS//,/ }; do name="${name%/}"; basename "${name%/*}"; done | paste -sd+)
    config=$([ "$CROSS_FIT_FOLDS" -gt 0 ] && echo "cf${CROSS_FIT_FOLDS}" || echo "no_cf")
    [ -n "$TEST_SETS" ] && config+="_$(echo ${TEST_SETS//,/ } | tr ' ' '+')"  # empty: every benchmark
    model="${MODEL_PATH%/}"; model="${model##*[:/]}"
    echo "output/${train}/${config}/${model}/${method}/${hyperparameters}"
}

# launch_training SCRIPT OUTPUT_DIR STAGE [STAGE FLAGS...] [$ADDITIONAL_ARGS] [USER FLAGS...]
#   Adds the flags every experiment shares (from the variables above) right after STAGE, so the script's own
#   flags, ADDITIONAL_ARGS and the user's command-line flags, which the scripts pass after, win. Picks the
#   launcher: python on one process; torchrun (or accelerate) with NUM_GPUS > 1, NNODES > 1 or DeepSpeed, which needs a distributed
#   launcher even on one device. Copies SCRIPT into OUTPUT_DIR as train.sh and runs src/train.py (or, with
#   DRY_RUN=1, prints the launch line and exits).
#   GPU flags (each needs its package; train.py names the one to install when it is missing), e.g. in
#   ADDITIONAL_ARGS: --bf16 True, --optim adamw_torch_fused, --torch_compile True (the compile warm-up is paid once
#   per shape), --deepspeed config/deepspeed/ds_z3_config.json (ZeRO-0/2/3 and offload configs in
#   config/deepspeed/), --use_liger (liger-kernel; Llama-family models), --gradient_checkpointing.
launch_training() {
    local script="$1" output_dir="$2" stage="$3"; shift 3
    local launch=(python) args=(
        "$stage"
        --backbone_name_or_path "$MODEL_PATH"
        --data_dir "$DATA_DIR"
        --train_datasets ${TRAIN_SETS//,/ }
        ${TEST_SETS:+--test_datasets ${TEST_SETS//,/ }}
        --candidate_llms ${CANDIDATE_LLMS//,/ }
        --loss_type "$LOSS_TYPE"
        --max_length "$MAX_LENGTH"
        --learning_rate "$LEARNING_RATE"
        --num_train_epochs "$EPOCHS"
        --per_device_train_batch_size "$BATCH_SIZE"
        --per_device_eval_batch_size "$((2 * BATCH_SIZE))"
        --gradient_accumulation_steps "$ACCUMULATION_STEPS"
        --eval_steps "$EVAL_STEPS"
        --save_steps "$EVAL_STEPS"
        --cross_fit_folds "$CROSS_FIT_FOLDS"
        $( [ "$CROSS_FIT_FOLDS" -gt 0 ] && echo --cross_fit_eval_fraction "$CROSS_FIT_EVAL_FRACTION" )
        --source_weighting "$SOURCE_WEIGHTING"
        --task_prior_blend "$TASK_PRIOR_BLEND"
        --seed "$SEED"
        --disable_tqdm True
        "$@"
    )
    [ "$CPU_BF16" = auto ] && CPU_BF16=$(python src/utils/hardware.py 2>/dev/null || echo 0)
    # bf16 autocast on CPUs with AVX512-BF16 / AMX (1.45x faster MiniLM training here); before the script's and the
    # user's flags, so an explicit --bf16 False wins
    [ "$CPU_BF16" = 1 ] && args=("${args[0]}" --bf16 True --use_cpu True "${args[@]:1}")
    [ -n "$MAX_TRAIN_SAMPLES" ] && args+=(--max_train_samples "$MAX_TRAIN_SAMPLES")
    [ -n "$MAX_EVAL_SAMPLES" ] && args+=(--max_eval_samples "$MAX_EVAL_SAMPLES")
    [ -n "$MAX_STEPS" ] && args+=(--max_steps "$MAX_STEPS")
    if [[ " ${args[*]} " == *" --deepspeed "* ]] || [ "$NUM_GPUS" -gt 1 ] || [ "$NNODES" -gt 1 ]; then
        if [ "$LAUNCHER" = accelerate ]; then
            launch=(accelerate launch --config_file config/accelerate.yaml --num_machines "$NNODES"
                    --machine_rank "$NODE_RANK" --main_process_ip "$MASTER_ADDR" --main_process_port "$MASTER_PORT"
                    --num_processes "$((NUM_GPUS * NNODES))")
        elif [ "$NNODES" -gt 1 ]; then
            launch=(torchrun --nnodes "$NNODES" --node_rank "$NODE_RANK" --master_addr "$MASTER_ADDR"
                    --master_port "$MASTER_PORT" --nproc_per_node "$NUM_GPUS")
        else
            launch=(torchrun --standalone --nproc_per_node "$NUM_GPUS")
        fi
    fi
    # --output_dir among the user's flags names the run folder, as OUTPUT_DIR does (the last one wins, as in train.py)
    local rest=() i=0 named="$OUTPUT_DIR_GIVEN"
    while [ "$i" -lt "${#args[@]}" ]; do
        case "${args[i]}" in
            --output_dir)
                if [ $((i + 1)) -ge "${#args[@]}" ]; then
                    echo "error: --output_dir needs a folder (or set OUTPUT_DIR)" >&2
                    return 2
                fi
                output_dir="${args[i + 1]}" named=1 i=$((i + 2))
                continue ;;
            --output_dir=*) output_dir="${args[i]#--output_dir=}" named=1 ;;
            *) rest+=("${args[i]}") ;;
        esac
        i=$((i + 1))
    done
    args=("${rest[@]}")
    if [ -z "$named" ] && [ -n "$UNNAMED_FLAGS" ]; then
        echo "note: the run folder's name is made from the script's variables, so it does not show the flags" \
             "given after the script's name or in ADDITIONAL_ARGS ($UNNAMED_FLAGS): a run with other such flags" \
             "writes to the same folder. To keep runs apart, set the variable when there is one (e.g." \
             "MASK_LENGTH=8 rather than --mask_length 8) or OUTPUT_DIR." >&2
    fi
    if [ "$DRY_RUN" = 1 ]; then
        printf '%q ' "${launch[@]}" src/train.py "${args[@]}" --output_dir "$output_dir"
        echo
        return 0
    fi
    mkdir -p "$output_dir"
    cp "$script" "$output_dir/train.sh"
    echo "output: $output_dir" >&2
    "${launch[@]}" src/train.py "${args[@]}" --output_dir "$output_dir"
}
