"""Finetune a converted flat-merge checkpoint (a tiny PULSE-7B) with Ray Train (2 DDP workers), export
it, load the export, serve it in one line under the run's name and score it with ECGBench's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from pulse import cli, io
from pulse.config import load_config
from pulse.models.checkpoint_info import NameMismatch, check_served_name
from pulse.models.convert import convert
from pulse.models.flat_merge import PulseFlatLlavaNextForConditionalGeneration, load_llava_next
from pulse.schema import IMAGE_SCHEMA, RECORD_SCHEMA
from pulse.serve.config import ServeConfig
from pulse.train_ray.config import TrainConfig
from pulse.train_ray.export import probe_matches
from pulse.train_ray.job import run
from pulse.train_ray.synthetic import heart_rate_rows, write_instruction_parquet
from tests.models.original_llava_testlib import write_original_llava

pytestmark = pytest.mark.slow


def test_finetune_from_converted_flat_checkpoint_exports_a_flat_model(ray_session, tmp_path):
    src = write_original_llava(tmp_path / "orig", "flat", seed=5)
    converted = tmp_path / "hf"
    convert(str(src), str(converted), name="tiny-pulse")
    data = tmp_path / "parquet" / "split=train"
    write_instruction_parquet(heart_rate_rows(16, seed=2), str(data), shard_size=8)
    cfg = load_config(
        TrainConfig,
        "configs/train/tiny-cpu.yaml",
        [
            f"storage_path={tmp_path / 'runs'}",
            f"data.train_path={data}",
            "name=flat",
            "model.build=null",
            f"model.checkpoint={converted}",
            "model.patch_merge=flat",
            "max_steps=3",
            "checkpoint_every=3",
            "global_batch_size=4",
            "max_length=256",
            "ray.num_cpus=8",
        ],
    )
    result = run(cfg)
    assert result.metrics["steps"] == 3
    assert result.history[-1][1] < result.history[0][1]  # the loss went down
    config = json.loads(Path(result.export_dir, "config.json").read_text())
    assert config["pulse_patch_merge"] == "flat"
    assert config["architectures"] == ["PulseFlatLlavaNextForConditionalGeneration"]
    model, processor = load_llava_next(result.export_dir)
    assert isinstance(model, PulseFlatLlavaNextForConditionalGeneration)
    assert processor.chat_template
    # The export generates, token for token, what the trained flat model generated inside the worker.
    assert result.metrics["export_probe_match"] is True
    assert probe_matches(model, result.checkpoint_path) is True
    # The export is the run, trained from the converted model: never served under the base's name.
    assert config["pulse_identity"] == {
        "name": "flat",
        "source": str(converted),
        "source_format": "pulse-train",
        "base": "tiny-pulse",
        "step": 3,
    }
    with pytest.raises(NameMismatch, match="claims 'pulse-7b'"):
        check_served_name("pulse-7b", result.export_dir)
    serve_and_score(result.export_dir, tmp_path)


def serve_and_score(export_dir: str, tmp_path: Path) -> None:
    """``pulse serve --checkpoint EXPORT`` names the model after the run; ``pulse ecgbench run`` asks
    it about own items (real PNGs) and records its answers and scores under that name."""
    from tests.ecgbench.conftest import own_record
    from tests.serve.serve_testlib import free_port, png_bytes, running

    serve_cfg = load_config(
        ServeConfig,
        "configs/serve/cpu.yaml",
        [f"checkpoint={export_dir}", f"port={free_port()}", "auth.api_key_env=null"],
    )
    assert [m.name for m in serve_cfg.models] == ["flat"]
    records = [
        own_record("ptbxl/1", "ptbxl", "test", superclasses=["NORM"]),
        own_record("ptbxl/2", "ptbxl", "test", superclasses=["MI", "STTC"]),
    ]
    records_dir, images_dir = str(tmp_path / "ingest"), str(tmp_path / "render")
    io.write_parquet(pa.Table.from_pylist(records, schema=RECORD_SCHEMA), f"{records_dir}/records/a.parquet")
    images = [
        {"record_id": r["record_id"], "image": png_bytes(), "image_format": "png", "leads": [], "error": None}
        for r in records
    ]
    io.write_parquet(pa.Table.from_pylist(images, schema=IMAGE_SCHEMA), f"{images_dir}/images/a.parquet")
    bench, out = str(tmp_path / "bench"), tmp_path / "scores"
    assert (
        cli.main(["ecgbench", "items", "--records", records_dir, "--images", images_dir, "--out", bench]) == 0
    )
    with running(serve_cfg) as url:
        endpoint = ["--base-url", url, "--model", "flat", "--api-key-env", "PULSE_TEST_NO_KEY"]
        args = ["ecgbench", "run", "--subset", "own-ptbxl", "--gold", bench, *endpoint]
        assert cli.main([*args, "--max-tokens", "8", "--output-dir", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert {(r["model"], r["subset"], r["n"], r["error_rows"]) for r in results} == {
        ("flat", "own-ptbxl", 2, 0)
    }
    answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert sorted(a["question_id"] for a in answers) == ["ptbxl/1", "ptbxl/2"]
