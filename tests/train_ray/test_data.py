import numpy as np
import pyarrow as pa
import pytest

from pulse import io
from pulse.config import load_config
from pulse.data_ray.stage import Stage
from pulse.error_sink import ErrorSink
from pulse.models.tiny_llava import LlavaBuildConfig, build_processor
from pulse.schema import INSTRUCTION_SCHEMA
from pulse.train_ray.collate import IGNORE_INDEX
from pulse.train_ray.config import TrainConfig
from pulse.train_ray.data import EncodeInstructions, PadCollate, skipped_by_reason, training_batches

from .conftest import BAD_IDS, N_GOOD, training_rows


@pytest.fixture(scope="module")
def processor():
    return build_processor(LlavaBuildConfig())


def test_bad_rows_are_skipped_counted_and_sunk(processor, tmp_path):
    errors_dir = str(tmp_path / "errors")
    sink = ErrorSink(io.Folder(tmp_path))
    stage = EncodeInstructions(processor, 512, "truncate", sink)
    assert isinstance(stage, Stage) and stage.output_columns[0] == "id"
    table = pa.Table.from_pylist(training_rows(), schema=INSTRUCTION_SCHEMA)
    out = stage(table)
    assert len(out["id"]) == N_GOOD and not set(out["id"]) & set(BAD_IDS)
    assert skipped_by_reason(sink) == {"corrupt_image": 1, "missing_image_token": 1}
    assert set(io.read_parquet(errors_dir).column_names) == {"id", "error"}
    # A second pass (next epoch, retried task) overwrites the same sink file instead of double counting.
    stage(table)
    assert len(io.list_files(errors_dir, "*.parquet")) == 1
    assert skipped_by_reason(sink) == {"corrupt_image": 1, "missing_image_token": 1}
    batch = PadCollate(processor.tokenizer.pad_token_id)({k: v[:4] for k, v in out.items()})
    assert batch["input_ids"].shape[0] == 4 and (batch["labels"] != IGNORE_INDEX).any(dim=1).all()


def test_image_paths_and_upstream_errors(processor, tmp_path):
    rows = training_rows(3)[:3]
    io.write_bytes(str(tmp_path / "images" / "a.png"), rows[0]["image"])
    rows[0] = dict(rows[0], image=None, image_path="a.png")
    rows[1] = dict(rows[1], image=None, image_path="missing.png")
    rows[2] = dict(rows[2], error="render_failed: bad lead")
    sink = ErrorSink(io.Folder(tmp_path))
    stage = EncodeInstructions(processor, 512, "truncate", sink, io.Folder(tmp_path / "images"))
    out = stage(pa.Table.from_pylist(rows, schema=INSTRUCTION_SCHEMA))
    assert list(out["id"]) == [rows[0]["id"]]
    assert skipped_by_reason(sink) == {"missing_image": 1, "upstream_error": 1}
    errors = dict(zip(*io.read_parquet(sink.uri).to_pydict().values(), strict=True))
    assert errors[rows[2]["id"]] == "upstream_error: render_failed: bad lead"


def test_all_bad_batch_gives_empty_columns(processor, tmp_path):
    rows = [r for r in training_rows() if r["id"] in BAD_IDS]
    stage = EncodeInstructions(processor, 512, "truncate", ErrorSink(io.Folder(tmp_path / "e")))
    out = stage(pa.Table.from_pylist(rows, schema=INSTRUCTION_SCHEMA))
    assert all(len(v) == 0 for v in out.values()) and isinstance(out["input_ids"], np.ndarray)


def test_train_result_is_the_one_stage_summary_and_reads_old_done_records(capsys):
    import dataclasses

    from pulse.summary import StageSummary
    from pulse.train_ray.job import TrainResult

    result = TrainResult(rows_ok=8, rows_error=1, errors_by_reason={"too_long": 1}, export_dir="/x/export")
    assert isinstance(result, StageSummary) and result.stage == "train"
    assert TrainResult(**dataclasses.asdict(result)) == result
    result.print()
    assert capsys.readouterr().out.startswith("[train] ok=8 errors=1")
    old = {"export_dir": "/e", "checkpoint_path": None, "metrics": {"steps": 2}, "history": []}
    assert TrainResult(**old).metrics == {"steps": 2}  # a done.json written before the change


def _stream_order(cfg, n: int) -> list[int]:
    import ray

    samples = [
        {
            "input_ids": np.array([i], dtype=np.int64),
            "labels": np.array([i], dtype=np.int64),
            "pixel_values": np.zeros((1, 3, 2, 2), dtype=np.float32),
            "image_sizes": np.array([2, 2], dtype=np.int64),
        }
        for i in range(n)
    ]
    shard = ray.data.from_items(samples, override_num_blocks=1).iterator()
    return [int(i) for b in training_batches(shard, cfg, 0, epoch=0) for i in b["input_ids"][:, 0]]


def test_samples_are_shuffled_through_a_seeded_buffer_and_stream_order_is_kept_at_zero(ray_session):
    def cfg(buffer: int) -> TrainConfig:
        overrides = ["micro_batch_size=4", "global_batch_size=8", f"data.shuffle_buffer_rows={buffer}"]
        return load_config(TrainConfig, "configs/train/tiny-cpu.yaml", overrides)

    seeded, off = cfg(32), cfg(0)
    shuffled = _stream_order(seeded, 64)
    assert sorted(shuffled) == list(range(64)) and shuffled != list(range(64))
    assert _stream_order(seeded, 64) == shuffled  # the same seed, the same order
    assert _stream_order(off, 64) == list(range(64))
