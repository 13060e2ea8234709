"""A minimal config job (CONFIG_CLASS + run) used to exercise the jobs/ entry points on real Ray."""

from __future__ import annotations

import json

from pulse import io
from pulse.config import StrictModel
from pulse.summary import StageSummary


class ProbeConfig(StrictModel):
    output: str
    items: int = 2


CONFIG_CLASS = ProbeConfig


def run(cfg: ProbeConfig) -> StageSummary:
    import ray

    @ray.remote(num_cpus=0.1)
    def square(x: int) -> int:
        return x * x

    values = ray.get([square.remote(i) for i in range(cfg.items)])
    io.write_text(cfg.output, json.dumps(values))
    return StageSummary("probe", rows_ok=len(values), outputs={"output": cfg.output}, exit_code=3)
