"""Original-LLaVA ``flat`` patch merge for Hugging Face LLaVA-NeXT (PULSE-7B's layout).

HF ``LlavaNextModel`` always unpads the anyres grid and appends an ``image_newline`` row.
Original LLaVA with ``mm_patch_merge_type: flat`` instead concatenates the crops as they come
out of the image processor: the base (whole-image) crop, then the grid crops in row order,
each ``(image_size / patch_size) ** 2`` features (576 for CLIP-L/336), with no unpadding and no
newline. The subclasses here implement exactly that; the processor expands ``<image>`` to
``(1 + N crops) * tokens_per_crop`` ids.

Which classes a checkpoint needs is read from its config's ``pulse_patch_merge`` field
(written by ``pulse convert`` and by ``build_model`` for flat models); a config without it is
``spatial_unpad``, the HF layout. Stock ``AutoModelForImageTextToText`` ignores the field, so
pulse's loaders call ``model_class_for`` / ``processor_class_for`` and ``check_merge``.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import LlavaNextForConditionalGeneration, LlavaNextProcessor
from transformers.image_processing_utils import select_best_resolution
from transformers.models.llava_next.modeling_llava_next import LlavaNextModel, LlavaNextPreTrainedModel

from pulse.models.checkpoint_info import (
    FLAT_ARCHITECTURE,
    PATCH_MERGE_FIELD,
    PatchMergeMismatch,
    patch_merge_of,
)


class PulseFlatLlavaNextModel(LlavaNextModel):
    """``LlavaNextModel`` whose image features are the crops flattened in order (no unpad, no newline)."""

    def pack_image_features(
        self, image_features, image_sizes, vision_feature_select_strategy, image_newline=None
    ):
        # image_features: per image (1 + N crops, tokens_per_crop, dim), base crop first, grid in row order
        packed = [feature.flatten(0, 1) for feature in image_features]
        lens = torch.tensor([p.shape[0] for p in packed], dtype=torch.long, device=packed[0].device)
        return packed, lens


class PulseFlatLlavaNextForConditionalGeneration(LlavaNextForConditionalGeneration):
    """LLaVA-NeXT with original-LLaVA ``flat`` merge; same weights and key names as the HF class.

    ``model.image_newline`` is kept (PULSE-7B ships it) but never used.
    """

    def __init__(self, config):
        LlavaNextPreTrainedModel.__init__(self, config)
        self.model = PulseFlatLlavaNextModel(config)
        self.lm_head = torch.nn.Linear(
            config.text_config.hidden_size, config.text_config.vocab_size, bias=False
        )
        self.post_init()


class PulseFlatLlavaNextProcessor(LlavaNextProcessor):
    """``LlavaNextProcessor`` counting ``(1 + N crops) * tokens_per_crop`` image tokens (flat merge).

    Saved as a plain ``LlavaNextProcessor`` (the token count is a property of the model's merge,
    which the model config records), so tools that only know stock classes can still read it.
    """

    def _get_number_of_features(self, orig_height: int, orig_width: int, height: int, width: int) -> int:
        best_height, best_width = select_best_resolution(
            [orig_height, orig_width], self.image_processor.image_grid_pinpoints
        )
        crops = (best_height // height) * (best_width // width)
        per_crop = (height // self.patch_size) * (width // self.patch_size)
        # The parent subtracts 1 for the "default" strategy: the CLS is counted once, like HF's base crop.
        return (1 + crops) * per_crop + self.num_additional_image_tokens

    def to_dict(self, *args, **kwargs):
        out = super().to_dict(*args, **kwargs)
        if out.get("processor_class"):
            out["processor_class"] = "LlavaNextProcessor"
        return out


def flat_image_token_count(
    image_size: tuple[int, int], pinpoints: list[list[int]], crop: int, patch: int
) -> int:
    """Image tokens of one ``(height, width)`` image under flat merge: ``(1 + N) * (crop/patch)**2``."""
    best_height, best_width = select_best_resolution(list(image_size), pinpoints)
    return (1 + (best_height // crop) * (best_width // crop)) * (crop // patch) ** 2


def model_class_for(config: Any) -> type:
    """The model class that implements the config's patch merge."""
    if patch_merge_of(config) == "flat":
        return PulseFlatLlavaNextForConditionalGeneration
    return LlavaNextForConditionalGeneration


