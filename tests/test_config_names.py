"""No shipped config calls a model something it is not (served and benchmarked names vs checkpoint identity)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pulse.config import load_config
from pulse.ecgbench.sweep import SweepConfig
from pulse.models.checkpoint_info import NameMismatch, check_served_name, checkpoint_identity
from pulse.serve.config import ServeConfig

REPO = Path(__file__).resolve().parents[1]
SERVE_CONFIGS = [
    *sorted((REPO / "configs" / "serve").glob("*.yaml")),
    REPO / "cluster" / "kuberay" / "serve.yaml",
]
SWEEP_CONFIGS = sorted((REPO / "configs" / "ecgbench").glob("sweep*.yaml"))


def served_checkpoints() -> dict[str, str]:
    """Served model name -> checkpoint, over every shipped serve config."""
    out: dict[str, str] = {}
    for path in SERVE_CONFIGS:
        for model in load_config(ServeConfig, path).models:
            out.setdefault(model.name, model.checkpoint)
    return out


@pytest.mark.parametrize("path", SERVE_CONFIGS, ids=lambda p: p.name)
def test_served_names_match_their_checkpoints(path):
    for model in load_config(ServeConfig, path).models:
        check_served_name(model.name, model.checkpoint)


@pytest.mark.parametrize("path", SWEEP_CONFIGS, ids=lambda p: p.name)
def test_benchmarked_names_match_what_is_served(path):
    served = served_checkpoints()
    for entry in load_config(SweepConfig, path).models:
        checkpoint = served.get(entry.model, entry.model)  # a served name, or a hub id served as itself
        check_served_name(entry.name, checkpoint)
        check_served_name(entry.model, checkpoint)


def test_the_pulse7b_configs_serve_and_benchmark_pulse7b_and_base_llava_under_true_names():
    served = served_checkpoints()
    assert checkpoint_identity(served["llava-v1.6-vicuna-7b"]) == "llava-v1.6-vicuna-7b"
    sweep = load_config(SweepConfig, REPO / "configs" / "ecgbench" / "sweep_pulse7b.yaml")
    assert [m.name for m in sweep.models] == ["pulse-7b", "llava-v1.6-vicuna-7b"]
    assert served[sweep.models[0].model] == "/models/pulse-7b"


def test_a_name_the_checkpoint_contradicts_is_refused(tmp_path):
    # what cluster/kuberay/serve.yaml used to ship: the base model served as "pulse-7b"
    with pytest.raises(
        NameMismatch, match=re.escape("claims 'pulse-7b' but checkpoint 'llava-hf/llava-v1.6-vicuna-7b-hf'")
    ):
        check_served_name("pulse-7b", "llava-hf/llava-v1.6-vicuna-7b-hf")
    with pytest.raises(NameMismatch, match="records no identity and is not named after it"):
        check_served_name("pulse-7b", "/models/llava-base")
    folder = (
        tmp_path / "pulse-7b-copy"
    )  # named like PULSE-7B, but its convert-recorded identity says otherwise
    folder.mkdir()
    identity = {"name": "llava-v1.6-vicuna-7b", "source": "liuhaotian/llava-v1.6-vicuna-7b"}
    (folder / "config.json").write_text(json.dumps({"pulse_identity": identity}))
    with pytest.raises(NameMismatch, match=re.escape("is 'llava-v1.6-vicuna-7b'")):
        check_served_name("pulse-7b", str(folder))
    check_served_name("llava-v1.6-vicuna-7b", str(folder))
    check_served_name("llava-next-7b", "llava-hf/llava-v1.6-vicuna-7b-hf")  # generic: claims nothing
