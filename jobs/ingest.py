"""Ray Jobs entry point: read raw ECG datasets into record Parquet; the same run(cfg) as the pulse CLI.

pulse submit ingest --config configs/ingest/bundled.yaml --address http://HEAD:8265
ray job submit --working-dir . -- python jobs/ingest.py --config configs/ingest/bundled.yaml key.sub=value
"""

import sys

from _entry import run_job  # jobs/ is sys.path[0] when this file runs as a script

if __name__ == "__main__":
    sys.exit(run_job("ingest"))
