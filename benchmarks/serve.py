"""Load test of the pulse endpoint: dynamic batching vs batch size 1, and Serve vs the bare engine.

    python benchmarks/serve.py                      # tiny random LLaVA-NeXT, 64 requests, 8 clients
    python benchmarks/serve.py --checkpoint outputs/demo/train/hf --requests 200 --concurrency 16
    python benchmarks/serve.py --overload --requests 120   # 2x saturation: 429s, no 5xx, /health up
    python benchmarks/serve.py --overload --flood 4 --requests 96  # 4x: replica memory stays where 2x left it

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


def maximal_messages(images: int, side: int) -> list[dict]:
    """A user turn with ``images`` noisy ``side``x``side`` PNGs: as large as the limits allow."""
    import numpy as np
    from PIL import Image

    parts = []
    for seed in range(images):
        pixels = np.random.RandomState(seed).randint(0, 256, (side, side, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, "PNG")
        url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return [{"role": "user", "content": [*parts, {"type": "text", "text": "Describe every image."}]}]


async def overload_load(url: str, model: str, args) -> dict:
    """``--concurrency`` raw-HTTP clients flooding the endpoint while one polls ``/health``."""
    import httpx

    body = {
        "model": model,
        "messages": maximal_messages(args.images, args.image_side),
        "max_tokens": args.max_tokens,
    }
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    retry_after: set[str] = set()
    health: list[tuple[int, float]] = []
    remaining = args.requests
    done = asyncio.Event()

    async with httpx.AsyncClient(
        timeout=600, limits=httpx.Limits(max_connections=args.concurrency + 2)
    ) as http:

        async def worker():
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                try:
                    resp = await http.post(url + "/chat/completions", json=body)
                    status = resp.status_code
                except httpx.HTTPError:
                    status = 599  # connection-level failure: counted as a 5xx
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(time.perf_counter() - start)
                elif status == 429:
                    retry_after.add(resp.headers.get("retry-after", "missing"))

        async def poll_health():
            root = url.removesuffix("/v1")
            while not done.is_set():
                start = time.perf_counter()
                try:
                    status = (await http.get(root + "/health", timeout=30)).status_code
                except httpx.HTTPError:
                    status = 599
                health.append((status, time.perf_counter() - start))
                await asyncio.sleep(0.2)

        poller = asyncio.create_task(poll_health())
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        seconds = time.perf_counter() - start
        done.set()
        await poller
    health_ok = sum(1 for s, _ in health if s == 200)
    return {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "seconds": round(seconds, 1),
        "accepted": statuses.get(200, 0),
        "429": statuses.get(429, 0),
        "5xx": sum(n for s, n in statuses.items() if s >= 500),
        "other": {s: n for s, n in statuses.items() if s not in {200, 429} and s < 500},
        "p50_s": round(percentile(latencies, 50), 2),
        "p99_s": round(percentile(latencies, 99), 2),
        "retry_after": sorted(retry_after),
        "health_200": f"{health_ok}/{len(health)}",
        "health_max_s": round(max((t for _, t in health), default=float("nan")), 2),
    }


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) / 1024


def serve_config(checkpoint: str, args, **overrides):
    """One replica of ``checkpoint`` on the transformers engine, no API key, for the load runs."""
    from pulse.serve.config import ServeConfig

    tokens = max(args.max_tokens, 16)
    return ServeConfig.model_validate(
        {
            "models": [
                {
                    "name": args.model,
                    "checkpoint": checkpoint,
                    "max_batch_size": overrides.pop("max_batch_size", args.batch_size),
                    "engine": {"kind": "transformers", "torch_threads": args.torch_threads},
                }
            ],
            "port": args.port,
            "num_cpus": args.num_cpus,
            "auth": {"api_key_env": None},
            "autoscaling": {"min_replicas": 1, "max_replicas": 1},
            "limits": {"max_tokens_cap": tokens, "default_max_tokens": tokens},
            **overrides,
        }
    )


def overload_config(checkpoint: str, args):
    """Small queues (``--max-ongoing`` + ``--max-queued``) and room for ``--images`` per request."""
    tokens = max(args.max_tokens, 16)
    return serve_config(
        checkpoint,
        args,
        max_ongoing_requests=args.max_ongoing,
        max_queued_requests=args.max_queued,
        limits={"max_images": args.images, "max_tokens_cap": tokens, "default_max_tokens": tokens},
    )


def replica_pid(title: str) -> int:
    """The pid of the Ray worker whose process title names ``title`` (the embedded Ray runs no
    dashboard, so Ray's state API is not there to ask)."""
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline"]):
        if any(title in part for part in proc.info["cmdline"] or ()):
            return proc.info["pid"]
    raise RuntimeError(f"no process titled {title}")


def overload(checkpoint: str, args) -> int:
    """Deploy one replica with small queues, flood it at ``--flood`` x saturation, print the table."""
    from ray import serve

    from pulse.serve import job
    from pulse.serve.app import admission_limit

    cfg = overload_config(checkpoint, args)
    saturation = admission_limit(cfg)
    url = job.start(cfg)
    model_pid = serve.get_deployment_handle(job.deployment_name(args.model), app_name=cfg.app_name)
    model_pid = model_pid.stats.remote().result(timeout_s=300)["pid"]
    ingress_pid = replica_pid(f"ServeReplica:{cfg.app_name}:ingress")
    rss_before = peak_rss_mb(model_pid), peak_rss_mb(ingress_pid)
    load = argparse.Namespace(**{**vars(args), "concurrency": args.flood * saturation})
    result = run_client_process(url, args.model, load, mode="--overload-client")
    result["peak_rss_mb"] = {
        "model_replica": f"{rss_before[0]:.0f} -> {peak_rss_mb(model_pid):.0f}",
        "ingress": f"{rss_before[1]:.0f} -> {peak_rss_mb(ingress_pid):.0f}",
    }
    serve.delete(cfg.app_name)
    serve.shutdown()
    print(
        f"saturation={saturation} (max_ongoing_requests={args.max_ongoing} + max_queued_requests={args.max_queued})"
    )
    print(f"overload at {args.flood}x saturation: {json.dumps(result)}")
    print(f"ratio accepted / sent: {result['accepted'] / args.requests:.2f}")
    return 1 if result["5xx"] or result["accepted"] == 0 else 0


def run_client_process(url: str, model: str, args, mode: str = "--client") -> dict:
    cmd = [sys.executable, __file__, mode, url, "--model", model]
    cmd += [
        "--requests",
        str(args.requests),
        "--concurrency",
        str(args.concurrency),
        "--max-tokens",
        str(args.max_tokens),
        "--images",
        str(args.images),
        "--image-side",
        str(args.image_side),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(out.stdout.strip().splitlines()[-1])


def direct_engine(checkpoint: str, args) -> dict:
    """The same requests straight into the engine in this process, in batches of ``--batch-size``."""
    from PIL import Image

    from pulse.llm import ChatRequest, SamplingParams, TransformersEngineConfig
    from pulse.llm.transformers_engine import TransformersEngine

    engine = TransformersEngine(
        TransformersEngineConfig(
            model_source=checkpoint,
            device=args.device,
            dtype=args.dtype,
            torch_threads=args.torch_threads,
            batch_size=args.batch_size,
        )
    )
    data = base64.b64decode(ecg_data_url().split(",", 1)[1])
    image = Image.open(io.BytesIO(data)).convert("RGB")
    question = [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": "What is the rhythm in this ECG image?"}],
        }
    ]
    params = SamplingParams(max_tokens=args.max_tokens)
    engine.generate([ChatRequest(question, params, images=(image,))])  # warm-up
    start = time.perf_counter()
    tokens = 0
    for i in range(0, args.requests, args.batch_size):
        rows = [
            ChatRequest(question, params, images=(image,))
            for _ in range(min(args.batch_size, args.requests - i))
        ]
        tokens += sum(r.completion_tokens for r in engine.generate(rows))
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
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
    parser.add_argument("--overload", action="store_true", help="flood at 2x saturation: 429s, no 5xx")
    parser.add_argument("--flood", type=int, default=2, help="--overload: clients per admission slot")
    parser.add_argument("--max-ongoing", type=int, default=2, help="--overload: max_ongoing_requests")
    parser.add_argument("--max-queued", type=int, default=4, help="--overload: max_queued_requests")
    parser.add_argument("--images", type=int, default=4, help="--overload: images per request")
    parser.add_argument("--image-side", type=int, default=1024, help="--overload: image width = height")
    parser.add_argument("--overload-client", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="pulse-bench", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    if args.client:
        print(
            json.dumps(
                asyncio.run(
                    client_load(args.client, args.model, args.requests, args.concurrency, args.max_tokens)
                )
            )
        )
        return 0
    if args.overload_client:
        print(json.dumps(asyncio.run(overload_load(args.overload_client, args.model, args))))
        return 0

    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = build_checkpoint(args.size)
    if args.overload:
        return overload(checkpoint, args)
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

    def deploy(batch_size: int) -> str:
        url = job.start(serve_config(checkpoint, args, max_batch_size=batch_size))
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
