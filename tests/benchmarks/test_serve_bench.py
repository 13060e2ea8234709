"""The load benchmark's own configs validate against today's ServeConfig (it is not run in CI, so a
config change would otherwise break it silently; the overload run is recorded in issue notes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pulse.serve.app import admission_limit

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "serve.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("serve_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_load_runs_config_is_a_valid_serve_config(bench, tmp_path):
    args = bench.parse_args(["--batch-size", "4", "--torch-threads", "2", "--max-tokens", "8"])
    cfg = bench.serve_config(str(tmp_path), args, max_batch_size=1)
    model = cfg.models[0]
    assert model.max_batch_size == 1 and model.engine.torch_threads == 2
    assert model.engine.model_source == str(tmp_path) and cfg.auth.api_key_env is None


def test_the_overload_config_has_small_queues_and_room_for_the_images(bench, tmp_path):
    args = bench.parse_args(["--overload", "--max-ongoing", "2", "--max-queued", "3", "--images", "4"])
    cfg = bench.overload_config(str(tmp_path), args)
    assert admission_limit(cfg) == 5 and cfg.limits.max_images == 4
    assert cfg.autoscaling.max_replicas == 1
