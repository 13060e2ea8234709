"""Ray Jobs entry point: build instruction data (templates / LLM synthesis, judge, write); the same run(cfg) as the pulse CLI.

pulse submit build --config configs/build/bundled.yaml --address http://HEAD:8265
ray job submit --working-dir . -- python jobs/build.py --config configs/build/bundled.yaml key.sub=value
"""

import sys

from _entry import run_job  # jobs/ is sys.path[0] when this file runs as a script

if __name__ == "__main__":
    sys.exit(run_job("build"))
