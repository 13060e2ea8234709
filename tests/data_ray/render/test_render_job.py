"""`pulse render` end to end on a real local Ray: bundled real records plus bad ones, local and S3."""

import json

import pyarrow.compute as pc
import pytest

from pulse import io
from pulse.cli import main
from pulse.config import ConfigError, load_config
from pulse.data_ray.render.job import RenderConfig, run
from pulse.data_ray.render.renderer import decode_image


def test_cli_renders_real_records_and_routes_errors(ray_session, render_data, cinc_records, tmp_path, capsys):
    input_dir = render_data.write_records(
        str(tmp_path / "ingest"), [*cinc_records, *render_data.bad_records()]
    )
    output_dir = tmp_path / "render"
    code = main(
        [
            "render",
            "--config",
            "configs/render/demo.yaml",
            f"input_dir={input_dir}",
            f"output_dir={output_dir}",
            "params.dpi=50",
            "concurrency=1",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "[render] ok=3 errors=4" in printed
    for reason in ("absurd_amplitude: 1", "empty_signal: 1", "upstream_error: 1", "nan_signal: 1"):
        assert f"error {reason}" in printed

    images = io.read_parquet(str(output_dir / "images"))
    errors = io.read_parquet(str(output_dir / "errors"))
    assert sorted(images.column("record_id").to_pylist()) == sorted(r["record_id"] for r in cinc_records)
    assert pc.all(pc.is_null(images.column("error"))).as_py()
    assert errors.num_rows == 4 and pc.all(pc.is_valid(errors.column("error"))).as_py()
    row = images.slice(0, 1).to_pylist()[0]
    pixels = decode_image(row["image"])
    assert pixels.shape == (row["height"], row["width"], 3)
    assert len(row["leads"]) == 13 and json.loads(row["distortions"])["dpi"] == 50
    files = io.list_files(str(output_dir / "files"), "*.jpg")
    assert sorted(f.split("/files/")[1] for f in files) == sorted(
        f"{r['record_id']}.jpg" for r in cinc_records
    )
    info = json.loads(io.read_text(str(output_dir / "run_info.json")))
    assert info["job"] == "render" and info["config"]["params"]["dpi"] == 50


def test_render_reads_and_writes_s3(ray_session, render_data, s3_bucket):
    records = [render_data.synthetic_record(f"synthetic/{i}", fs=400.0) for i in range(3)]
    render_data.write_records(f"{s3_bucket}/ingest", records)
    cfg = load_config(
        RenderConfig,
        None,
        [f"input_dir={s3_bucket}/ingest", f"output_dir={s3_bucket}/render", "params.dpi=40", "concurrency=1"],
    )
    summary = run(cfg)
    assert (summary.rows_ok, summary.rows_error) == (3, 0)
    table = io.read_parquet(f"{s3_bucket}/render/images")
    assert sorted(table.column("record_id").to_pylist()) == [f"synthetic/{i}" for i in range(3)]
    assert io.exists(f"{s3_bucket}/render/run_info.json")
    assert not io.list_files(f"{s3_bucket}/render/errors", "*.parquet")


def test_cli_missing_input_is_a_one_line_error(tmp_path, capsys):
    code = main(["render", "--config", "configs/render/demo.yaml", f"input_dir={tmp_path / 'nope'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("pulse render: render: no record Parquet under") and "Traceback" not in err


def test_worker_count_or_range_becomes_an_actor_pool():
    from pulse.data_ray.render.job import RenderConfig
    from pulse.data_ray.stage import compute_strategy as actor_pool

    fixed = actor_pool(RenderConfig(input_dir="i", output_dir="o", concurrency=3).concurrency)
    assert (fixed.min_size, fixed.max_size) == (3, 3)
    scaling = actor_pool(RenderConfig(input_dir="i", output_dir="o", concurrency=[1, 4]).concurrency)
    assert (scaling.min_size, scaling.max_size) == (1, 4)


def test_rerun_resumes_refuses_a_changed_config_and_overwrites(ray_session, render_data, tmp_path, capsys):
    records = [render_data.synthetic_record(f"synthetic/{i}", fs=400.0) for i in range(3)]
    input_dir = render_data.write_records(str(tmp_path / "ingest"), records)
    out = tmp_path / "render"

    def render(*extra: str):
        base = [f"input_dir={input_dir}", f"output_dir={out}", "params.dpi=40", "concurrency=1"]
        return run(load_config(RenderConfig, None, [*base, *extra]))

    assert render().rows_ok == 3
    assert "[render] 3/3 records (" in capsys.readouterr().out  # pulse's own progress line
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    # Same output-affecting config (worker settings do not count): nothing to do, nothing rewritten.
    again = render("concurrency=2", "batch_size=2")
    assert capsys.readouterr().out.startswith(f"[render] nothing to do: {out}")
    assert again.rows_ok == 3 and {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps
    with pytest.raises(
        ConfigError, match=r"holds a render run with a different config \(params\.dpi 40 -> 50\)"
    ):
        render("params.dpi=50")
    # An interrupted run (no done marker, a stray part) is redone without duplicate images.
    (out / "_progress" / "done.json").unlink()
    stray = out / "images" / "part-stray-000000.parquet"
    stray.write_bytes((next((out / "images").glob("*.parquet"))).read_bytes())
    assert render().rows_ok == 3 and io.read_parquet(str(out / "images")).num_rows == 3
    rebuilt = render("params.dpi=50", "overwrite=true")
    assert rebuilt.rows_ok == 3
    images = io.read_parquet(str(out / "images"))
    assert images.num_rows == 3 and {
        json.loads(d)["dpi"] for d in images.column("distortions").to_pylist()
    } == {50}
    assert json.loads((out / "run_info.json").read_text())["config"]["params"]["dpi"] == 50
