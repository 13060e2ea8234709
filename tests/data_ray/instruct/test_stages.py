"""The instruction builder's stages follow the one stage contract (pulse.data_ray.stage)."""

from __future__ import annotations

import pyarrow as pa

from pulse.data_ray.instruct.config import BuildConfig
from pulse.data_ray.instruct.ecgqa import EcgqaStage
from pulse.data_ray.instruct.plan import PlanStage
from pulse.data_ray.instruct.rows import ROW_COLUMNS, ROW_SCHEMA, RowStage, instruction_row
from pulse.data_ray.stage import Stage


def _cfg() -> BuildConfig:
    return BuildConfig(records_dir="/nowhere", images_dir="/nowhere", output_dir="/nowhere")


def test_plan_stage_turns_an_upstream_error_into_one_upstream_error_row():
    stage = PlanStage(_cfg().model_dump(mode="json"))
    assert isinstance(stage, Stage) and stage.output_columns == ROW_COLUMNS
    batch = pa.table({"record_id": ["ptbxl/1"], "dataset": ["ptbxl"], "error": ["missing_file: x.hea"]})
    (row,) = stage(batch).to_pylist()
    assert row["error"] == "upstream_error: missing_file: x.hea" and row["generator"] == "ingest"


def test_row_stage_marks_only_the_row_whose_function_raised():
    def explode(row):
        if row["id"].endswith("#bad"):
            raise RuntimeError("boom")
        return {**row, "task": "seen"}

    rows = [
        instruction_row({"record_id": "r"}, k, task="t", qtype="open", generator="g") for k in ("ok", "bad")
    ]
    out = RowStage(explode)(pa.Table.from_pylist(rows, schema=ROW_SCHEMA)).to_pylist()
    assert [r["task"] for r in out] == ["seen", "t"]
    assert out[0]["error"] is None and out[1]["error"] == "internal: RuntimeError: boom"


def test_ecgqa_stage_declares_its_columns():
    assert issubclass(EcgqaStage, Stage) and EcgqaStage.output_columns == ROW_COLUMNS
    assert {"question", "answer", "record_ids"} <= set(EcgqaStage.input_columns)