def processor_class_for(config: Any) -> type:
    """The processor class whose ``<image>`` expansion matches the config's patch merge."""
    if patch_merge_of(config) == "flat":
        return PulseFlatLlavaNextProcessor
    if getattr(config, "model_type", "llava_next") != "llava_next":
        from transformers import AutoProcessor

        return AutoProcessor
    return LlavaNextProcessor


def check_merge(model: Any, processor: Any = None, wanted: str | None = None) -> str:
    """Raise ``PatchMergeMismatch`` unless model class, processor class and ``wanted`` all match the config.

    Training (``pulse.train_ray.model``) and serving (the HF loader) both call this, so a
    checkpoint is never trained or served with a merge other than the one it records.
    """
    merge = patch_merge_of(model.config)
    if getattr(model.config, "model_type", None) != "llava_next":
        return merge  # another architecture: no anyres merge to get wrong
    problems = []
    if wanted is not None and wanted != merge:
        problems.append(f"patch_merge={wanted!r} but the checkpoint records {PATCH_MERGE_FIELD}={merge!r}")
    expected_model = model_class_for(model.config)
    if not isinstance(model, expected_model):
        problems.append(f"model class {type(model).__name__} does not implement {merge!r}")
    if merge == "spatial_unpad" and isinstance(model, PulseFlatLlavaNextForConditionalGeneration):
        problems.append("a flat-merge model class was loaded for a spatial_unpad checkpoint")
    if processor is not None:
        is_flat_proc = isinstance(processor, PulseFlatLlavaNextProcessor)
        if is_flat_proc != (merge == "flat"):
            problems.append(f"processor {type(processor).__name__} does not count image tokens for {merge!r}")
    if problems:
        raise PatchMergeMismatch("; ".join(problems))
    return merge


def load_llava_next(path: str, dtype: Any = None, **kwargs: Any) -> tuple[Any, Any]:
    """(model, processor) from a HF LLaVA-NeXT folder or hub id, with the classes its merge needs."""
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    config = AutoConfig.from_pretrained(str(path))
    if dtype is not None:
        kwargs["dtype"] = dtype
    if config.model_type != "llava_next":  # another image-text model: nothing merge-specific to choose
        model = AutoModelForImageTextToText.from_pretrained(str(path), **kwargs)
        return model.eval(), AutoProcessor.from_pretrained(str(path))
    processor = processor_class_for(config).from_pretrained(str(path))
    model = model_class_for(config).from_pretrained(str(path), **kwargs)
    check_merge(model, processor)
    return model.eval(), processor


def flat_variant(model: Any, processor: Any) -> tuple[Any, Any]:
    """The flat-merge twin of a from-config (model, processor): same weights, flat classes and config."""
    config = model.config
    setattr(config, PATCH_MERGE_FIELD, "flat")
    config.architectures = [FLAT_ARCHITECTURE]
    flat_model = PulseFlatLlavaNextForConditionalGeneration(config).to(model.dtype)
    flat_model.load_state_dict(model.state_dict())
    flat_model.generation_config = model.generation_config
    return flat_model, flat_processor_from(processor)


PROCESSOR_PARTS = (
    "image_processor",
    "tokenizer",
    "patch_size",
    "vision_feature_select_strategy",
    "num_additional_image_tokens",
    "chat_template",
)
"""What a LLaVA-NeXT processor is made of; the flat processor takes each from the stock one."""


def flat_processor_from(processor) -> PulseFlatLlavaNextProcessor:
    """The flat-merge processor with ``processor``'s image processor, tokenizer and template."""
    return PulseFlatLlavaNextProcessor(**{part: getattr(processor, part) for part in PROCESSOR_PARTS})
