"""The one vocabulary of error reasons: every reason a stage writes is listed in pulse.errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pulse.errors import REASONS, UPSTREAM_ERROR, error_reason, error_text

PACKAGE = Path(__file__).resolve().parents[1] / "pulse"
# reason literals as the stages write them: a constructor/helper's first string argument, or "reason: …"
REASON_CALL = re.compile(
    r"\b(?:SampleError|ReadError|with_error|failed|error|error_text)\(\s*(?:\w+,\s*)?\"([a-z]+(?:_[a-z0-9]+)+)\""
)
REASON_PREFIX = re.compile(r"f?\"([a-z]+(?:_[a-z0-9]+)+): ")
REASON_ATTRIBUTE = re.compile(r"\b(?:crash_reason|reason)\s*=\s*\"([a-z]+(?:_[a-z0-9]+)+)\"")


def reasons_written_by_the_package() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in (REASON_CALL, REASON_PREFIX, REASON_ATTRIBUTE):
            for match in pattern.finditer(text):
                found.setdefault(match.group(1), set()).add(path.relative_to(PACKAGE).as_posix())
    return found


def test_every_reason_the_stages_write_is_in_the_vocabulary():
    found = reasons_written_by_the_package()
    assert {"upstream_error", "render_failed", "missing_image", "engine_error"} <= set(found)
    assert "render_failed" in REASONS and "data_ray/render/stage.py" in found["render_failed"]
    unknown = {reason: sorted(where) for reason, where in found.items() if reason not in REASONS}
    assert not unknown, f"add these to pulse.errors.REASONS (or use an existing reason): {unknown}"


def test_a_failed_upstream_row_has_one_name_in_every_stage():
    found = reasons_written_by_the_package()
    from pulse.data_ray.ingest import ReadRecords
    from pulse.data_ray.instruct.plan import PlanStage
    from pulse.data_ray.render.stage import RenderStage
    from pulse.data_ray.stage import Stage
    from pulse.train_ray.data import EncodeInstructions

    # every stage names a failed upstream row through the contract's `guarded`, not by itself
    assert all(issubclass(s, Stage) for s in (ReadRecords, PlanStage, RenderStage, EncodeInstructions))
    assert found[UPSTREAM_ERROR] <= {"data_ray/instruct/ecgqa.py", "errors.py", "data_ray/stage.py"}
    assert "ingest_error" not in found
    stage_source = (PACKAGE / "data_ray" / "stage.py").read_text()
    assert "error_text(UPSTREAM_ERROR" in stage_source, "the stage contract names failed upstream rows"


def test_error_text_round_trips_and_refuses_unknown_reasons():
    assert error_reason(error_text("render_failed", "ValueError: x")) == "render_failed"
    assert error_text("timeout") == "timeout"
    assert error_reason(None) is None and error_reason("") is None
    with pytest.raises(ValueError, match="unknown error reason 'rendr_failed'"):
        error_text("rendr_failed", "typo")
