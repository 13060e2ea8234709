"""``vllm.v1.metrics.ray_wrappers`` of the test-only stand-in: the stat logger ray passes on (unused)."""


class RayPrometheusStatLogger:
    pass
