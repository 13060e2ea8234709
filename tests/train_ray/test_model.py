import pytest

from pulse.models.tiny_llava import LlavaBuildConfig, build_processor
from pulse.train_ray.config import ModelConfig, TrainableParts
from pulse.train_ray.model import (
    ArchitectureMismatch,
    apply_trainable,
    check_architecture,
    freeze_unused,
    load_model,
    load_processor,
    unused_parameter_names,
)


@pytest.fixture(scope="module")
def processor():
    return build_processor(LlavaBuildConfig())


def test_checkpoint_architecture_is_read_not_guessed(tiny_llava_dir):
    cfg = ModelConfig(
        checkpoint=str(tiny_llava_dir),
        expect={"image_grid_pinpoints": [[56, 112], [112, 56], [112, 112]], "text_config.hidden_size": 64},
    )
    processor = load_processor(cfg)
    model = load_model(cfg, processor)
    assert model.config.text_config.hidden_size == 64
    assert processor.image_processor.image_grid_pinpoints == [[56, 112], [112, 56], [112, 112]]


def test_conflicting_architecture_value_is_an_error(tiny_llava_dir):
    cfg = ModelConfig(
        checkpoint=str(tiny_llava_dir),
        expect={"vision_feature_layer": -2, "image_grid_pinpoints": [[336, 672]]},
    )
    with pytest.raises(ArchitectureMismatch) as info:
        load_model(cfg, load_processor(cfg))
    assert "model.expect.vision_feature_layer=-2" in str(info.value)
    assert "model.expect.image_grid_pinpoints" in str(info.value)
    with pytest.raises(ArchitectureMismatch, match="no field 'nonsense'"):
        load_model(ModelConfig(checkpoint=str(tiny_llava_dir), expect={"nonsense": 1}), load_processor(cfg))


def test_unconverted_original_llava_config_is_an_explicit_error():
    # flat itself is supported (tests/models/test_flat_merge.py); an original-LLaVA config must be converted first
    class OriginalLlavaConfig:  # original-LLaVA config.json keys, as PULSE-7B's carry
        mm_patch_merge_type = "flat"

    with pytest.raises(ArchitectureMismatch, match=r"mm_patch_merge_type='flat'.*pulse convert"):
        check_architecture(OriginalLlavaConfig(), {})


def test_exactly_one_model_source():
    with pytest.raises(ValueError, match=r"exactly one of model\.build"):
        ModelConfig()
    with pytest.raises(ValueError, match=r"exactly one of model\.build"):
        ModelConfig(build=LlavaBuildConfig(), checkpoint="llava-hf/llava-v1.6-vicuna-7b-hf")


def test_mismatched_processor_pinpoints_are_rejected(processor):
    cfg = ModelConfig(build=LlavaBuildConfig(image_grid_pinpoints=[[56, 112], [112, 56]]))
    with pytest.raises(ArchitectureMismatch, match="image_grid_pinpoints"):
        load_model(cfg, processor)


def test_trainable_parts(processor):
    model = load_model(ModelConfig(build=LlavaBuildConfig()), processor)
    counts = apply_trainable(model, TrainableParts(vision_tower=False, projector=True, language_model=False))
    assert counts["vision_tower"] == 0 and counts["language_model"] == 0 and counts["projector"] > 0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(
        n.startswith(("model.multi_modal_projector", "model.image_newline")) for n in trainable
    )


def test_layers_above_the_feature_layer_are_frozen(processor):
    model = load_model(ModelConfig(build=LlavaBuildConfig(vision_feature_layer=-2)), processor)
    apply_trainable(model, TrainableParts(vision_tower=True))
    unused = unused_parameter_names(model)
    assert any(".encoder.layers.1." in n for n in unused) and not any(
        ".encoder.layers.0." in n for n in unused
    )
    assert freeze_unused(model) == len(unused)
    # The remaining trainable tower parameters all get gradients (DDP needs this).
    from PIL import Image

    from pulse.train_ray.collate import encode_sample, pad_batch

    conversation = [{"from": "human", "value": "<image>\nRate?"}, {"from": "gpt", "value": "normal"}]
    sample = encode_sample(processor, Image.new("RGB", (112, 56), "white"), conversation, 256)
    batch = pad_batch([sample.__dict__], processor.tokenizer.pad_token_id)
    model(**batch).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
