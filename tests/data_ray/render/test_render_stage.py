import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pulse.data_ray.render.stage import RenderStage, record_seed
from pulse.schema import IMAGE_SCHEMA, MissingColumnsError


def test_stage_turns_records_into_image_rows_and_error_rows(render_data, tmp_path):
    good = [render_data.synthetic_record(f"synthetic/{i}", fs=fs) for i, fs in enumerate((100.0, 500.0))]
    ragged = render_data.synthetic_record("synthetic/ragged", fs=250.0)
    ragged["signal"] = [
        lead[: 2000 + 10 * k] for k, lead in enumerate(ragged["signal"])
    ]  # unequal lead lengths
    batch = render_data.record_table([*good, ragged, *render_data.bad_records()])
    stage = RenderStage({"dpi": 40, "clean_fraction": 0.5, "seed": 11})
    out = stage(batch)
    assert out.schema.equals(IMAGE_SCHEMA)
    errors = dict(zip(out.column("record_id").to_pylist(), out.column("error").to_pylist(), strict=True))
    assert [errors[f"synthetic/{i}"] for i in range(2)] == [None, None]
    assert errors["synthetic/ragged"] is None
    assert errors["synthetic/nan"].startswith("nan_signal: ")
    assert errors["synthetic/huge"].startswith("absurd_amplitude: ")
    assert errors["synthetic/empty"].startswith("empty_signal: ")
    assert errors["synthetic/ingest-failed"] == "upstream_error: unreadable_header: bad record line"

    # Coordinates survive a Parquet round trip as float arrays, and the per-record seed is recorded.
    pq.write_table(out, tmp_path / "images.parquet")
    row = pq.read_table(tmp_path / "images.parquet").slice(1, 1).to_pylist()[0]
    assert json.loads(row["distortions"])["seed"] == record_seed(11, "synthetic/1")
    lead = row["leads"][0]
    assert (
        lead["name"] == "I" and len(lead["x"]) == len(lead["y"]) == lead["end_sample"] - lead["start_sample"]
    )
    assert np.isfinite(lead["bbox"]).all() and len(lead["bbox"]) == 4


def test_stage_output_does_not_depend_on_batching(render_data):
    records = [render_data.synthetic_record(f"synthetic/{i}") for i in range(3)]
    stage = RenderStage({"dpi": 40, "clean_fraction": 0.0})
    whole = stage(render_data.record_table(records))
    parts = pa.concat_tables(stage(render_data.record_table([r])) for r in records)
    assert whole.column("image").to_pylist() == parts.column("image").to_pylist()


def test_missing_column_fails_fast(render_data):
    batch = render_data.record_table([render_data.synthetic_record()]).drop_columns(["fs"])
    with pytest.raises(MissingColumnsError, match=r"render: required input columns \['fs'\]"):
        RenderStage({"dpi": 40})(batch)
