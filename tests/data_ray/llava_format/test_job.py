import pyarrow.parquet as pq
import pytest

from pulse.config import load_config
from pulse.data_ray.llava_format.images import TarShards
from pulse.data_ray.llava_format.job import LlavaImportConfig, run
from pulse.schema import error_reason

from .conftest import BAD_REASONS, N_GOOD, ecginstruct_rows

EXPECTED = {"corrupt_image": 1, "empty_answer": 1, "malformed_row": 2, "missing_image": 1}
EXPECTED |= {"bad_conversation": 1, "missing_image_token": 1}


def import_with(fixture, out, images: list[str]) -> tuple:
    cfg = load_config(LlavaImportConfig, None, [f"input={fixture['json']}", f"output_dir={out}", *images])
    summary = run(cfg)
    good = pq.read_table(f"{out}/parquet/split=train").to_pylist()
    bad = pq.read_table(f"{out}/errors").to_pylist()
    return summary, good, bad


@pytest.mark.parametrize("images", ["shards", "folder"])
def test_import_counts_every_bad_kind_and_keeps_good_rows(ecginstruct_fixture, tmp_path, images):
    value = ecginstruct_fixture["shards"] if images == "shards" else ecginstruct_fixture["folder"]
    override = f"images.shards={value}" if images == "shards" else f"images.folder={value}"
    summary, good, bad = import_with(ecginstruct_fixture, tmp_path / "out", [override])
    assert summary.rows_ok == N_GOOD and summary.errors_by_reason == EXPECTED
    assert {r["id"]: error_reason(r["error"]) for r in bad} == {
        **{k: v for k, v in BAD_REASONS.items() if k != "bad-not-object"},
        "row-18": "malformed_row",
    }
    by_id = {r["id"]: r for r in good}
    expected = {r["id"]: r for r in ecginstruct_fixture["records"][:N_GOOD]}
    assert set(by_id) == set(expected)
    for row_id, row in by_id.items():
        assert row["image"][:8] == b"\x89PNG\r\n\x1a\n" and row["error"] is None
        assert (row["task"], row["qtype"], row["source"]) == ("rhythm", "close", "PTB-XL")
        assert row["conversations"][0]["value"].startswith("<image>\n")
        assert len(row["conversations"]) == len(expected[row_id]["conversations"])
    assert sum(len(r["conversations"]) == 4 for r in good) == 4  # the multi-turn rows survive


def test_tar_index_is_reused_and_rerun_replaces_output(ecginstruct_fixture, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shards = f"images.shards={ecginstruct_fixture['shards']}"
    import_with(ecginstruct_fixture, out, [shards])

    def no_rescan(*args):
        raise AssertionError("the shards were scanned again")

    monkeypatch.setattr(TarShards, "_insert", no_rescan)
    cfg = load_config(
        LlavaImportConfig,
        None,
        [f"input={ecginstruct_fixture['json']}", f"output_dir={out}", shards, "limit=5"],
    )
    summary = run(cfg)
    assert summary.rows_ok == 5 and summary.rows_error == 0
    assert len(pq.read_table(f"{out}/parquet/split=train")) == 5 and not (out / "errors").exists()


def test_tar_members_by_offset_and_gzip_sequentially(ecginstruct_fixture, tmp_path):
    _, images = ecginstruct_rows()
    store = TarShards(ecginstruct_fixture["shards"], str(tmp_path / "index.sqlite"))
    assert sum(store.index_counts.values()) == len(images)
    for path, data in images.items():
        shard = store.locate(path)
        if shard.endswith(".tar"):
            assert store.read(path) == data and store.read("./" + path) == data
    streamed = dict(store.iter_shard(ecginstruct_fixture["shards"][1]))
    assert streamed and all(images[name] == data for name, data in streamed.items())
    assert store.locate("nowhere.png") is None
    store.close()


def test_missing_input_and_one_image_source(tmp_path):
    with pytest.raises(FileNotFoundError):
        run(LlavaImportConfig(input=str(tmp_path / "none.json"), images={"folder": "x"}, output_dir="o"))
    with pytest.raises(ValueError, match=r"exactly one of images\.folder or images\.shards"):
        LlavaImportConfig(input="a.json", images={"folder": "x", "shards": "y"}, output_dir="o")
