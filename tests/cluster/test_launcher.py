"""The cluster launcher YAMLs validate against the autoscaler schema shipped in the ray wheel."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAUNCHER_FILES = [REPO / "cluster" / "aws.yaml", REPO / "cluster" / "gcp.yaml"]


@pytest.fixture(scope="module")
def ray_schema() -> dict:
    import ray

    return json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


@pytest.mark.parametrize("path", LAUNCHER_FILES, ids=lambda p: p.name)
def test_launcher_config_matches_ray_schema(path, ray_schema):
    import jsonschema

    jsonschema.validate(yaml.safe_load(path.read_text()), ray_schema)


@pytest.mark.parametrize("path", LAUNCHER_FILES, ids=lambda p: p.name)
def test_launcher_config_survives_ray_prepare_and_validate(path):
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(yaml.safe_load(path.read_text())))
    validate_config(prepared)
    assert prepared["head_node_type"] == "head"


@pytest.mark.parametrize("path", LAUNCHER_FILES, ids=lambda p: p.name)
def test_launcher_node_groups(path):
    cfg = yaml.safe_load(path.read_text())
    types = cfg["available_node_types"]
    assert types[cfg["head_node_type"]]["resources"] == {"CPU": 0}, "the head must take no task work"
    workers = {name: t for name, t in types.items() if name != cfg["head_node_type"]}
    assert all(t["min_workers"] == 0 for t in workers.values()), "every worker group scales from zero"
    cpu_groups = [t for t in workers.values() if not t["resources"].get("GPU")]
    gpu_groups = [t for t in workers.values() if t["resources"].get("GPU")]
    assert cpu_groups and any(t["resources"].get("pulse_cpu") for t in cpu_groups)
    assert any(t["resources"].get("pulse_gpu_infer") for t in gpu_groups), "build/serve GPU group"
    assert any(t["resources"].get("pulse_gpu_train") for t in gpu_groups), "train GPU group"
    for group in gpu_groups:
        assert (
            "cuda" in group["docker"]["worker_image"]
            and "--gpus all" in group["docker"]["worker_run_options"]
        )
    assert cfg["docker"]["image"].endswith("-cpu")
    assert cfg["max_workers"] >= sum(t["max_workers"] for t in workers.values())


@pytest.mark.parametrize("path", LAUNCHER_FILES, ids=lambda p: p.name)
def test_launcher_file_opens_with_its_command(path):
    first_lines = path.read_text().splitlines()[:6]
    assert first_lines[0].startswith("# ")
    assert any(f"ray up cluster/{path.name}" in line for line in first_lines)
    assert any("--max-workers" in line for line in first_lines), "an override example"
