#!/usr/bin/env bash
# Install pulse and run the whole loop on the bundled real records on an embedded Ray.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e .
pulse demo "$@"
