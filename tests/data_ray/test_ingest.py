"""The Ray Data ingest job end to end on a real local Ray: real bundled records, synthetic
CODE-15%/MIMIC-IV-ECG files (see conftest), corrupt inputs, and S3 in and out (moto server)."""

from __future__ import annotations

import json
import re
import shutil

import pyarrow.parquet as pq
import pytest

from pulse import io
from pulse.config import ConfigError
from pulse.data_ray.ingest import IngestConfig, run
from pulse.data_ray.readers.config import BUNDLED_ROOT, SourceConfig
from pulse.data_ray.readers.ecgqa import ECGQA_SCHEMA
from pulse.data_ray.readers.synthetic import write_code15, write_mimic
from pulse.schema import RECORD_SCHEMA

RECORDS = BUNDLED_ROOT / "cinc2021" / "records"


@pytest.fixture
def mimic_root(tmp_path):
    """SYNTHETIC MIMIC-IV-ECG files (no public sample exists)."""
    return write_mimic(tmp_path / "mimic")


@pytest.fixture
def code15_root(tmp_path):
    """SYNTHETIC CODE-15% files (no public sample exists)."""
    return write_code15(tmp_path / "code15")


@pytest.fixture
def corrupt_cinc(tmp_path):
    """Real CinC records: two good, one repaired Georgia header, one truncated, one missing .mat."""
    root = tmp_path / "cinc"
    root.mkdir()
    for name in ("JS01048", "A1041", "E00271", "A0689", "JS01560"):
        for ext in ("hea", "mat"):
            shutil.copy(RECORDS / f"{name}.{ext}", root / f"{name}.{ext}")
    (root / "A0689.mat").write_bytes((root / "A0689.mat").read_bytes()[:2048])
    (root / "JS01560.mat").unlink()
    return root


def test_ingest_all_kinds_with_bad_inputs(ray_session, tmp_path, corrupt_cinc, mimic_root, code15_root):
    out = tmp_path / "out"
    cfg = IngestConfig(
        output_dir=str(out),
        target_fs=250,
        batch_size=8,
        concurrency=2,
        sources=[
            SourceConfig(
                kind="ptbxl",
                root="bundled:ptbxl",
                database_csv="ptbxl_database_subset.csv",
                rate_fallback=True,
                limit=3,
            ),
            SourceConfig(kind="cinc2021", root=str(corrupt_cinc)),
            SourceConfig(kind="mimic", root=str(mimic_root)),
            SourceConfig(kind="code15", root=str(code15_root), chunk_size=2),
            SourceConfig(kind="ecgqa", root="bundled:ecgqa", files=["qa_on_realdata_ptbxl_ids.json"]),
        ],
    )
    summary = run(cfg)

    records = pq.read_table(out / "records")
    assert records.schema.equals(RECORD_SCHEMA, check_metadata=False)
    assert sorted(records.column("record_id").to_pylist()) == sorted(
        [
            *("ptbxl/1", "ptbxl/3961", "ptbxl/6000", "chapman/JS01048", "cpsc2018/A1041", "g12ec/E00271"),
            *("mimic/40000001", "mimic/40000002", "code15/101", "code15/102", "code15/103"),
        ]
    )
    assert (
        set(records.column("fs").to_pylist()) == {250.0}
        and records.column("error").null_count == records.num_rows
    )
    errors = pq.read_table(out / "errors").to_pylist()
    by_id = {r["record_id"]: r["error"].split(":")[0] for r in errors}
    assert by_id == {
        "cpsc2018/A0689": "truncated_signal",
        "chapman/JS01560": "missing_file",
        "mimic/40000003": "nan_signal",
        "mimic/40000004": "missing_file",
        "code15/105": "constant_signal",
        "code15/999": "bad_metadata",
    }
    assert all(r["signal"] == [] for r in errors)

    qa = pq.read_table(out / "ecgqa")
    assert qa.schema.equals(ECGQA_SCHEMA, check_metadata=False) and qa.num_rows == 48
    ok_qa = [r for r in qa.to_pylist() if r["error"] is None]
    assert ok_qa and all(set(r["record_ids"]) <= {"ptbxl/1", "ptbxl/3961", "ptbxl/6000"} for r in ok_qa)

    n_missing_qa = qa.num_rows - len(ok_qa)
    assert summary.errors_by_reason == {
        "bad_metadata": 1,
        "constant_signal": 1,
        "missing_file": 2,
        "missing_record": n_missing_qa,
        "nan_signal": 1,
        "truncated_signal": 1,
    }
    assert summary.rows_ok == records.num_rows + len(ok_qa)
    printed = "\n".join(summary.lines())  # what `pulse ingest` prints (pulse.jobs.finish)
    assert "error missing_file: 2" in printed and "code15=3(+2 err)" in printed
    info = json.loads((out / "run_info.json").read_text())
    assert info["job"] == "ingest" and info["config"]["target_fs"] == 250


