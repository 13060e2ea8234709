"""Measure the GPU cost of one PULSE-7B training sample on this GPU (GPU-only; no download).

    python cluster/measure_train_gpu.py                       # H100/A100: 7B LM + CLIP ViT-L/336 tower
    python cluster/measure_train_gpu.py --seq 2500 --micro-batch 2 --steps 6

Builds the PULSE-7B shapes from configs (Vicuna-7B = Llama-2-7B dims, CLIP ViT-L/14-336, random
weights, bf16, SDPA attention, gradient checkpointing as in configs/train/pulse-7b.yaml) and times
forward + backward of the language model on ``--seq`` tokens per sample plus the frozen tower's
forward on 5 anyres crops. The optimizer step is left out: with ZeRO-2 over 8 GPUs it is a small,
fixed cost per step. Prints seconds per sample, tokens/s, MFU, and the GPU-hours of 3 epochs over
1.2 M samples, which docs/cluster.md quotes.
"""

from __future__ import annotations

import argparse
import time

H100_BF16_DENSE_FLOPS = 989e12


def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq", type=int, default=2500, help="tokens per sample (image + text)")
    parser.add_argument("--micro-batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--samples", type=float, default=1.2e6)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    assert torch.cuda.is_available(), "GPU-only measurement"
    device = torch.device("cuda")
    torch.manual_seed(0)
    lm_config = LlamaConfig(
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
    )  # fmt: skip
    lm_config._attn_implementation = "sdpa"
    with torch.device(device):
        lm = LlamaForCausalLM(lm_config).to(torch.bfloat16)
        tower = CLIPVisionModel(
            CLIPVisionConfig(
                hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                image_size=336, patch_size=14, projection_dim=768,
            )
        ).to(torch.bfloat16)  # fmt: skip
    tower.requires_grad_(False)
    lm.gradient_checkpointing_enable()
    lm.train()
    params = sum(p.numel() for p in lm.parameters())
    tokens = torch.randint(0, 32000, (args.micro_batch, args.seq), device=device)
    crops = torch.randn(args.micro_batch * 5, 3, 336, 336, device=device, dtype=torch.bfloat16)

    def step() -> None:
        with torch.no_grad():
            tower(pixel_values=crops, output_hidden_states=True)
        loss = lm(input_ids=tokens, labels=tokens).loss
        loss.backward()
        lm.zero_grad(set_to_none=True)

    step()  # warm-up: kernels, allocator
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    seconds_per_sample = (time.perf_counter() - started) / (args.steps * args.micro_batch)
    # 6 N T for LM forward+backward, plus 2 N T of the recomputed forward (gradient checkpointing).
    useful_flops = 6 * params * args.seq
    mfu = useful_flops / seconds_per_sample / H100_BF16_DENSE_FLOPS
    gpu_hours = seconds_per_sample * args.samples * args.epochs / 3600
    print(f"gpu: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    print(f"lm params: {params / 1e9:.2f} B  seq {args.seq}  micro-batch {args.micro_batch}")
    print(f"seconds/sample: {seconds_per_sample:.4f}  tokens/s: {args.seq / seconds_per_sample:,.0f}")
    print(f"MFU (6NT vs H100 bf16 dense peak): {mfu:.1%}")
    print(f"{args.epochs} epochs x {args.samples:,.0f} samples: {gpu_hours:,.0f} GPU-hours (fwd+bwd only)")
    print(f"peak memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
