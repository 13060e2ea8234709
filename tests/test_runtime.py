"""pulse speaks, Ray whispers: a job's terminal shows no Ray notices unless --verbose (PULSE_VERBOSE=1)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from pulse.runtime import RayOptions, init_ray

    ray = init_ray(RayOptions(num_cpus=2))

    @ray.remote
    def chatty():
        print("worker says hello")
        return 1

    assert ray.get(chatty.remote()) == 1
    print("rows", ray.data.range(20).map_batches(lambda b: b).count())
    ray.shutdown()
    """
)


def run_script(verbose: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_DATA_DISABLE_PROGRESS_BARS")}
    env["PULSE_VERBOSE"] = "1" if verbose else "0"
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300, check=True
    )


def test_ray_is_quiet_by_default_and_verbose_brings_it_back():
    quiet = run_script(verbose=False)
    assert quiet.stdout == "rows 20\n"
    assert quiet.stderr == ""  # no token-auth notice, no start-up lines, no Ray Data progress blocks
    loud = run_script(verbose=True)
    assert "worker says hello" in loud.stdout
    assert "Started a local Ray instance" in loud.stderr and "Dataset" in loud.stderr


def test_raylet_worker_pool_notices_are_dropped_and_other_raylet_messages_kept(monkeypatch, capsys):
    """The raylet's error channel, fed the way Ray's listener thread feeds it (no Ray needed)."""
    from ray._private import worker

    from pulse.runtime import quiet_raylet_notices

    monkeypatch.delenv("PULSE_VERBOSE", raising=False)
    monkeypatch.setattr(worker, "print_to_stdstream", worker.print_to_stdstream)  # restored afterwards
    quiet_raylet_notices()
    quiet_raylet_notices()  # idempotent: one filter, not two
    notice = (
        "WARNING: 12 PYTHON worker processes have been started on node: abc with address: 10.0.0.1, "
        "which is 3x the maximum expected startup concurrency (4)."
    )
    oom = "Task was killed due to the node running low on memory."
    worker.print_to_stdstream({"lines": [notice], "pid": "raylet", "is_err": False}, ignore_prefix=False)
    assert capsys.readouterr().out == ""
    worker.print_to_stdstream({"lines": [notice, oom], "pid": "raylet", "is_err": False}, ignore_prefix=False)
    shown = capsys.readouterr().out
    assert oom in shown and "worker processes" not in shown


def test_parquet_is_read_through_the_v1_datasource_unless_the_user_asks_for_v2(
    ray_session, tmp_path, monkeypatch
):
    """V2 starts FooterReader actors for every read (10-15 s each on 2 cores); pulse takes V1."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ray.data import DataContext

    from pulse.runtime import use_parquet_reader_v1

    pq.write_table(pa.table({"x": [1, 2, 3]}), tmp_path / "a.parquet")
    monkeypatch.delenv("RAY_DATA_USE_DATASOURCE_V2", raising=False)
    context = DataContext.get_current()
    monkeypatch.setattr(context, "use_datasource_v2", True)
    use_parquet_reader_v1()
    assert context.use_datasource_v2 is False
    ds = ray_session.data.read_parquet(str(tmp_path))
    assert sorted(r["x"] for r in ds.take_all()) == [1, 2, 3]
    assert "ListFiles" not in ds.stats() and "ReadParquet" in ds.stats()
    monkeypatch.setattr(context, "use_datasource_v2", True)
    monkeypatch.setenv("RAY_DATA_USE_DATASOURCE_V2", "1")
    use_parquet_reader_v1()
    assert context.use_datasource_v2 is True


def test_ray_serve_info_lines_stay_off_the_console_unless_verbose(monkeypatch):
    import logging

    from pulse.runtime import VERBOSE_ENV, quiet_ray_serve

    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    logger = logging.getLogger("ray.serve")
    monkeypatch.setattr(logger, "level", logger.level)  # restored after the test
    quiet_ray_serve()
    assert not logger.isEnabledFor(logging.INFO) and logger.isEnabledFor(logging.WARNING)
    monkeypatch.setenv(VERBOSE_ENV, "1")
    quiet_ray_serve()
    assert logger.isEnabledFor(logging.INFO)
