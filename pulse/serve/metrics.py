"""Request metrics of one ingress replica: exported to Ray's metrics agent and served at ``/metrics``.

``RequestMetrics.record`` counts every chat-completion answer (by model and HTTP status, rejections
included), its latency and its tokens. The same numbers go two ways: Ray's ``ray.serve.metrics``
(scraped with Serve's own from each node's metrics port, as ``ray_pulse_*``) and ``/metrics`` on the
endpoint itself, in the Prometheus text format (``pulse_*``), counted since this replica started.
With several ingress replicas each ``/metrics`` answer is one replica's (its ``replica`` label);
the node metrics port has them all.
"""

from __future__ import annotations

import os
from collections import defaultdict

LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


class RequestMetrics:
    """Counters and a latency histogram per model, plus the same as Ray Serve custom metrics."""

    def __init__(self) -> None:
        from ray.serve import metrics

        self.replica = f"pid-{os.getpid()}"
        self.requests: dict[tuple[str, str], int] = defaultdict(int)
        self.tokens: dict[tuple[str, str], int] = defaultdict(int)  # (model, prompt|completion)
        self.latency: dict[str, list[float]] = {}  # model -> per-bucket counts, then sum, then count
        self._ray_requests = metrics.Counter(
            "pulse_requests", "Chat completion requests by model and status", tag_keys=("model", "status")
        )
        self._ray_tokens = metrics.Counter("pulse_completion_tokens", "Generated tokens", tag_keys=("model",))
        self._ray_latency = metrics.Histogram(
            "pulse_request_latency_ms",
            "End-to-end request latency",
            boundaries=[10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000],
            tag_keys=("model",),
        )

    def record(
        self, model: str, status: int, seconds: float, prompt_tokens: int, completion_tokens: int
    ) -> None:
        self.requests[(model, str(status))] += 1
        self.tokens[(model, "prompt")] += prompt_tokens
        self.tokens[(model, "completion")] += completion_tokens
        hist = self.latency.setdefault(model, [0.0] * (len(LATENCY_BUCKETS_S) + 2))
        for i, bound in enumerate(LATENCY_BUCKETS_S):
            if seconds <= bound:
                hist[i] += 1
        hist[-2] += seconds
        hist[-1] += 1
        self._ray_requests.inc(tags={"model": model, "status": str(status)})
        if completion_tokens > 0:  # Ray's Counter.inc refuses 0 (a failed request has no tokens)
            self._ray_tokens.inc(completion_tokens, tags={"model": model})
        self._ray_latency.observe(seconds * 1000, tags={"model": model})

    def render(self, inflight: int) -> str:
        """The Prometheus text exposition of this replica's counts."""
        r = self.replica
        lines = [
            "# HELP pulse_requests_total Chat completion answers by model and HTTP status.",
            "# TYPE pulse_requests_total counter",
            *(
                f"pulse_requests_total{_labels(model=m, status=s, replica=r)} {n}"
                for (m, s), n in sorted(self.requests.items())
            ),
            "# HELP pulse_tokens_total Prompt and completion tokens by model.",
            "# TYPE pulse_tokens_total counter",
            *(
                f"pulse_tokens_total{_labels(model=m, kind=k, replica=r)} {n}"
                for (m, k), n in sorted(self.tokens.items())
            ),
            "# HELP pulse_request_latency_seconds End-to-end chat completion latency.",
            "# TYPE pulse_request_latency_seconds histogram",
        ]
        for model, hist in sorted(self.latency.items()):
            for bound, count in zip(LATENCY_BUCKETS_S, hist, strict=False):
                lines.append(
                    f"pulse_request_latency_seconds_bucket{_labels(model=model, le=f'{bound:g}', replica=r)} "
                    f"{count:g}"
                )
            lines.append(
                f"pulse_request_latency_seconds_bucket{_labels(model=model, le='+Inf', replica=r)} {hist[-1]:g}"
            )
            lines.append(f"pulse_request_latency_seconds_sum{_labels(model=model, replica=r)} {hist[-2]:.6f}")
            lines.append(f"pulse_request_latency_seconds_count{_labels(model=model, replica=r)} {hist[-1]:g}")
        lines += [
            "# HELP pulse_inflight_requests Chat completions admitted and not yet answered.",
            "# TYPE pulse_inflight_requests gauge",
            f"pulse_inflight_requests{_labels(replica=r)} {inflight}",
        ]
        return "\n".join(lines) + "\n"
