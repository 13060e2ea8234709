"""GPU step benchmark: pulse's training step on a real-size LLaVA-NeXT built from config.

No Ray here (the lent GPU box has none): a plain torch loop runs exactly what each Ray Train
worker runs per micro-batch under DDP (``encode_sample`` -> ``pad_batch`` -> bf16 autocast
forward/backward -> clip -> AdamW), on rendered-size ECG images through the model's anyres
processor. Model: a ~1.1B Llama (TinyLlama shape, 32k vocab) + a CLIP ViT-L/14-336-sized tower,
PULSE's pinpoints, frozen tower, trained projector + LM.

MFU = achieved model FLOPs / peak bf16 FLOPs, with model FLOPs per step =
  6 * N_trainable_LM * T_lm + 12 * L * d * T_lm^2   (LM + projector fwd+bwd, causal attention
  counted in full) + 2 * N_vit * T_vit             (frozen tower: forward only)
summed over the samples of the step (T_lm real tokens, T_vit = tiles * 577 patches).

  python benchmarks/train_gpu.py                 # on a GPU
  python benchmarks/train_gpu.py --tiny --steps 2  # CPU smoke run of the same code
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from pulse.models.tiny_llava import LlavaBuildConfig, build_model, build_processor
from pulse.train_ray.collate import decode_image, encode_sample, pad_batch
from pulse.train_ray.config import TrainableParts
from pulse.train_ray.model import apply_trainable, freeze_unused
from pulse.train_ray.synthetic import QUESTION, draw_strip, synth_ecg

PULSE_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
REAL_SIZE = LlavaBuildConfig(
    image_size=336,
    patch_size=14,
    image_grid_pinpoints=PULSE_PINPOINTS,
    vision_hidden_size=1024,
    vision_intermediate_size=4096,
    vision_layers=24,
    vision_heads=16,
    text_hidden_size=2048,
    text_intermediate_size=5632,
    text_layers=22,
    text_heads=32,
    text_kv_heads=4,
    max_position_embeddings=4096,
    vision_feature_layer=-2,
)
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def batch_of(processor, n: int, width: int, height: int, answer_words: int):
    answer = " ".join(["sinus rhythm with normal axis"] * answer_words)
    samples = []
    for i in range(n):
        png = draw_strip(synth_ecg(60 + 10 * i, seed=i), width, height)
        image = decode_image(png)
        conv = [{"from": "human", "value": QUESTION}, {"from": "gpt", "value": answer}]
        samples.append(encode_sample(processor, image, conv, max_length=4096).__dict__)
    return pad_batch(samples, processor.tokenizer.pad_token_id)


def model_flops(model, batch, trainable_lm: int) -> float:
    text = model.config.text_config
    vision = model.config.vision_config
    n_vit = sum(p.numel() for p in model.model.vision_tower.parameters())
    from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

    tokens = batch["attention_mask"].sum(dim=1).double().cpu()
    pins = model.config.image_grid_pinpoints
    tiles = torch.tensor(
        [image_size_to_num_patches(s.tolist(), pins, vision.image_size) for s in batch["image_sizes"].cpu()],
        dtype=torch.float64,
    )
    vit_tokens = tiles * ((vision.image_size // vision.patch_size) ** 2 + 1)
    lm = 6 * trainable_lm * tokens + 12 * text.num_hidden_layers * text.hidden_size * tokens**2
    return float((lm + 2 * n_vit * vit_tokens).sum())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--grad-ckpt", action="store_true")
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--image", default="1100x850", help="rendered ECG size WxH")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = LlavaBuildConfig() if args.tiny else REAL_SIZE
    processor = build_processor(cfg)
    model = build_model(cfg, processor.tokenizer)
    if not args.tiny:
        model.resize_token_embeddings(args.vocab)  # Vicuna-sized vocabulary for a realistic LM head
    apply_trainable(model, TrainableParts(vision_tower=False, projector=True, language_model=True))
    freeze_unused(model)
    if args.grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    trainable_lm = sum(p.numel() for p in params)
    optimizer = torch.optim.AdamW(params, lr=2e-5, fused=device.type == "cuda")
    width, height = (int(v) for v in args.image.split("x"))
    batch = batch_of(processor, args.micro_batch, width, height, answer_words=20)
    batch = {k: v.to(device) for k, v in batch.items()}
    flops = model_flops(model, batch, trainable_lm)
    amp = torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(args.steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with amp:
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:  # step 0 is warm-up (allocator, kernels)
            times.append(time.perf_counter() - t0)
    step_s = sorted(times)[len(times) // 2]
    tokens = int(batch["attention_mask"].sum())
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    result = {
        "device": name,
        "lm_params_trainable": trainable_lm,
        "vision_params": sum(p.numel() for p in model.model.vision_tower.parameters()),
        "micro_batch": args.micro_batch,
        "grad_ckpt": args.grad_ckpt,
        "seq_len_padded": int(batch["input_ids"].shape[1]),
        "tiles_per_image": int(batch["pixel_values"].shape[1]),
        "step_s": round(step_s, 4),
        "tokens_per_s": round(tokens / step_s, 1),
        "samples_per_s": round(args.micro_batch / step_s, 2),
        "model_tflops_per_step": round(flops / 1e12, 2),
        "mfu": round(flops / step_s / peak, 4) if peak else None,
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if device.type == "cuda"
        else None,
        "loss": round(float(loss.detach()), 3),
    }
    result.update(generation_speed(model, batch, device, amp))
    print(json.dumps(result))


def generation_speed(model, batch, device, amp, new_tokens: int = 64) -> dict[str, float]:
    """Greedy decode tokens/s for one prompt and for the whole micro-batch (left-padded prompts)."""
    from pulse.train_ray.collate import IGNORE_INDEX

    model.eval()
    end = int((batch["labels"][0] != IGNORE_INDEX).nonzero()[0])
    out = {}
    for n in (1, batch["input_ids"].shape[0]):
        inputs = {
            "input_ids": batch["input_ids"][:n, :end],
            "attention_mask": batch["attention_mask"][:n, :end],
            "pixel_values": batch["pixel_values"][:n],
            "image_sizes": batch["image_sizes"][:n],
        }
        with torch.no_grad(), amp:
            model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
        out[f"generate_tokens_per_s_batch{n}"] = round(n * new_tokens / (time.perf_counter() - t0), 1)
    model.train()
    return out


if __name__ == "__main__":
    main()
