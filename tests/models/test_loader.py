"""The one model loader: vision vs text checkpoints, dtype, context length, served model names."""

from __future__ import annotations

import json

import pytest

from pulse.models.loader import (
    TINY_RANDOM_SOURCE,
    context_length,
    load_model,
    load_pretrained_dir,
    served_model_name,
)


def test_a_vision_folder_loads_with_its_processor(tiny_llava_dir):
    loaded = load_model(str(tiny_llava_dir), dtype="bfloat16")
    assert loaded.processor is not None and loaded.tokenizer is loaded.processor.tokenizer
    assert type(loaded.model).__name__ == "LlavaNextForConditionalGeneration"
    assert not loaded.model.training and str(loaded.model.dtype) == "torch.bfloat16"
    assert context_length(loaded.model) == 1024


def test_tiny_random_is_a_text_model_and_refused_as_a_vision_dir():
    loaded = load_model(TINY_RANDOM_SOURCE)
    assert loaded.processor is None and context_length(loaded.model) == 4096
    with pytest.raises(ValueError, match="not a vision-language checkpoint"):
        load_pretrained_dir(TINY_RANDOM_SOURCE)


def test_served_name_comes_from_the_checkpoint(tmp_path):
    assert served_model_name("llava-hf/llava-v1.6-mistral-7b-hf") == "llava-v1.6-mistral-7b"  # known id
    assert served_model_name("someone/ecg-llava") == "someone/ecg-llava"  # other hub ids as they are
    recorded = tmp_path / "converted"
    recorded.mkdir()
    (recorded / "config.json").write_text(json.dumps({"pulse_identity": {"name": "pulse-7b"}}))
    assert served_model_name(str(recorded)) == "pulse-7b"
    plain = tmp_path / "runs" / "r1" / "hf"
    plain.mkdir(parents=True)
    (plain / "config.json").write_text("{}")
    assert served_model_name(str(plain)) == "r1-hf"  # a generic folder name keeps its parent
    assert served_model_name(str(tmp_path / "my finetune v2/")) == "my-finetune-v2"
