"""One run folder: ``run_dir=R`` chains ingest -> render -> build -> train with no other path."""

from __future__ import annotations

import re

import pytest

from pulse import io
from pulse.config import ConfigError, load_config
from pulse.jobs import load_job

SHIPPED = {
    "ingest": "configs/ingest/bundled.yaml",
    "render": "configs/render/demo.yaml",
    "build": "configs/build/templates.yaml",
    "train": "configs/train/tiny-cpu.yaml",
}


def resolved(job: str, *overrides: str):
    return load_config(load_job(job)[1], SHIPPED[job], list(overrides))


def test_each_stage_reads_the_previous_stage_output_inside_the_run_folder():
    run = "/runs/r1"
    assert resolved("ingest", f"run_dir={run}").output_dir == f"{run}/ingest"
    render = resolved("render", f"run_dir={run}")
    assert (render.input_dir, render.output_dir) == (f"{run}/ingest", f"{run}/render")
    build = resolved("build", f"run_dir={run}")
    assert (build.records_dir, build.images_dir, build.output_dir) == (
        f"{run}/ingest",
        f"{run}/render",
        f"{run}/instruct",
    )
    train = resolved("train", f"run_dir={run}")
    assert train.storage_path == f"{run}/train"
    assert train.data.train_path == f"{run}/instruct/parquet/split=train"


def test_explicit_paths_win_and_s3_run_folders_work():
    render = resolved("render", "run_dir=s3://bucket/r2", "output_dir=s3://bucket/other")
    assert (render.input_dir, render.output_dir) == ("s3://bucket/r2/ingest", "s3://bucket/other")


def test_shipped_defaults_share_one_layout():
    """Without run_dir the shipped configs already chain (run folder = outputs/)."""
    ingest, render, build, train = (resolved(job) for job in SHIPPED)
    assert render.input_dir == ingest.output_dir
    assert (build.records_dir, build.images_dir) == (ingest.output_dir, render.output_dir)
    assert train.data.train_path == io.join(build.output_dir, "parquet", "split=train")


def test_run_dir_on_a_job_without_a_layout_is_refused():
    from pulse.ecgbench.sweep import SweepConfig

    with pytest.raises(ConfigError, match="no run folder layout"):
        load_config(SweepConfig, "configs/ecgbench/sweep_local.yaml", ["run_dir=/x"])


@pytest.mark.slow
def test_the_readme_chain_runs_on_the_bundled_records(tmp_path, ray_session, capsys):
    """The README's chain, exactly as typed there (plus small limits), through the real CLI."""
    from pulse.cli import main

    run = tmp_path / "run"
    assert main(["ingest", "--config", SHIPPED["ingest"], f"run_dir={run}", "limit_per_source=3"]) == 0
    assert main(["render", "--config", SHIPPED["render"], f"run_dir={run}"]) == 0
    assert main(["build", "--config", SHIPPED["build"], f"run_dir={run}"]) == 0
    assert (
        main(["train", "--config", SHIPPED["train"], f"run_dir={run}", "max_steps=2", "checkpoint_every=2"])
        == 0
    )
    out = capsys.readouterr().out
    for stage in ("[ingest] ok=", "[render] ok=", "[build] ok=", "[train] ok="):
        assert stage in out, out[-3000:]
    assert re.search(r"^\[train\] 2/2 steps \(.*elapsed\) loss \d+\.\d{4}$", out, re.M), out[-3000:]
    assert io.list_files(run / "instruct" / "parquet" / "split=train", "*.parquet")
    assert io.list_files(run / "train" / "tiny-cpu" / "export", "*.safetensors")
