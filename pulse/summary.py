"""Job summaries: row counts, error rows counted by reason, the errors/ sink.

Every job's ``run(cfg)`` returns a :class:`StageSummary` (or a subclass: train's ``TrainResult``,
the ECGBench sweep's ``SweepResult``); the CLI and ``jobs/*.py`` print it and exit with its
``exit_code`` in one place, ``pulse.jobs.finish``. A job prints its progress, not its summary.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pulse.errors import error_reason


@dataclass
class StageSummary:
    """What one job did: rows ok, error rows by reason, where it wrote, its exit code."""

    stage: str
    rows_ok: int = 0
    rows_error: int = 0
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    exit_code: int = 0
    """0 when the job did its work, error rows included (bad input never fails a job); non-zero
    when a job fails as a whole without raising (the demo's endpoint check)."""
    counts_rows: bool = True
    """False for jobs that handle no rows (serve, demo): their line shows no ``ok=0 errors=0``."""

    @classmethod
    def from_errors(cls, stage: str, errors: Iterable[str | None], **kwargs: Any) -> StageSummary:
        counts: Counter[str] = Counter()
        ok = 0
        for err in errors:
            reason = error_reason(err)
            if reason is None:
                ok += 1
            else:
                counts[reason] += 1
        return cls(stage, ok, sum(counts.values()), dict(sorted(counts.items())), **kwargs)

    def lines(self) -> list[str]:
        counts = f"ok={self.rows_ok} errors={self.rows_error}" if self.counts_rows else "done"
        out = [f"[{self.stage}] {counts} ({self.seconds:.1f}s)"]
        for reason, n in self.errors_by_reason.items():
            out.append(f"    error {reason}: {n}")
        for name, path in self.outputs.items():
            out.append(f"    {name}: {path}")
        for key, value in self.extra.items():
            out.append(f"    {key}: {value}")
        return out

    def print(self) -> None:
        print("\n".join(self.lines()), flush=True)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, default=str)
