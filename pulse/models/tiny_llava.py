"""Build LLaVA-NeXT models from configs: CLIP vision tower + 2-layer MLP projector + Llama.

Tests and the demo build a tiny random-initialised model with an offline BPE tokenizer
trained on ECG vocabulary; a GPU benchmark builds a real-size one from the same
function. Architecture values come from ``LlavaBuildConfig`` only; nothing is guessed
from a name. Saving and loading folders is ``pulse.models.loader``'s job; this module only
builds test/demo models (also ``build_tiny_random_lm``, the text-only ``tiny-random`` engine); the
offline tokenizer they share is ``pulse.models.tiny_tokenizer``.
"""

from __future__ import annotations

from pydantic import Field

from pulse.config import StrictModel
from pulse.models.chat_template import LLAVA_V1_TEMPLATE
from pulse.models.tiny_tokenizer import build_tokenizer


class LlavaBuildConfig(StrictModel):
    """Every dimension of a from-config LLaVA-NeXT (defaults: the tiny CPU model)."""

    vocab_size: int = 2048
    image_size: int = 56
    patch_size: int = 14
    image_grid_pinpoints: list[list[int]] = Field(default_factory=lambda: [[56, 112], [112, 56], [112, 112]])
    vision_hidden_size: int = 32
    vision_intermediate_size: int = 64
    vision_layers: int = 2
    vision_heads: int = 2
    text_hidden_size: int = 64
    text_intermediate_size: int = 128
    text_layers: int = 2
    text_heads: int = 4
    text_kv_heads: int = 2
    max_position_embeddings: int = 1024
    vision_feature_layer: int = -1
    seed: int = 0


def build_processor(cfg: LlavaBuildConfig, tokenizer=None):
    from transformers import LlavaNextProcessor
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

    tokenizer = tokenizer or build_tokenizer(cfg.vocab_size)
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": cfg.image_size},
        crop_size={"height": cfg.image_size, "width": cfg.image_size},
        image_grid_pinpoints=cfg.image_grid_pinpoints,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    return LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=cfg.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_V1_TEMPLATE,
    )


def build_model(cfg: LlavaBuildConfig, tokenizer):
    """A random-initialised ``LlavaNextForConditionalGeneration`` matching ``tokenizer``."""
    import torch
    from transformers import CLIPVisionConfig, LlavaNextConfig, LlavaNextForConditionalGeneration

    torch.manual_seed(cfg.seed)
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=cfg.vision_hidden_size,
            intermediate_size=cfg.vision_intermediate_size,
            num_hidden_layers=cfg.vision_layers,
            num_attention_heads=cfg.vision_heads,
            image_size=cfg.image_size,
            patch_size=cfg.patch_size,
            projection_dim=cfg.vision_hidden_size,
        ),
        text_config=llama_config(cfg, tokenizer),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=cfg.image_grid_pinpoints,
        vision_feature_select_strategy="default",
        vision_feature_layer=cfg.vision_feature_layer,
    )
    model = LlavaNextForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def build_tiny_llava(cfg: LlavaBuildConfig | None = None):
    """(model, processor) for a from-config LLaVA-NeXT."""
    cfg = cfg or LlavaBuildConfig()
    processor = build_processor(cfg)
    model = build_model(cfg, processor.tokenizer)
    return model, processor


def llama_config(cfg: LlavaBuildConfig, tokenizer):
    """The Llama text model of ``cfg`` (its ``text_*`` dimensions) for ``tokenizer``'s vocabulary."""
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=cfg.text_hidden_size,
        intermediate_size=cfg.text_intermediate_size,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.text_heads,
        num_key_value_heads=cfg.text_kv_heads,
        vocab_size=len(tokenizer),
        max_position_embeddings=cfg.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_tiny_random_lm(seed: int = 0):
    """(tokenizer, model): a seeded 2-layer random Llama with the offline BPE tokenizer (``tiny-random``)."""
    import torch
    from transformers import LlamaForCausalLM

    tokenizer = build_tokenizer(2048)
    torch.manual_seed(seed)
    config = llama_config(LlavaBuildConfig(max_position_embeddings=4096), tokenizer)
    return tokenizer, LlamaForCausalLM(config).eval()
