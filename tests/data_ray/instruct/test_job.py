"""End-to-end builds on a real local Ray: templates demo via the CLI, resume, S3 output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pulse import io
from pulse.cli import main as pulse_main
from pulse.config import load_config
from pulse.data_ray.instruct.config import BuildConfig
from pulse.data_ray.instruct.job import run
from pulse.schema import INSTRUCTION_SCHEMA

CONFIG = "configs/build/templates.yaml"


def overrides(inputs: dict[str, str], output: str, *extra: str) -> list[str]:
    return [
        f"records_dir={inputs['records_dir']}",
        f"images_dir={inputs['images_dir']}",
        f"output_dir={output}",
        "write.shuffle=sort",
        *extra,
    ]


@pytest.fixture(scope="module")
def demo_build(ray_session, build_inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build") / "out"
    assert pulse_main(["build", "--config", CONFIG, *overrides(build_inputs, str(out))]) == 0
    return out


def test_demo_build_writes_the_contract_layout(demo_build):
    shards = sorted(demo_build.glob("parquet/split=*/shard-*.parquet"))
    assert shards and {p.parent.name for p in shards} == {"split=train", "split=test"}
    table = pq.read_table(shards[0])
    assert table.schema.equals(INSTRUCTION_SCHEMA)
    rows = [r for p in shards for r in pq.read_table(p).to_pylist()]
    assert all(r["image"].startswith(b"\x89PNG") and r["error"] is None for r in rows)
    assert {r["source"] for r in rows} == {"cpsc2018", "g12ec", "chapman", "ningbo", "ptbxl", "ecgqa"}
    cpsc = [r for r in rows if r["id"] == "cpsc2018/A1041#classes:cpsc9"]
    assert cpsc[0]["conversations"][1]["value"] == "AF; LBBB"
    assert len({r["id"] for r in rows}) == len(rows)

    llava = json.loads((demo_build / "llava" / "train.json").read_text())
    assert llava and set(llava[0]) == {"id", "image", "conversations"}
    assert all((demo_build / "llava" / item["image"]).is_file() for item in llava)
    assert all(item["conversations"][0]["value"].startswith("<image>\n") for item in llava)
    n_llava = len(llava) + len(json.loads((demo_build / "llava" / "test.json").read_text()))
    assert n_llava == len(rows)


def test_demo_build_counts_errors_by_reason_and_writes_stats(demo_build):
    summary = json.loads((demo_build / "stats" / "summary.json").read_text())
    errors = summary["errors_by_reason"]
    assert errors["upstream_error"] == 1  # the real Georgia E00271 header case
    assert errors["missing_image"] >= 1  # g12ec/E03823 has no image row
    assert errors["ecgqa_multi_ecg"] >= 1 and errors["no_english_report"] == 2  # German PTB-XL reports
    error_rows = pq.read_table(demo_build / "errors").to_pylist()
    assert len(error_rows) == summary["rows_error"]
    assert {r["error"].split(":")[0] for r in error_rows} == set(errors)
    table = (demo_build / "stats" / "table.md").read_text()
    assert "| cpsc2018 | Morphology and Pathology Identification | Multi-choice QA |" in table
    assert f"| All | Total |  | {summary['rows_ok']:,} |" in table
    assert not (demo_build / "stats" / "judge_hist.png").exists()  # no judge, no empty plot
    info = json.loads((demo_build / "run_info.json").read_text())
    assert info["job"] == "build" and info["config"]["write"]["shuffle"] == "sort"


def test_rerun_resumes_and_rewrites_only_the_unfinished_shard(demo_build, build_inputs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(demo_build, out)
    before = {p: p.stat().st_mtime_ns for p in out.glob("parquet/split=*/*.parquet")}
    # Simulate a build interrupted before shard 2 finished: its marker and outputs are gone, and
    # the build never recorded that it finished.
    victim = "shard-00002"
    for path in [*out.glob(f"**/{victim}.*"), out / "_progress" / "done.json"]:
        path.unlink()
    cfg = load_config(BuildConfig, CONFIG, overrides(build_inputs, str(out)))
    summary = run(cfg)
    assert summary.extra["shards_written"] == [2]
    assert summary.extra["shards_skipped_resume"] == [0, 1, 3]
    original = json.loads((demo_build / "stats" / "summary.json").read_text())
    assert summary.rows_ok == original["rows_ok"] and summary.errors_by_reason == original["errors_by_reason"]
    for path, mtime in before.items():
        if victim not in path.name:
            assert path.stat().st_mtime_ns == mtime, f"{path} was rewritten"
    assert list(out.glob(f"parquet/split=*/{victim}.parquet"))


def test_rerun_with_a_changed_config_is_refused_in_one_line(demo_build, build_inputs, capsys):
    before = (demo_build / "config.yaml").read_text()
    code = pulse_main(
        [
            "build",
            "--config",
            CONFIG,
            *overrides(build_inputs, str(demo_build), "templates.mcq_options=4", "include_ecgqa=false"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"pulse build: {demo_build} holds a build run with a different config (")
    assert "include_ecgqa true -> false" in err and "templates.mcq_options 8 -> 4" in err
    assert err.rstrip().endswith("use a new output_dir, or overwrite=true to rebuild it from scratch")
    assert (demo_build / "config.yaml").read_text() == before


def test_rerun_of_a_finished_build_has_nothing_to_do(demo_build, build_inputs, capsys):
    stamps = {p: p.stat().st_mtime_ns for p in demo_build.rglob("*") if p.is_file()}
    cfg = load_config(BuildConfig, CONFIG, overrides(build_inputs, str(demo_build), "write.shuffle=hash"))
    summary = run(cfg)
    assert capsys.readouterr().out.startswith(f"[build] nothing to do: {demo_build} already holds")
    original = json.loads((demo_build / "stats" / "summary.json").read_text())
    assert summary.rows_ok == original["rows_ok"] and summary.errors_by_reason == original["errors_by_reason"]
    assert {p: p.stat().st_mtime_ns for p in demo_build.rglob("*") if p.is_file()} == stamps


def test_overwrite_rebuilds_from_scratch(demo_build, build_inputs, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(demo_build, out)
    extra = ("templates.mcq_options=4", "include_ecgqa=false", "write.num_shards=2", "overwrite=true")
    summary = run(load_config(BuildConfig, CONFIG, overrides(build_inputs, str(out), *extra)))
    assert summary.extra["shards_skipped_resume"] == [] and summary.rows_ok > 0
    shards = sorted(p.name for p in out.glob("parquet/split=train/*.parquet"))
    assert shards == ["shard-00000.parquet", "shard-00001.parquet"]  # shards 2 and 3 of the old run are gone
    rows = [r for p in out.glob("parquet/split=*/*.parquet") for r in pq.read_table(p).to_pylist()]
    assert "ecgqa" not in {r["source"] for r in rows}
    info = json.loads((out / "run_info.json").read_text())
    assert info["config"]["templates"]["mcq_options"] == 4 and info["config"]["include_ecgqa"] is False
    recorded = json.loads((out / "_progress" / "fingerprint.json").read_text())
    assert recorded["config"]["templates.mcq_options"] == 4


def test_build_writes_to_s3(ray_session, build_inputs, s3_bucket):
    output = f"{s3_bucket}/instruct"
    cfg = load_config(
        BuildConfig,
        CONFIG,
        overrides(build_inputs, output, "write.num_shards=2", "include_ecgqa=false", "limit=6"),
    )
    summary = run(cfg)
    assert summary.rows_ok > 0
    parquet = io.list_files(f"{output}/parquet", "*.parquet")
    assert parquet and all(p.startswith(f"{output}/parquet/split=") for p in parquet)
    assert io.read_parquet(parquet[0]).schema.equals(INSTRUCTION_SCHEMA)
    llava = json.loads(io.read_text(f"{output}/llava/train.json"))
    assert io.read_bytes(f"{output}/llava/{llava[0]['image']}").startswith(b"\x89PNG")
    assert io.exists(f"{output}/stats/table.md") and io.exists(f"{output}/run_info.json")
    assert sorted(
        json.loads(io.read_text(p))["shard"] for p in io.list_files(f"{output}/_progress", "shard-*.json")
    ) == [
        0,
        1,
    ]


def test_cli_missing_records_is_a_one_line_error(ray_session, tmp_path, capsys):
    code = pulse_main(
        [
            "build",
            "--config",
            "configs/build/templates.yaml",
            f"records_dir={tmp_path / 'nope'}",
            f"output_dir={tmp_path / 'out'}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("pulse build: no Parquet files under") and "Traceback" not in err
