#!/usr/bin/env bash
# Install pulse with its test dependencies and run the test suite (what CI runs).
#   bash scripts/test.sh            # everything but GPU tests
#   bash scripts/test.sh -k serve   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || echo "chromium not installed; browser test will be skipped"
fi
ruff check .
ruff format --check .
python -m pytest "$@"
