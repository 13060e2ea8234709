"""Model and processor for training: built from ``LlavaBuildConfig`` or loaded from a HF checkpoint.

Architecture settings always come from the model's own config. ``model.expect`` lists values
the run depends on; each is compared with the checkpoint and a mismatch is an error (the
PULSE ``flat`` vs ``spatial_unpad`` accident came from a default silently overriding a
checkpoint value). Which parts train is set by ``TrainableParts``.
"""

from __future__ import annotations

from typing import Any

from pulse.train_ray.config import ModelConfig, TrainableParts


class ArchitectureMismatch(ValueError):
    """A configured architecture value disagrees with the checkpoint's config."""


def load_processor(cfg: ModelConfig):
    """The model's own processor (tokenizer + anyres image processor + chat template).

    Its class follows the patch merge (``flat`` counts ``(1 + N) * tokens_per_crop`` image tokens).
    """
    if cfg.build is not None:
        from pulse.models.tiny_llava import build_processor

        processor = build_processor(cfg.build)
        if cfg.patch_merge == "flat":
            from pulse.models.flat_merge import flat_processor_from

            processor = flat_processor_from(processor)
        return processor
    from transformers import AutoConfig

    from pulse.models.flat_merge import processor_class_for

    return processor_class_for(AutoConfig.from_pretrained(cfg.checkpoint)).from_pretrained(cfg.checkpoint)


def _config_value(config: Any, key: str) -> Any:
    node = config
    for part in key.split("."):
        if not hasattr(node, part):
            raise ArchitectureMismatch(f"model.expect.{key}: the checkpoint config has no field {part!r}")
        node = getattr(node, part)
    return node.to_dict() if hasattr(node, "to_dict") else node


def check_architecture(config: Any, expect: dict[str, Any], patch_merge: str | None = None) -> None:
    """Raise ``ArchitectureMismatch`` naming every ``model.expect`` key (and the patch merge) the checkpoint contradicts.

    Serving runs the same merge check (``pulse.models.flat_merge.check_merge`` in the loader).
    """
    from pulse.models.checkpoint_info import PATCH_MERGE_FIELD, patch_merge_of

    problems = []
    for key, wanted in expect.items():
        actual = _config_value(config, key)
        if _normalise(actual) != _normalise(wanted):
            problems.append(f"model.expect.{key}={wanted!r} but the checkpoint has {actual!r}")
    original_merge = getattr(config, "mm_patch_merge_type", None)
    if original_merge is not None and getattr(config, PATCH_MERGE_FIELD, None) is None:
        problems.append(
            f"checkpoint mm_patch_merge_type={original_merge!r}: an original-LLaVA config; "
            "convert it first with `pulse convert` (it records the merge as pulse_patch_merge)"
        )
    else:
        recorded = patch_merge_of(config)
        if patch_merge is not None and patch_merge != recorded:
            problems.append(
                f"model.patch_merge={patch_merge!r} but the checkpoint records {PATCH_MERGE_FIELD}={recorded!r}"
            )
    if problems:
        raise ArchitectureMismatch("; ".join(problems))


def _normalise(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_normalise(v) for v in value]
    return value


def check_processor_matches(model_config: Any, processor: Any) -> None:
    """The processor must expand ``<image>`` exactly as the model packs features (same pinpoints)."""
    ip = processor.image_processor
    proc_pins = _normalise(getattr(ip, "image_grid_pinpoints", None))
    model_pins = _normalise(model_config.image_grid_pinpoints)
    if proc_pins != model_pins:
        raise ArchitectureMismatch(
            f"processor image_grid_pinpoints {proc_pins} != model image_grid_pinpoints {model_pins}; "
            "image tokens and image features would not match"
        )


def load_model(cfg: ModelConfig, processor, dtype=None):
    """A LLaVA-NeXT model (random from ``cfg.build`` or from ``cfg.checkpoint``) of the class its merge needs."""
    from pulse.models.flat_merge import PatchMergeMismatch, check_merge, model_class_for

    if cfg.build is not None:
        from pulse.models.tiny_llava import build_model

        model = build_model(cfg.build, processor.tokenizer)
        if cfg.patch_merge == "flat":
            from pulse.models.flat_merge import flat_variant

            model, _ = flat_variant(model, processor)
        if dtype is not None:
            model = model.to(dtype)
    else:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(cfg.checkpoint)
        check_architecture(config, cfg.expect, cfg.patch_merge)
        kwargs: dict[str, Any] = {"dtype": dtype} if dtype is not None else {}
        if cfg.attn_implementation:
            kwargs["attn_implementation"] = cfg.attn_implementation
        model = model_class_for(config).from_pretrained(cfg.checkpoint, **kwargs)
    check_architecture(model.config, cfg.expect, cfg.patch_merge)
    check_processor_matches(model.config, processor)
    try:
        check_merge(model, processor)
    except PatchMergeMismatch as exc:
        raise ArchitectureMismatch(str(exc)) from None
    return model


def model_parts(model) -> dict[str, Any]:
    """The three trainable groups of a LlavaNext model (HF 5.x layout: ``model.model.*``)."""
    inner = model.model
    return {
        "vision_tower": [inner.vision_tower],
        "projector": [inner.multi_modal_projector, inner.image_newline],
        "language_model": [inner.language_model, model.lm_head],
    }


def apply_trainable(model, trainable: TrainableParts) -> dict[str, int]:
    """Set ``requires_grad`` per part; returns trainable parameter counts per part."""
    import torch

    counts = {}
    for part, modules in model_parts(model).items():
        flag = bool(getattr(trainable, part))
        n = 0
        for module in modules:
            params = [module] if isinstance(module, torch.nn.Parameter) else list(module.parameters())
            for param in params:  # image_newline is a bare Parameter, the rest are modules
                param.requires_grad_(flag)
                n += param.numel()
        counts[part] = n if flag else 0
    return counts


def unused_parameter_names(model) -> list[str]:
    """Trainable parameters that never receive a gradient (``vision_feature_layer`` below the top).

    CLIP layers above ``vision_feature_layer`` and ``post_layernorm`` never reach the loss, which
    breaks DDP's reducer; they are frozen instead of paying for ``find_unused_parameters``.
    """
    layer = model.config.vision_feature_layer
    if not isinstance(layer, int):
        layer = min(layer)
    modules = dict(model.named_modules())
    encoders = [n for n in modules if n.endswith("encoder.layers") and ".vision_tower." in f".{n}"]
    if not encoders:
        return []
    prefix = encoders[0].removesuffix("encoder.layers")
    n_layers = len(modules[encoders[0]])
    first_unused = n_layers + 1 + layer if layer < 0 else layer
    unused = [f"{prefix}encoder.layers.{i}." for i in range(first_unused, n_layers)]
    unused.append(f"{prefix}post_layernorm.")
    names = [n for n, _ in model.named_parameters() if any(n.startswith(u) for u in unused)]
    from pulse.models.checkpoint_info import patch_merge_of

    if patch_merge_of(model.config) == "flat":  # flat merge never reads image_newline
        names += [n for n, _ in model.named_parameters() if n.endswith("image_newline")]
    return names


def freeze_unused(model) -> int:
    """Freeze parameters that cannot get gradients; returns how many tensors were frozen."""
    names = set(unused_parameter_names(model))
    frozen = 0
    for name, param in model.named_parameters():
        if name in names and param.requires_grad:
            param.requires_grad_(False)
            frozen += 1
    return frozen
