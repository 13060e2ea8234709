"""Flat patch merge: pulse's model and engine against an independent reference of original LLaVA.

The reference (``original_llava_testlib``) runs the *original* checkpoint's weights through
CLIP + Sequential projector + LlamaForCausalLM with LLaVA's own anyres crops, ``encode_images``,
``-200`` splice and flat concatenation; pulse runs the converted folder through its engine.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoTokenizer, LlavaNextForConditionalGeneration

from pulse.llm.base import ChatRequest
from pulse.llm.config import SamplingParams, TransformersEngineConfig
from pulse.llm.transformers_engine import TransformersEngine
from pulse.models.convert import convert
from pulse.models.flat_merge import (
    PatchMergeMismatch,
    PulseFlatLlavaNextProcessor,
    check_merge,
    flat_image_token_count,
    load_llava_next,
)
from pulse.train_ray.config import ModelConfig
from pulse.train_ray.model import ArchitectureMismatch, load_model, load_processor, unused_parameter_names
from tests.models.original_llava_testlib import (
    ReferenceLlava,
    clip_normalise,
    llava_anyres_crops,
    llava_prompt_ids,
    write_original_llava,
)

# (height, width): a 2x2 grid (5 crops, 80 tokens) and a 2x1 grid (3 crops, 48 tokens) at 16 tokens per crop
SIZES = {"wide": (60, 110), "tall": (100, 50)}
EXPECTED_TOKENS = {"wide": 80, "tall": 48}
QUESTION = "Is this normal sinus rhythm?"


def _image(size, seed):
    height, width = size
    return Image.fromarray((np.random.RandomState(seed).rand(height, width, 3) * 255).astype("uint8"))


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    root = tmp_path_factory.mktemp("flat")
    src = write_original_llava(root / "orig", "flat", seed=3)
    dst = root / "hf"
    convert(str(src), str(dst), name="tiny-pulse")
    return src, dst, ReferenceLlava(src), AutoTokenizer.from_pretrained(str(src))


def _messages(with_image: bool):
    content = [{"type": "image"}] if with_image else []
    return [{"role": "user", "content": [*content, {"type": "text", "text": QUESTION}]}]


def test_flat_image_token_counts(flat):
    _, dst, _, _ = flat
    _, processor = load_llava_next(str(dst))
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    for key, size in SIZES.items():
        prompt = processor.apply_chat_template(_messages(True), add_generation_prompt=True, tokenize=False)
        ids = processor(
            images=[_image(size, 0)], text=[prompt], add_special_tokens=False, return_tensors="pt"
        )
        count = int((ids["input_ids"] == image_id).sum())
        assert (
            count
            == EXPECTED_TOKENS[key]
            == flat_image_token_count(size, [[56, 112], [112, 56], [112, 112]], 56, 14)
        )
    # PULSE-7B's numbers: 336-px crops of 14-px patches -> (1 + N) * 576, at most 2880 for the 2x2 pinpoint
    assert flat_image_token_count((900, 1000), [[336, 672], [672, 336], [672, 672]], 336, 14) == 5 * 576
    assert flat_image_token_count((300, 700), [[336, 672], [672, 336], [672, 672]], 336, 14) == 3 * 576


def test_preprocessing_matches_llava_anyres(flat):
    _, dst, _, _ = flat
    _, processor = load_llava_next(str(dst))
    for size in SIZES.values():
        image = _image(size, 1)
        ours = processor.image_processor(images=[image], return_tensors="pt")["pixel_values"][0]
        crops = torch.stack([clip_normalise(c) for c in llava_anyres_crops(image)])
        assert torch.allclose(ours[: len(crops)], crops, atol=1e-5)


def test_batch_of_two_grid_shapes_gives_the_reference_features(flat):
    _, dst, reference, _ = flat
    model, processor = load_llava_next(str(dst))
    images = [_image(SIZES["wide"], 4), _image(SIZES["tall"], 5)]
    batch = processor.image_processor(images=images, return_tensors="pt")
    assert batch["pixel_values"].shape[1] == 5  # the 3-crop image is padded to 5 in the batch
    with torch.no_grad():
        features = model.model.get_image_features(batch["pixel_values"], batch["image_sizes"]).pooler_output
    for image, feature, key in zip(images, features, SIZES, strict=True):
        expected = reference.image_features(
            torch.stack([clip_normalise(c) for c in llava_anyres_crops(image)])
        )
        assert feature.shape == expected.shape == (EXPECTED_TOKENS[key], 64)
        assert torch.allclose(feature, expected, atol=1e-4)


def test_engine_greedy_tokens_equal_the_reference_on_a_mixed_batch(flat):
    _, dst, reference, original_tokenizer = flat
    engine = TransformersEngine(TransformersEngineConfig(model_source=str(dst), device="cpu", batch_size=8))
    images = [_image(SIZES["wide"], 6), None, _image(SIZES["tall"], 7)]  # image, text-only, image
    requests = [
        ChatRequest(
            messages=_messages(image is not None),
            params=SamplingParams(max_tokens=12, temperature=0.0),
            images=(image,) if image is not None else (),
        )
        for image in images
    ]
    results = engine.generate(requests)
    for image, result in zip(images, results, strict=True):
        assert result.error is None, result.error
        prompt = engine.processor.apply_chat_template(
            _messages(image is not None), add_generation_prompt=True, tokenize=False
        )
        crops = None if image is None else torch.stack([clip_normalise(c) for c in llava_anyres_crops(image)])
        expected = reference.greedy(llava_prompt_ids(original_tokenizer, prompt), crops, 12)
        expected_text = engine.tokenizer.decode(
            [t for t in expected if t != engine.tokenizer.eos_token_id], skip_special_tokens=True
        )
        assert result.text == expected_text, (image is not None, result.text, expected_text)
        assert result.completion_tokens == len(expected)


def test_wrong_classes_are_refused(flat):
    _, dst, _, _ = flat
    stock = LlavaNextForConditionalGeneration.from_pretrained(str(dst))
    with pytest.raises(PatchMergeMismatch, match="does not implement 'flat'"):
        check_merge(stock)
    model, processor = load_llava_next(str(dst))
    assert check_merge(model, processor, wanted="flat") == "flat"
    with pytest.raises(PatchMergeMismatch, match="patch_merge='spatial_unpad' but the checkpoint records"):
        check_merge(model, processor, wanted="spatial_unpad")


def test_train_config_accepts_flat_only_when_the_checkpoint_is_flat(flat, tiny_llava_dir):
    _, dst, _, _ = flat
    cfg = ModelConfig(checkpoint=str(dst), patch_merge="flat")
    processor = load_processor(cfg)
    assert isinstance(processor, PulseFlatLlavaNextProcessor)
    model = load_model(cfg, processor)
    assert type(model).__name__ == "PulseFlatLlavaNextForConditionalGeneration"
    assert "model.image_newline" in unused_parameter_names(model)  # never reaches the loss under flat
    with pytest.raises(ValueError, match="records pulse_patch_merge='flat'"):
        ModelConfig(checkpoint=str(dst), patch_merge="spatial_unpad")
    with pytest.raises(ValueError, match="records pulse_patch_merge='spatial_unpad'"):
        ModelConfig(checkpoint=str(tiny_llava_dir), patch_merge="flat")
    hub_cfg = ModelConfig(checkpoint=str(dst))  # validation cannot see a hub id's config; load can
    hub_cfg.__dict__["patch_merge"] = "spatial_unpad"
    with pytest.raises(ArchitectureMismatch, match="patch_merge='spatial_unpad'"):
        load_model(hub_cfg, processor)
    assert json.loads((dst / "config.json").read_text())["pulse_patch_merge"] == "flat"
