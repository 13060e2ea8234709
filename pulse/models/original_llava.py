"""Original-LLaVA (haotian-liu/LLaVA ``llava_llama``) checkpoints -> HF LLaVA-NeXT: pure mapping rules.

Config fields and weight names of ``LlavaLlamaForCausalLM`` (PULSE-7B, liuhaotian llava-v1.6)
and how each becomes a ``LlavaNextConfig`` field or a ``LlavaNextForConditionalGeneration``
parameter. Target parameter names are taken from the installed transformers model (built on the
meta device by ``pulse.models.convert``), never assumed, so a renamed module is a clear error.
"""

from __future__ import annotations

import re
from typing import Any

from pulse.models.checkpoint_info import PATCH_MERGE_FIELD


class ConvertError(ValueError):
    """The source checkpoint cannot be converted; the message says what is wrong."""


# Configs of towers original LLaVA names by hub id, so no download is needed when the weights are inside.
CLIP_L14_336 = {
    "model_type": "clip_vision_model",
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 336,
    "patch_size": 14,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}
KNOWN_VISION_TOWERS: dict[str, dict[str, Any]] = {
    "openai/clip-vit-large-patch14-336": CLIP_L14_336,
    "openai/clip-vit-large-patch14": {**CLIP_L14_336, "image_size": 224},
}
VISION_CONFIG_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "image_size",
    "patch_size",
    "projection_dim",
    "hidden_act",
    "layer_norm_eps",
    "num_channels",
    "attention_dropout",
)
TEXT_CONFIG_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_theta",
    "rope_scaling",
    "attention_bias",
    "head_dim",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
)
SUPPORTED_PROJECTORS = ("mlp2x_gelu",)
TOWER_PREFIX = "model.vision_tower.vision_tower."
DROPPED = re.compile(r"(\.position_ids|rotary_emb\.inv_freq)$")


def vision_config_from(tower_config: dict[str, Any]) -> dict[str, Any]:
    """CLIP vision fields from a ``CLIPVisionConfig`` or ``CLIPConfig`` dict (its ``vision_config``)."""
    source = tower_config.get("vision_config") or tower_config
    return {"model_type": "clip_vision_model", **{k: source[k] for k in VISION_CONFIG_KEYS if k in source}}


def patch_merge_from(original: dict[str, Any]) -> str:
    merge = original.get("mm_patch_merge_type", "flat")  # original LLaVA's ModelArguments default
    if merge not in ("flat", "spatial_unpad"):
        raise ConvertError(
            f"mm_patch_merge_type={merge!r} is not supported (supported: 'flat', 'spatial_unpad'); "
            "LLaVA's spatial/unires variants have no HF LLaVA-NeXT layout"
        )
    return merge


def check_original(original: dict[str, Any]) -> None:
    """Reject what HF LLaVA-NeXT cannot represent, naming the field."""
    projector = original.get("mm_projector_type", "linear")
    if projector not in SUPPORTED_PROJECTORS:
        raise ConvertError(
            f"unknown projector type mm_projector_type={projector!r}: LLaVA-NeXT's projector is "
            f"{SUPPORTED_PROJECTORS} (Linear-GELU-Linear)"
        )
    if original.get("image_aspect_ratio") != "anyres":
        raise ConvertError(
            f"image_aspect_ratio={original.get('image_aspect_ratio')!r}: only 'anyres' (LLaVA-1.6) checkpoints "
            "convert to LLaVA-NeXT"
        )
    if not original.get("image_grid_pinpoints"):
        raise ConvertError("image_grid_pinpoints is missing from config.json (anyres needs it)")
    if original.get("mm_use_im_start_end") or original.get("mm_use_im_patch_token"):
        raise ConvertError("mm_use_im_start_end / mm_use_im_patch_token checkpoints are not supported")
    feature = original.get("mm_vision_select_feature", "patch")
    if feature not in ("patch", "cls_patch"):
        raise ConvertError(f"mm_vision_select_feature={feature!r} is not one of 'patch', 'cls_patch'")
    patch_merge_from(original)


def llava_next_config_dict(
    original: dict[str, Any], vision: dict[str, Any], vocab_size: int, image_token_index: int
) -> dict[str, Any]:
    """``LlavaNextConfig`` keyword arguments for an original-LLaVA ``config.json``."""
    check_original(original)
    text = {k: original[k] for k in TEXT_CONFIG_KEYS if original.get(k) is not None}
    text.update(model_type="llama", vocab_size=vocab_size, tie_word_embeddings=False)
    return {
        "text_config": text,
        "vision_config": vision,
        "image_token_index": image_token_index,
        "image_grid_pinpoints": [list(p) for p in original["image_grid_pinpoints"]],
        "vision_feature_layer": original.get("mm_vision_select_layer", -2),
        "vision_feature_select_strategy": (
            "default" if original.get("mm_vision_select_feature", "patch") == "patch" else "full"
        ),
        "projector_hidden_act": "gelu",
        "multimodal_projector_bias": True,
        "tie_word_embeddings": False,
        PATCH_MERGE_FIELD: patch_merge_from(original),
    }


def target_name(source: str, target_keys: set[str], from_tower_folder: bool = False) -> str | None:
    """The HF parameter name for one original-LLaVA (or CLIP-folder) weight; None to drop it."""
    if DROPPED.search(source):
        return None
    if from_tower_folder:
        if not source.startswith("vision_model."):
            return None  # a CLIPModel folder also holds the text tower and projections
        return _vision_name(source, target_keys)
    if source.startswith(TOWER_PREFIX):
        return _vision_name(source[len(TOWER_PREFIX) :], target_keys)
    if source.startswith("model.mm_projector."):
        index, _, rest = source[len("model.mm_projector.") :].partition(".")
        linear = {"0": "linear_1", "2": "linear_2"}.get(index)
        if linear is None:
            raise ConvertError(f"projector weight {source!r} is not part of an mlp2x_gelu projector")
        return f"model.multi_modal_projector.{linear}.{rest}"
    if source == "model.image_newline":
        return "model.image_newline"
    if source.startswith("model."):
        return "model.language_model." + source[len("model.") :]
    if source.startswith("lm_head."):
        return source
    raise ConvertError(f"unexpected weight {source!r}: not part of an original-LLaVA llava_llama checkpoint")


def _vision_name(inner: str, target_keys: set[str]) -> str:
    """``vision_model.X`` -> whichever of ``model.vision_tower.vision_model.X`` / ``...vision_tower.X`` exists."""
    with_prefix = "model.vision_tower." + inner
    if with_prefix in target_keys:
        return with_prefix
    return "model.vision_tower." + inner.removeprefix("vision_model.")
