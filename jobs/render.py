"""Ray Jobs entry point: render records to paper-ECG images; the same run(cfg) as the pulse CLI.

pulse submit render --config configs/render/demo.yaml --address http://HEAD:8265
ray job submit --working-dir . -- python jobs/render.py --config configs/render/demo.yaml key.sub=value
"""

import sys

from _entry import run_job  # jobs/ is sys.path[0] when this file runs as a script

if __name__ == "__main__":
    sys.exit(run_job("render"))
