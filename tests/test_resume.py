"""pulse.resume: fingerprints of output-affecting config fields guard every resumable output folder."""

from __future__ import annotations

import json

import pytest

from pulse import resume
from pulse.config import ConfigError, StrictModel
from pulse.runtime import RayOptions


class Options(StrictModel):
    size: int = 8
    names: list[str] = ["a", "b"]


class JobConfig(StrictModel):
    output_dir: str
    options: Options = Options()
    workers: int = 2
    ray: RayOptions = RayOptions()
    overwrite: bool = False


def prepare(cfg: JobConfig):
    return resume.prepare(cfg, cfg.output_dir, "job", outputs=["data"], ignore=["output_dir", "workers"])


def test_flatten_and_changed_keys_name_dotted_paths():
    flat = resume.flatten({"a": {"b": 1, "c": [2, {"d": 3}]}, "e": [], "f": {}})
    assert flat == {"a.b": 1, "a.c.0": 2, "a.c.1.d": 3, "e": [], "f": {}}
    assert resume.changed_keys({"x": 1, "y": 2}, {"x": 1, "y": 3, "z": 4}) == ["y", "z"]


def test_fingerprint_ignores_declared_and_runtime_fields(tmp_path):
    base = JobConfig(output_dir=str(tmp_path))
    same = base.model_copy(update={"workers": 16, "ray": RayOptions(num_cpus=3), "output_dir": "elsewhere"})
    keys = ["output_dir", "workers"]
    assert resume.fingerprint(resume.output_config(base, keys)) == resume.fingerprint(
        resume.output_config(same, keys)
    )
    changed = base.model_copy(update={"options": Options(size=4)})
    assert resume.fingerprint(resume.output_config(changed, keys)) != resume.fingerprint(
        resume.output_config(base, keys)
    )


def test_fresh_then_resume_then_done(tmp_path):
    cfg = JobConfig(output_dir=str(tmp_path / "out"))
    assert prepare(cfg).status == "fresh"
    recorded = json.loads((tmp_path / "out" / "_progress" / "fingerprint.json").read_text())
    assert recorded["job"] == "job" and recorded["config"]["options.size"] == 8
    (tmp_path / "out" / "data").mkdir()
    assert prepare(cfg.model_copy(update={"workers": 9})).status == "resume"
    resume.mark_done(cfg.output_dir, {"rows": 3})
    state = prepare(cfg)
    assert state.status == "done" and state.done == {"rows": 3}


def test_changed_config_is_refused_with_the_changed_keys(tmp_path):
    cfg = JobConfig(output_dir=str(tmp_path / "out"))
    prepare(cfg)
    changed = cfg.model_copy(update={"options": Options(size=4, names=["a"])})
    with pytest.raises(ConfigError) as info:
        prepare(changed)
    message = str(info.value)
    assert "\n" not in message
    assert "options.size 8 -> 4" in message and 'options.names.1 "b" -> unset' in message
    assert "use a new output_dir, or overwrite=true" in message
    # Nothing was touched: the recorded fingerprint still describes the old run.
    recorded = json.loads((tmp_path / "out" / "_progress" / "fingerprint.json").read_text())
    assert recorded["config"]["options.size"] == 8


def test_overwrite_removes_old_outputs_and_records_the_new_config(tmp_path):
    out = tmp_path / "out"
    cfg = JobConfig(output_dir=str(out))
    prepare(cfg)
    (out / "data").mkdir()
    (out / "data" / "part-0").write_text("old")
    (out / "keep.txt").write_text("not ours")
    resume.mark_done(cfg.output_dir, {"rows": 3})
    changed = cfg.model_copy(update={"options": Options(size=4), "overwrite": True})
    assert prepare(changed).status == "fresh"
    assert not (out / "data").exists() and not (out / "_progress" / "done.json").exists()
    assert (out / "keep.txt").read_text() == "not ours"
    recorded = json.loads((out / "_progress" / "fingerprint.json").read_text())
    assert recorded["config"]["options.size"] == 4
    assert prepare(changed.model_copy(update={"overwrite": False})).status == "resume"


def test_outputs_without_a_fingerprint_are_refused(tmp_path):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"already holds data without a recorded job config; use a new"):
        prepare(JobConfig(output_dir=str(out)))
    assert prepare(JobConfig(output_dir=str(out), overwrite=True)).status == "fresh"


def test_fingerprint_lives_on_s3_too(s3_bucket):
    cfg = JobConfig(output_dir=f"{s3_bucket}/resume")
    assert prepare(cfg).status == "fresh"
    with pytest.raises(ConfigError, match=r"options\.size 8 -> 5"):
        prepare(cfg.model_copy(update={"options": Options(size=5)}))
    assert prepare(cfg).status == "resume"


def test_another_jobs_folder_is_refused(tmp_path):
    cfg = JobConfig(output_dir=str(tmp_path / "out"))
    resume.prepare(cfg, cfg.output_dir, "ingest", outputs=["records"])
    with pytest.raises(
        ConfigError, match=r"holds the output of `pulse ingest`, not job; use a new output_dir"
    ):
        prepare(cfg)
