"""Ray Jobs entry point: ECGBench sweep over models x subsets; the same run(cfg) as the pulse CLI.

pulse submit ecgbench_sweep --config configs/ecgbench/sweep_local.yaml --address http://HEAD:8265
ray job submit --working-dir . -- python jobs/ecgbench_sweep.py --config configs/ecgbench/sweep_local.yaml key.sub=value
"""

import sys

from _entry import run_job  # jobs/ is sys.path[0] when this file runs as a script

if __name__ == "__main__":
    sys.exit(run_job("ecgbench_sweep"))
