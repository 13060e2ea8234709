"""Load test of the pulse endpoint: dynamic batching vs batch size 1, and Serve vs the bare engine.

    python benchmarks/serve.py                      # tiny random LLaVA-NeXT, 64 requests, 8 clients
    python benchmarks/serve.py --checkpoint outputs/demo/train/hf --requests 200 --concurrency 16

Each load runs from a second process on 127.0.0.1 (N concurrent clients, M requests, then it
stops) and prints req/s, p50/p90/p99 latency and the error count. Ratios compare runs made
in this same invocation, so they hold on a loaded machine where absolute numbers do not.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import subprocess
import sys
import tempfile
import time


def ecg_data_url() -> str:
    import numpy as np
    from PIL import Image

    pixels = np.full((60, 90, 3), 255, dtype=np.uint8)
    pixels[::5, :, 1:] = 200
    pixels[(30 + 8 * np.sin(np.arange(90) / 3)).astype(int), np.arange(90)] = 0
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


async def client_load(url: str, model: str, requests: int, concurrency: int, max_tokens: int) -> dict:
    """N concurrent openai clients sending M requests in total; returns throughput and latency stats."""
    import openai

    client = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0, timeout=300)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": ecg_data_url()}},
                {"type": "text", "text": "What is the rhythm in this ECG image?"},
            ],
        }
    ]
    latencies: list[float] = []
    errors: list[str] = []
    tokens = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def worker():
        nonlocal tokens
        while not queue.empty():
            queue.get_nowait()
            start = time.perf_counter()
            try:
                resp = await client.chat.completions.create(
                    model=model, messages=messages, max_tokens=max_tokens
                )
                tokens += resp.usage.completion_tokens
                latencies.append(time.perf_counter() - start)
            except Exception as exc:
                errors.append(type(exc).__name__)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    return {
        "requests": requests,
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "req_per_s": round(len(latencies) / seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p90_ms": round(percentile(latencies, 90) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "errors": len(errors),
    }


def run_client_process(url: str, model: str, args) -> dict:
    cmd = [sys.executable, __file__, "--client", url, "--model", model]
    cmd += [
        "--requests",
        str(args.requests),
        "--concurrency",
        str(args.concurrency),
        "--max-tokens",
        str(args.max_tokens),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def direct_engine(checkpoint: str, args) -> dict:
    """The same requests straight into the engine in this process, in batches of ``--batch-size``."""
    from PIL import Image

    from pulse.serve.engine import Prepared, TransformersEngine

    engine = TransformersEngine(
        checkpoint, device=args.device, dtype=args.dtype, torch_threads=args.torch_threads
    )
    data = base64.b64decode(ecg_data_url().split(",", 1)[1])
    image = Image.open(io.BytesIO(data)).convert("RGB")
    question = [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": "What is the rhythm in this ECG image?"}],
        }
    ]
    prompt = engine.render_prompt(question)
    engine.generate([Prepared(prompt, [image], args.max_tokens)])  # warm-up
    start = time.perf_counter()
    tokens = 0
    for i in range(0, args.requests, args.batch_size):
        rows = [
            Prepared(prompt, [image], args.max_tokens) for _ in range(min(args.batch_size, args.requests - i))
        ]
        tokens += sum(r.completion_tokens for r in engine.generate_many(rows))
    seconds = time.perf_counter() - start
    return {
        "requests": args.requests,
        "seconds": round(seconds, 2),
        "req_per_s": round(args.requests / seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
    }


def build_checkpoint(size: str) -> str:
    """A random LLaVA-NeXT in HF format: the test-size one, a ~20M "small" one whose decode step
    costs real CPU time (so batching shows on CPU), or ~1B parameters for GPU numbers."""
    from pulse.models.loader import save_pretrained_dir
    from pulse.models.tiny_llava import LlavaBuildConfig, build_tiny_llava

    cfg = LlavaBuildConfig()
    if size == "small":
        cfg = LlavaBuildConfig(
            vision_hidden_size=128,
            vision_intermediate_size=512,
            vision_layers=4,
            vision_heads=4,
            text_hidden_size=512,
            text_intermediate_size=2048,
            text_layers=6,
            text_heads=8,
            text_kv_heads=8,
        )
    if size == "1b":
        cfg = LlavaBuildConfig(
            image_size=336,
            image_grid_pinpoints=[[336, 672], [672, 336], [672, 672]],
            vision_hidden_size=1024,
            vision_intermediate_size=4096,
            vision_layers=24,
            vision_heads=16,
            text_hidden_size=2048,
            text_intermediate_size=5632,
            text_layers=16,
            text_heads=16,
            text_kv_heads=16,
        )
    return str(save_pretrained_dir(*build_tiny_llava(cfg), tempfile.mkdtemp(prefix="pulse-bench-ckpt-")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="HF LLaVA-NeXT folder; default: a fresh tiny random one")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per model replica")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument(
        "--engine-only", action="store_true", help="no Ray: engine tokens/s at batch 1 vs --batch-size"
    )
    parser.add_argument(
        "--device", default="cpu", help="engine device for --engine-only / engine_direct (cuda on a GPU box)"
    )
    parser.add_argument("--dtype", default="float32")
    parser.add_argument(
        "--size",
        choices=["tiny", "small", "1b"],
        default="tiny",
        help="random LLaVA-NeXT to build when no --checkpoint",
    )
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="pulse-bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(
            json.dumps(
                asyncio.run(
                    client_load(args.client, args.model, args.requests, args.concurrency, args.max_tokens)
                )
            )
        )
        return 0

    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = build_checkpoint(args.size)
    if args.engine_only:
        single = direct_engine(checkpoint, argparse.Namespace(**{**vars(args), "batch_size": 1}))
        batched = direct_engine(checkpoint, args)
        print(f"engine {args.size} on {args.device} ({args.dtype}) batch=1: {json.dumps(single)}")
        print(
            f"engine {args.size} on {args.device} ({args.dtype}) batch={args.batch_size}: {json.dumps(batched)}"
        )
        print(
            f"ratio batch {args.batch_size} / batch 1 tokens/s: {batched['tokens_per_s'] / single['tokens_per_s']:.2f}x"
        )
        return 0

    from ray import serve

    from pulse.serve import job
    from pulse.serve.config import ServeConfig

    def deploy(batch_size: int) -> str:
        cfg = ServeConfig.model_validate(
            {
                "models": [
                    {
                        "name": args.model,
                        "checkpoint": checkpoint,
                        "max_batch_size": batch_size,
                        "torch_threads": args.torch_threads,
                    }
                ],
                "port": args.port,
                "num_cpus": args.num_cpus,
                "auth": {"api_key_env": None},
                "autoscaling": {"min_replicas": 1, "max_replicas": 1},
            }
        )
        url = job.start(cfg)
        run_client_process(
            url, args.model, argparse.Namespace(**{**vars(args), "requests": args.concurrency})
        )  # warm-up
        return url

    results = {}
    for name, batch_size in (("serve_batched", args.batch_size), ("serve_batch1", 1)):
        url = deploy(batch_size)
        results[name] = run_client_process(url, args.model, args)
        serve.delete("pulse")
        print(f"{name:14s} (max_batch_size={batch_size}): {json.dumps(results[name])}", flush=True)
    serve.shutdown()
    results["engine_direct"] = direct_engine(checkpoint, args)
    print(
        f"{'engine_direct':14s} (batch={args.batch_size}, no Serve/HTTP): {json.dumps(results['engine_direct'])}"
    )
    batched, single, direct = (
        results[k]["req_per_s"] for k in ("serve_batched", "serve_batch1", "engine_direct")
    )
    print(f"ratio dynamic batching / batch size 1: {batched / single:.2f}x")
    print(f"ratio Serve path / engine direct:      {batched / direct:.2f}x")
    errors = results["serve_batched"]["errors"] + results["serve_batch1"]["errors"]
    print(f"errors under load: {errors}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
