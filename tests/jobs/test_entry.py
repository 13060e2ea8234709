"""jobs/*.py: thin entry points that load the typed config, join Ray and call run(cfg)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
JOBS_DIR = REPO / "jobs"


@pytest.fixture
def entry(monkeypatch):
    monkeypatch.syspath_prepend(str(JOBS_DIR))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import _entry

    from pulse.jobs import JOBS, Job

    monkeypatch.setitem(JOBS, "probe", Job("probe", "probe_job", "test probe", cli=False))
    return _entry


def test_every_submittable_job_has_a_short_entry_point_calling_its_own_name():
    from pulse.jobs import SUBMITTABLE

    for job in SUBMITTABLE:
        text = (JOBS_DIR / f"{job}.py").read_text()
        assert len(text.splitlines()) <= 30
        assert f'run_job("{job}")' in text
    scripts = {p.stem for p in JOBS_DIR.glob("*.py") if not p.stem.startswith("_")}
    assert scripts == set(SUBMITTABLE), "jobs/ and the registry's submittable jobs differ"


def test_cli_lists_every_registered_cli_job():
    from pulse.cli import build_parser
    from pulse.jobs import JOBS

    help_text = build_parser().format_help()
    for name, job in JOBS.items():
        if job.cli:
            assert f"    {name}" in help_text, name


def test_run_job_loads_config_with_overrides_and_runs_on_ray(entry, ray_session, tmp_path, capsys):
    config = tmp_path / "probe.yaml"
    config.write_text(f"output: {tmp_path / 'out.json'}\nitems: 2\n")
    code = entry.run_job("probe", ["--config", str(config), "items=4"])
    assert code == 3  # the summary's exit_code
    assert capsys.readouterr().out.startswith("[probe] ok=4 errors=0 (")  # and its summary, printed
    assert json.loads((tmp_path / "out.json").read_text()) == [0, 1, 4, 9]


def test_run_job_writes_to_s3(entry, ray_session, s3_bucket):
    from pulse import io

    target = f"{s3_bucket}/probe/out.json"
    assert entry.run_job("probe", [f"output={target}", "items=3"]) == 3
    assert json.loads(io.read_text(target)) == [0, 1, 4]


def test_unknown_key_is_a_clear_error(entry, capsys):
    assert entry.run_job("probe", ["output=x", "itemz=3"]) == 2
    assert "Unknown config key: itemz" in capsys.readouterr().err


def test_missing_stage_module_fails_with_a_message(entry, monkeypatch):
    from pulse.jobs import JOBS, Job

    monkeypatch.setitem(JOBS, "later", Job("later", "pulse.not_written_yet.job", "later"))
    with pytest.raises(SystemExit, match=r"not available: module pulse\.not_written_yet\.job not found"):
        entry.load_job("later")


def test_entry_point_runs_as_a_script_without_ray(tmp_path):
    """`python jobs/<job>.py` as ray job submit runs it: a missing config file stops before Ray starts."""
    result = subprocess.run(
        [sys.executable, str(JOBS_DIR / "serve.py"), "--config", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert "Config file not found" in result.stderr
