"""``ray start`` with a patient startup wait, for heavily loaded CI hosts.

Ray's ``Node.__init__`` gives a fresh raylet a fixed 30 s to register with the GCS and then
aborts; on a shared 2-core host under load that is not enough. This wrapper retries the
registration lookup for up to ``PULSE_RAY_START_WAIT_S`` seconds and otherwise runs the
stock ``ray start`` CLI unchanged.
"""

import os
import sys
import time

import ray._private.services as services
from ray.scripts.scripts import main

_get_node = services.get_node


def _patient_get_node(*args, **kwargs):
    deadline = time.monotonic() + float(os.environ.get("PULSE_RAY_START_WAIT_S", "280"))
    while True:
        try:
            return _get_node(*args, **kwargs)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


services.get_node = _patient_get_node

if __name__ == "__main__":
    sys.exit(main())
