"""The job registry's one result contract: every config job's run(cfg) returns a StageSummary, and
pulse.jobs.finish prints it and gives the exit code (for the CLI and jobs/*.py alike)."""

from __future__ import annotations

import importlib
import typing

import pytest

from pulse.jobs import JOBS, finish
from pulse.summary import StageSummary


def test_finish_prints_the_summary_and_returns_its_exit_code(capsys):
    summary = StageSummary("render", rows_ok=3, rows_error=1, errors_by_reason={"nan_signal": 1})
    assert finish(summary) == 0  # error rows do not fail a job
    assert capsys.readouterr().out == "[render] ok=3 errors=1 (0.0s)\n    error nan_signal: 1\n"
    assert finish(StageSummary("render")) == 0
    assert capsys.readouterr().out == "[render] ok=0 errors=0 (0.0s)\n"  # a row job with no rows says so
    assert finish(StageSummary("demo", exit_code=1, counts_rows=False, seconds=2)) == 1
    assert capsys.readouterr().out == "[demo] done (2.0s)\n"  # serve and demo handle no rows


def test_finish_refuses_anything_but_a_summary():
    with pytest.raises(TypeError, match="StageSummary"):
        finish(1)


@pytest.mark.parametrize("name", sorted(n for n, job in JOBS.items() if job.kind == "config"))
def test_every_config_job_returns_a_stage_summary(name):
    module = importlib.import_module(JOBS[name].module_name)
    returns = typing.get_type_hints(module.run)["return"]
    assert isinstance(returns, type) and issubclass(returns, StageSummary), (name, returns)