def test_ingest_from_and_to_s3(ray_session, s3_bucket):
    for name in ("JS01048", "E00271", "A0689"):
        for ext in ("hea", "mat"):
            io.write_bytes(f"{s3_bucket}/raw/cinc/{name}.{ext}", (RECORDS / f"{name}.{ext}").read_bytes())
    io.write_bytes(f"{s3_bucket}/raw/cinc/A5215.hea", (RECORDS / "A5215.hea").read_bytes())  # .mat missing
    cfg = IngestConfig(
        output_dir=f"{s3_bucket}/ingested",
        sources=[SourceConfig(kind="cinc2021", root=f"{s3_bucket}/raw/cinc")],
    )
    summary = run(cfg)
    records = io.read_parquet(f"{s3_bucket}/ingested/records")
    assert sorted(records.column("record_id").to_pylist()) == [
        "chapman/JS01048",
        "cpsc2018/A0689",
        "g12ec/E00271",
    ]
    assert records.column("source_path").to_pylist()[0].startswith(s3_bucket)
    errors = io.read_parquet(f"{s3_bucket}/ingested/errors")
    assert errors.column("error").to_pylist()[0].startswith("missing_file: s3://")
    assert summary.errors_by_reason == {"missing_file": 1}
    assert io.exists(f"{s3_bucket}/ingested/run_info.json")


def test_rerun_has_nothing_to_do_refuses_a_changed_config_and_overwrites(
    ray_session, tmp_path, corrupt_cinc, capsys
):
    out = tmp_path / "out"

    def ingest(**changes) -> IngestConfig:
        fields = {"output_dir": str(out), "sources": [SourceConfig(kind="cinc2021", root=str(corrupt_cinc))]}
        return IngestConfig(**{**fields, **changes})

    first = run(ingest())
    assert first.rows_ok > 0 and re.search(r"\[ingest\] (\d+)/\1 read units \(", capsys.readouterr().out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = run(ingest(batch_size=1, concurrency=1))  # worker settings do not change the records
    assert capsys.readouterr().out.startswith(f"[ingest] nothing to do: {out}")
    assert (
        again.rows_ok == first.rows_ok
        and {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps
    )
    with pytest.raises(
        ConfigError, match=r"\(target_fs null -> 250\.0\); use a new output_dir, or overwrite=true"
    ):
        run(ingest(target_fs=250))
    assert json.loads((out / "run_info.json").read_text())["config"]["target_fs"] is None
    (out / "_progress" / "done.json").unlink()  # an interrupted run starts over with the same config
    assert run(ingest()).rows_ok == first.rows_ok
    rebuilt = run(ingest(target_fs=250, overwrite=True))
    assert rebuilt.rows_ok == first.rows_ok
    assert set(pq.read_table(out / "records", columns=["fs"]).column("fs").to_pylist()) == {250.0}
    assert json.loads((out / "run_info.json").read_text())["config"]["target_fs"] == 250


def test_ingest_stages_follow_the_stage_contract_and_a_reader_crash_costs_one_row(tmp_path):
    """ReadRecords/ReadQA are pulse Stages: declared columns, and a unit whose reader raises
    (here a PTB-XL unit without ecg_id) is one `internal` error row in the one ErrorSink."""
    import pyarrow as pa

    from pulse.data_ray.ingest import ReadQA, ReadRecords
    from pulse.data_ray.stage import Stage
    from pulse.error_sink import ErrorSink

    assert issubclass(ReadRecords, Stage) and issubclass(ReadQA, Stage)
    assert ReadRecords.output_columns == tuple(RECORD_SCHEMA.names)
    source = SourceConfig(kind="ptbxl", root="bundled:ptbxl", database_csv="ptbxl_database_subset.csv")
    sink = ErrorSink(io.Folder(tmp_path))
    stage = ReadRecords([source], [io.Folder(source.resolved_root())], None, sink)
    batch = pa.table({"source": [0], "unit": [json.dumps({"filename_lr": "x"})]})
    assert stage(batch).num_rows == 0
    assert sink.counts() == {"internal": 1}
    error = io.read_parquet(sink.uri).column("error")[0].as_py()
    assert error.startswith("internal: KeyError") and "ecg_id" in error
    with pytest.raises(KeyError, match="unit"):
        stage(pa.table({"source": [0]}))
