"""The stage contract (pulse.data_ray.stage) on a real local Ray: one bad row never costs its neighbours."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pulse.data_ray.stage import Stage, StageError, map_stage
from pulse.errors import error_reason
from pulse.schema import MissingColumnsError


class Square(Stage):
    name = "square"
    input_columns = ("x",)
    optional_columns = ("error",)
    output_columns = ("x", "y", "error")
    crash_reason = "internal"

    def __init__(self, offset: int = 0):
        self.offset = offset  # the "heavy" setup: once per actor

    def _square(self, row):
        if row["x"] < 0:
            raise StageError("malformed_row", f"x={row['x']} is negative")
        if row["x"] == 13:
            raise RuntimeError("unlucky")
        return row["x"] ** 2 + self.offset

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.select(self.read_columns(batch.column_names)).to_pylist()
        results = [self.guarded(self._square, row) for row in rows]
        return pa.table(
            {
                "x": [r["x"] for r in rows],
                "y": [v if isinstance(v, int) else None for v in results],
                "error": [v if isinstance(v, str) else None for v in results],
            }
        )


def test_guarded_sets_one_error_per_row_and_keeps_the_rest():
    batch = pa.table({"x": [2, -1, 13, 3], "error": [None, None, None, "unreadable_header: bad"]})
    out = Square(offset=1)(batch).to_pylist()
    assert [r["y"] for r in out] == [5, None, None, None]
    assert [error_reason(r["error"]) for r in out] == [None, "malformed_row", "internal", "upstream_error"]
    assert out[2]["error"] == "internal: RuntimeError: unlucky"
    assert out[3]["error"] == "upstream_error: unreadable_header: bad"


def test_missing_input_column_is_a_clear_error():
    with pytest.raises(MissingColumnsError, match="square: required input columns"):
        Square.read_columns(["y"])


@pytest.mark.parametrize("tasks", [False, True], ids=["actor-pool", "tasks"])
def test_map_stage_runs_as_actors_or_tasks(ray_session, tasks):
    ds = ray_session.data.from_items([{"x": x, "error": None} for x in (-2, 0, 1, 13, 4)])
    out = map_stage(ds, Square, kwargs={"offset": 10}, workers=2, tasks=tasks, batch_size=2, num_cpus=0.25)
    rows = sorted(out.take_all(), key=lambda r: r["x"])
    assert [r["y"] for r in rows] == [None, 10, 11, 26, None]
    assert sum(r["error"] is not None for r in rows) == 2
