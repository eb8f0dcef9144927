#!/usr/bin/env bash
# The test suite: sets up the environment (idempotent), then runs pytest. Extra arguments go to pytest,
# e.g. `bash test.sh -m slow` for the slow tests, `bash test.sh tests/test_metrics.py`.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup_env.sh
exec .venv/bin/python -m pytest "$@"
