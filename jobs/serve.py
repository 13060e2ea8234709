"""Ray Jobs entry point: deploy the OpenAI-compatible Ray Serve endpoint; the same run(cfg) as the pulse CLI.

pulse submit serve --config configs/serve/cpu.yaml --address http://HEAD:8265
ray job submit --working-dir . -- python jobs/serve.py --config configs/serve/cpu.yaml key.sub=value
"""

import sys

from _entry import run_job  # jobs/ is sys.path[0] when this file runs as a script

if __name__ == "__main__":
    sys.exit(run_job("serve"))
