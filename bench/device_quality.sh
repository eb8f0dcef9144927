#!/usr/bin/env bash
# The paper-length quality study on a lent GPU (issue 11), in three device calls; the first (the MLM study) is
# well under 6 minutes, the other two move the SmolLM2 GGUF (98 MB: more than one call carries) and train the
# causal stage at a smaller budget.
#
# Here, first:  bash bench/prepare_device_quality.sh          (fills the git-ignored .whl/quality/)
# Call 1: carry [".whl/quality/minilm", ".whl/quality/pack"], timeout_s 420:   bash bench/device_quality.sh mlm
#   trains Lookahead-MLM with the paper's recipe (bench/quality_gpu.yaml: 3 seeds x 2 folds, all-MiniLM-L6-v2's
#   real weights, bf16) on the record pack and returns $OUT/mlm_runs.tgz: every fold's test predictions,
#   eval_results.json, trainer_state.json and log. It also keeps the pack in /tmp for the next calls.
# Call 2, at once (the machine stays warm 30 s): carry [".whl/quality/smollm2.gguf.1"], timeout_s 60:
#               bash bench/device_quality.sh stash       (keeps the GGUF's first half in /tmp)
# Call 3, at once: carry [".whl/quality/smollm2.gguf.2", ".whl/quality/gguf-0.19.0-py3-none-any.whl"],
#   timeout_s 420:  bash bench/device_quality.sh clm
#   joins the GGUF, converts it to an HF checkpoint, trains Lookahead-CLM at a smaller budget (one seed, the
#   pack's responses of <= 600 characters, --max_length 1024, 1 epoch) and returns $OUT/clm_runs.tgz.
# Then here: tar xzf each tgz -C output/quality_gpu and run
#   python bench/quality.py --config bench/quality_gpu.yaml --output_dir output/quality_gpu
# which finds the folds done, merges them and scores them on the full data (the table, intervals, baselines).
# Each phase stops itself before DEADLINE seconds (default 360) and still packs what it has.
set -u
PHASE=${1:?usage: bash bench/device_quality.sh mlm|stash|clm}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false PYTHONPATH=$PWD/src
START=$(date +%s)
DEADLINE=${DEADLINE:-360}
OUT=${OUT:-/tmp/device_quality}
WORK=/tmp/quality_gpu
mkdir -p "$OUT" "$WORK"
left() { echo $(( DEADLINE - ($(date +%s) - START) )); }
pack_runs() {  # pack_runs NAME: the light files of every run folder into $OUT/NAME.tgz
  (cd "$WORK" && find runs \( -path '*/test_predictions/*' -o -name eval_results.json -o -name trainer_state.json \
      -o -name '*.log' -o -name '*wall_time.json' -o -name train_metrics.json \) -not -path '*/checkpoint-*' -print0 \
      | tar czf "$OUT/$1.tgz" --null -T -) && echo "packed $OUT/$1.tgz ($(du -h "$OUT/$1.tgz" | cut -f1))"
}
PACK=/tmp/quality_pack  # the pack, copied by call 1 (the machine keeps /tmp while it is warm)
[ -d .whl/quality/pack ] && { rm -rf "$PACK"; cp -r .whl/quality/pack "$PACK"; }
[ -d "$PACK" ] || { echo "no pack: run bash bench/prepare_device_quality.sh here and carry .whl/quality/pack"; exit 2; }
python3 -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__, \
'|', torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')" | tee "$OUT/summary.md"

case "$PHASE" in
  mlm)
    timeout $(( $(left) - 20 )) python3 bench/quality.py --config "${CONFIG:-bench/quality_gpu.yaml}" --output_dir "$WORK" \
        --data_dir "$PACK" --jobs "${JOBS:-2}" --train_only \
        > "$OUT/mlm.log" 2>&1
    echo "mlm: rc=$? in $(( $(date +%s) - START ))s" | tee -a "$OUT/summary.md"
    pack_runs mlm_runs ;;
  stash)
    cp .whl/quality/smollm2.gguf.1 /tmp/smollm2.gguf.1 && echo "stashed /tmp/smollm2.gguf.1" ;;
  clm)
    [ -f /tmp/smollm2.gguf.1 ] || { echo "no /tmp/smollm2.gguf.1: call 2 (stash) must run first on this machine"; exit 2; }
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/quality/gguf-*.whl && export PYTHONPATH=/tmp/site:$PYTHONPATH
    mkdir -p /tmp/smollm2_gguf && cat /tmp/smollm2.gguf.1 .whl/quality/smollm2.gguf.2 > /tmp/smollm2_gguf/SmolLM2-135M-Instruct.Q4_1.gguf
    python3 - <<'PY' || exit 3
from transformers import AutoModelForCausalLM, AutoTokenizer
name = "SmolLM2-135M-Instruct.Q4_1.gguf"
model = AutoModelForCausalLM.from_pretrained("/tmp/smollm2_gguf", gguf_file=name)
model.hf_quantizer = None
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained("/tmp/smollm2")
AutoTokenizer.from_pretrained("/tmp/smollm2_gguf", gguf_file=name).save_pretrained("/tmp/smollm2")
PY
    cat > /tmp/quality_clm.yaml <<'YAML'
train_datasets: [SelfOSSInstructSC2_filtered2/responses]
folds: 2
seeds: [42]
train_args: [--bf16, "True", --per_device_eval_batch_size, "64", --cross_fit_eval_fraction, "0.1",
             --max_length, "1024", --max_prompt_length, "512", --num_train_epochs, "1",
             --attn_implementation, flex_attention, --optim, adamw_torch_fused]
routers:
  Lookahead-CLM (causal, SmolLM2, GPU): {stage: causal, args: [--backbone_name_or_path, /tmp/smollm2]}
YAML
    timeout $(( $(left) - 20 )) python3 bench/quality.py --config /tmp/quality_clm.yaml --output_dir "$WORK" \
        --data_dir "$PACK" --jobs 2 --train_only > "$OUT/clm.log" 2>&1
    echo "clm: rc=$? in $(( $(date +%s) - START ))s" | tee -a "$OUT/summary.md"
    cp /tmp/quality_clm.yaml "$OUT/"
    pack_runs clm_runs ;;
  *) echo "unknown phase $PHASE: mlm, stash or clm"; exit 2 ;;
esac
