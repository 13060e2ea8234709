"""Ray Jobs entry point: finetune LLaVA-NeXT with Ray Train; the same run(cfg) as the pulse CLI.

pulse submit train --config configs/train/tiny-cpu.yaml --address http://HEAD:8265
ray job submit --working-dir . -- python jobs/train.py --config configs/train/tiny-cpu.yaml key.sub=value
"""

import sys

from _entry import run_job  # jobs/ is sys.path[0] when this file runs as a script

if __name__ == "__main__":
    sys.exit(run_job("train"))
