from __future__ import annotations

from pathlib import Path

import pytest

from pulse.config import ConfigError, load_config
from pulse.data_ray.instruct.config import BuildConfig
from pulse.data_ray.instruct.prompts import load_prompt_file

REPO = Path(__file__).resolve().parents[3]
SHIPPED = sorted((REPO / "configs" / "build").glob("*.yaml"))
PROMPTS = sorted((REPO / "configs" / "build" / "prompts").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_build_configs_validate_and_open_with_their_command(path):
    first = path.read_text().splitlines()[0]
    assert (
        first.startswith("#") and "pulse build --config configs/build/" in path.read_text().split("\n\n")[0]
    )
    cfg = load_config(BuildConfig, str(path))
    load_prompt_file(cfg.templates.prompts)
    load_prompt_file(cfg.synthesis.prompts)


@pytest.mark.parametrize("path", PROMPTS, ids=lambda p: p.name)
def test_prompt_files_are_versioned(path):
    assert load_prompt_file(str(path))["version"] == path.stem


def test_shipped_configs_include_demo_cpu_and_gpu():
    names = {p.name for p in SHIPPED}
    assert {"templates.yaml", "smollm2.yaml", "vllm-llama3-70b.yaml"} <= names
    vllm = load_config(BuildConfig, str(REPO / "configs" / "build" / "vllm-llama3-70b.yaml"))
    assert vllm.synthesis.engine.kind == "vllm" and vllm.synthesis.engine.tensor_parallel_size >= 4


def test_llm_routes_without_an_engine_and_unknown_keys_are_errors():
    base = ["records_dir=r", "images_dir=i", "output_dir=o"]
    with pytest.raises(ConfigError, match=r"synthesis\.engine is null"):
        load_config(BuildConfig, None, [*base, "routes.ptbxl=[synthesis]"])
    with pytest.raises(ConfigError, match=r"Unknown config key: judge\.treshold"):
        load_config(BuildConfig, None, [*base, "judge.treshold=3"])
    with pytest.raises(ConfigError, match=r"synthesis\.engine"):
        load_config(BuildConfig, None, [*base, "synthesis.engine.kind=gpt"])
