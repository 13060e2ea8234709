"""Mixtures: exact per-source counts in Ray Data, the recorded mixture on resume, and a real 2-worker
``pulse train`` on ECGInstruct-format data (imported from JSON + tar shards) mixed with pulse-built
Parquet and a user's LLaVA JSON, through to the Hugging Face export."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from pulse import cli
from pulse.config import ConfigError, load_config
from pulse.data_ray.llava_format.job import LlavaImportConfig
from pulse.data_ray.llava_format.job import run as import_llava
from pulse.models.loader import load_pretrained_dir
from pulse.train_ray.config import TrainConfig
from pulse.train_ray.data import count_rows
from pulse.train_ray.mixture import load_or_resolve, mixed_dataset, mixture_file, split_rows
from pulse.train_ray.synthetic import heart_rate_rows, write_instruction_parquet

from ..data_ray.llava_format.conftest import ecginstruct_rows, write_shards


def test_split_rows_sums_exactly_and_follows_weights():
    assert split_rows(10, [1, 1, 1]) == [4, 3, 3]
    assert split_rows(100, [3, 1]) == [75, 25]
    assert sum(split_rows(7, [0.2, 0.5, 0.3])) == 7


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("mix")
    write_instruction_parquet(heart_rate_rows(10, seed=5), str(root / "a"), shard_size=4)
    write_instruction_parquet(heart_rate_rows(30, seed=6), str(root / "b"), shard_size=8)
    return {"a": str(root / "a"), "b": str(root / "b"), "root": str(root)}


def mix_cfg(storage: str, sources: dict[str, str], *overrides: str) -> TrainConfig:
    spec = f"[{{name: small, path: '{sources['a']}', weight: 1}}, {{name: big, path: '{sources['b']}', weight: 3}}]"
    return load_config(
        TrainConfig,
        "configs/train/tiny-cpu.yaml",
        [f"storage_path={storage}", "data.train_path=null", f"data.sources={spec}", *overrides],
    )


def test_mixture_counts_per_source_and_resume_keeps_it(ray_session, sources, tmp_path):
    cfg = mix_cfg(str(tmp_path), sources, "name=mix", "data.mixture_size=48")
    assert count_rows(cfg) == 48
    recorded = json.loads(Path(mixture_file(cfg)).read_text())
    by_name = {s["name"]: s for s in recorded["sources"]}
    # small: 12 of 10 available -> repeated once + 2; big: 36 of 30 -> once + 6.
    assert (by_name["small"]["rows"], by_name["small"]["repeats"], by_name["small"]["remainder"]) == (
        12,
        1,
        2,
    )
    assert (by_name["big"]["rows"], by_name["big"]["available_rows"]) == (36, 30)
    rows = mixed_dataset(cfg, recorded).select_columns(["id", "mixture_source"]).take_all()
    assert Counter(r["mixture_source"] for r in rows) == {"small": 12, "big": 36}
    assert len({r["id"] for r in rows if r["mixture_source"] == "small"}) == 10
    # Resume: a new file in a source does not change the recorded mixture or what is read.
    write_instruction_parquet(heart_rate_rows(5, seed=7), sources["a"] + "/extra", shard_size=5)
    again = load_or_resolve(cfg)
    assert again == recorded and count_rows(cfg) == 48
    reread = mixed_dataset(cfg, again).select_columns(["id", "mixture_source"]).take_all()
    # Same counts per source, every row of a source once per full repeat (which rows top up a partial
    # pass follows Ray Data's streaming order and may differ between executions).
    assert Counter(r["mixture_source"] for r in reread) == {"small": 12, "big": 36}
    assert {r["id"] for r in reread} == {r["id"] for r in rows if r["mixture_source"] == "small"} | {
        r["id"] for r in rows if r["mixture_source"] == "big"
    }
    with pytest.raises(ConfigError, match="was started with mixture"):
        load_or_resolve(mix_cfg(str(tmp_path), sources, "name=mix", "data.mixture_size=40"))


def test_sources_and_train_path_are_exclusive(sources):
    with pytest.raises(ConfigError, match=r"exactly one of data\.train_path or data\.sources"):
        mix_cfg("/tmp/x", sources, f"data.train_path={sources['a']}")
    with pytest.raises(ConfigError, match="images is required with format=llava"):
        load_config(
            TrainConfig,
            "configs/train/tiny-cpu.yaml",
            [
                "storage_path=/tmp/x",
                "data.train_path=null",
                "data.sources=[{name: u, path: a.json, format: llava}]",
            ],
        )


@pytest.mark.slow
def test_ecginstruct_json_and_shards_train_two_workers_and_export(ray_session, instruction_dir, tmp_path):
    records, images = ecginstruct_rows(n_good=16, seed=8)
    json_path = tmp_path / "ECGInstruct.json"
    json_path.write_text(json.dumps(records))
    shards = write_shards(images, tmp_path / "shards")
    imported = import_llava(
        LlavaImportConfig(
            input=str(json_path), images={"shards": shards}, output_dir=str(tmp_path / "ecginstruct")
        )
    )
    assert imported.rows_ok == 16 and imported.rows_error == 7
    user_rows, user_images = ecginstruct_rows(n_good=6, seed=9)
    (tmp_path / "mine.jsonl").write_text("\n".join(json.dumps(r) for r in user_rows[:6]))
    for name, data in user_images.items():
        (tmp_path / "mine_images" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "mine_images" / name).write_bytes(data)
    spec = (
        f"[{{name: ecginstruct, path: '{tmp_path}/ecginstruct/parquet/split=train', weight: 2}}, "
        f"{{name: built, path: '{instruction_dir}', weight: 1}}, "
        f"{{name: mine, path: '{tmp_path}/mine.jsonl', format: llava, images: '{tmp_path}/mine_images', weight: 1}}]"
    )
    argv = [
        "train",
        "--config",
        "configs/train/tiny-cpu.yaml",
        "name=mix-e2e",
        f"storage_path={tmp_path}/runs",
        "data.train_path=null",
        f"data.sources={spec}",
        "data.mixture_size=40",
        "max_steps=3",
        "checkpoint_every=3",
        "global_batch_size=4",
        "max_length=256",
        "ray.num_cpus=8",
    ]
    assert cli.main(argv) == 0
    run_dir = tmp_path / "runs" / "mix-e2e"
    mixture = json.loads((run_dir / "mixture.json").read_text())
    assert {s["name"]: s["rows"] for s in mixture["sources"]} == {"ecginstruct": 20, "built": 10, "mine": 10}
    assert mixture["seed"] == 0 and (run_dir / "imported" / "mine" / "summary.json").exists()
    model, processor = load_pretrained_dir(str(run_dir / "export"))
    assert (
        model.config.model_type == "llava_next"
        and processor.chat_template
        and (run_dir / "export" / "model.safetensors").exists()
    )


def test_sources_are_interleaved_in_small_blocks_not_trained_file_after_file(ray_session, tmp_path):
    paths = {}
    for name, seed in (("a", 1), ("b", 2)):
        paths[name] = str(tmp_path / name)
        write_instruction_parquet(heart_rate_rows(256, seed=seed), paths[name], shard_size=256)
    spec = f"[{{name: a, path: '{paths['a']}', weight: 1}}, {{name: b, path: '{paths['b']}', weight: 1}}]"
    cfg = load_config(
        TrainConfig,
        "configs/train/tiny-cpu.yaml",
        [f"storage_path={tmp_path}", "data.train_path=null", f"data.sources={spec}", "name=interleave"],
    )
    order = [r["mixture_source"] for r in mixed_dataset(cfg, load_or_resolve(cfg)).take_all()]
    runs = [len(list(group)) for _, group in itertools.groupby(order)]
    assert Counter(order) == {"a": 256, "b": 256}
    # Each source is one 256-row file. Trained file after file, one run would be all 256 rows of a source;
    # in 16-row blocks shuffled, that needs all 16 blocks of a source in a row (p ~ 1e-7).
    assert max(runs) < 256 and len(runs) >= 4, runs
