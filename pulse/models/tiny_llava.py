"""Build LLaVA-NeXT models from configs: CLIP vision tower + 2-layer MLP projector + Llama.

Tests and the demo build a tiny random-initialised model with an offline BPE tokenizer
trained on ECG vocabulary; a GPU benchmark builds a real-size one from the same
function. Architecture values come from ``LlavaBuildConfig`` only; nothing is guessed
from a name. Saving and loading folders is ``pulse.models.loader``'s job; this module only
builds test/demo models (also ``build_tiny_random_lm``, the text-only ``tiny-random`` engine).
"""

from __future__ import annotations

import itertools

from pydantic import Field

from pulse.config import StrictModel
from pulse.models.chat_template import LLAVA_V1_TEMPLATE

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]


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


def tokenizer_corpus() -> list[str]:
    """Deterministic text the offline tokenizer is trained on: ECG words, labels, templates."""
    from pulse.models.chat_template import LLAVA_V1_SYSTEM

    words = [
        "ECG",
        "image",
        "electrocardiogram",
        "lead",
        "leads",
        "I",
        "II",
        "III",
        "aVR",
        "aVL",
        "aVF",
        "V1",
        "V2",
        "V3",
        "V4",
        "V5",
        "V6",
        "rhythm",
        "sinus",
        "normal",
        "abnormal",
        "bradycardia",
        "tachycardia",
        "atrial",
        "fibrillation",
        "flutter",
        "block",
        "bundle",
        "branch",
        "left",
        "right",
        "infarction",
        "myocardial",
        "ischemia",
        "hypertrophy",
        "conduction",
        "disturbance",
        "ST",
        "T",
        "wave",
        "segment",
        "elevation",
        "depression",
        "QRS",
        "complex",
        "PR",
        "interval",
        "QT",
        "axis",
        "deviation",
        "premature",
        "ventricular",
        "contraction",
        "beat",
        "heart",
        "rate",
        "bpm",
        "ms",
        "mV",
        "yes",
        "no",
        "none",
        "not",
        "sure",
        "answer",
        "question",
        "option",
        "options",
        "which",
        "what",
        "is",
        "the",
        "of",
        "does",
        "show",
        "this",
        "in",
        "a",
        "an",
        "and",
        "or",
        "with",
        "without",
        "present",
        "absent",
        "following",
        "classes",
        "class",
        "diagnostic",
        "statement",
        "statements",
        "select",
        "choose",
        "directly",
        "output",
        "name",
        "separate",
        "semicolon",
        "report",
        "clinical",
        "write",
        "based",
        "on",
        "please",
        "findings",
        "impression",
        "regular",
        "irregular",
        "first",
        "degree",
        "AV",
        "NORM",
        "MI",
        "STTC",
        "CD",
        "HYP",
        "AF",
        "AFL",
        "SB",
        "STach",
        "SA",
        "NSR",
        "PAC",
        "PVC",
        "LBBB",
        "RBBB",
        "IAVB",
        "I-AVB",
        "STD",
        "STE",
        "LAD",
        "RAD",
        "TAb",
        "TInv",
        "LQT",
        "QAb",
        "1dAVb",
        "ST",
        "A",
        "B",
        "C",
        "D",
        "E",
        "F",
        "G",
        "H",
        "The",
        "correct",
        "is",
        "Answer:",
        "USER:",
        "ASSISTANT:",
        "<image>",
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "10",
        "slow",
        "fast",
        "normal_range",
        "brady",
        "tachy",
        "low",
        "voltage",
        "poor",
        "R",
        "progression",
        "incomplete",
        "complete",
    ]
    lines = [LLAVA_V1_SYSTEM]
    lines += [" ".join(words[i : i + 12]) for i in range(0, len(words), 6)]
    lines += [f"{a} {b}" for a, b in itertools.product(words[:60], ["yes", "no", "(A)", "(B)", "Answer:"])]
    return lines * 3


def build_tokenizer(vocab_size: int = 2048):
    """An offline byte-level BPE tokenizer with ``<image>`` as a special token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tokenizer_corpus(), trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    hf_tok.chat_template = LLAVA_V1_TEMPLATE
    return hf_tok


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
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig, LlavaNextForConditionalGeneration

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
        text_config=LlamaConfig(
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
        ),
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


def build_tiny_random_lm(seed: int = 0):
    """(tokenizer, model): a seeded 2-layer random Llama with the offline BPE tokenizer (``tiny-random``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(2048)
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return tokenizer, LlamaForCausalLM(config).eval()
