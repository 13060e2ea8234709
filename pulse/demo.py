"""Run the whole loop on the bundled real records, on an embedded local Ray.

ingest → render → build → train → serve → ECGBench → learning check: each step is the same ``run(cfg)``
as its own subcommand, loaded from the shipped config named here and wired to the
previous step's output. Example: ``pulse demo output_dir=/tmp/pulse-demo train.overrides='[max_steps=4]'``.
"""

from __future__ import annotations

import base64
import importlib
import json
import socket
import tempfile
import time
from typing import Any, Literal

from pydantic import Field

from pulse import io
from pulse.config import StrictModel, load_config, write_run_info
from pulse.runtime import RayOptions, init_ray
from pulse.summary import StageSummary


class StageRef(StrictModel):
    """A step: the shipped config it starts from and extra overrides (``key.sub=value``)."""

    config: str
    overrides: list[str] = Field(default_factory=list)


class DemoBench(StrictModel):
    """The benchmark step: ECGBench-style items from the held-out split of the bundled records."""

    split: Literal["train", "val", "test"] = "test"
    max_items: int | None = Field(60, ge=1)
    max_tokens: int = Field(24, ge=1)
    mode: Literal["paper", "strict"] = "paper"
    concurrency: int = Field(4, ge=1)


class DemoLearning(StrictModel):
    """The learning proof: heart-rate strips as a user's LLaVA JSON in the training mixture."""

    train_rows: int = Field(256, ge=3)
    heldout_rows: int = Field(60, ge=3)
    heldout_seed: int = 12345
    weight: float = Field(2.0, gt=0)
    """Mixture weight of the strips; the ``pulse build`` output has weight 1."""


class DemoConfig(StrictModel):
    output_dir: str | None = None
    """Where every step writes; ``null``: a new temp dir."""
    ray: RayOptions = Field(default_factory=RayOptions)
    ingest: StageRef = StageRef(config="ingest/bundled.yaml")
    render: StageRef = StageRef(
        config="render/demo.yaml",
        overrides=["params.clean_fraction=1.0", "params.layout=3x4+1", "params.rhythm_leads=[II]"],
    )
    build: StageRef = StageRef(config="build/templates.yaml")
    train: StageRef = StageRef(
        config="train/tiny-cpu.yaml",
        overrides=[
            "max_steps=200",
            "checkpoint_every=200",
            "lr=1e-3",
            "warmup_ratio=0.05",
            "global_batch_size=8",
        ],
    )
    learning: DemoLearning = Field(default_factory=DemoLearning)
    serve: StageRef = StageRef(config="serve/cpu.yaml")
    bench: DemoBench = Field(default_factory=DemoBench)
    model_name: str = "pulse-demo"


CONFIG_CLASS = DemoConfig


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _step(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.time()


def _run_stage(title: str, module_name: str, ref: StageRef, wiring: list[str]):
    """One step: its shipped config wired to the previous output, run, summary and time printed."""
    started = _step(title)
    module, stage_cfg = _stage(module_name, ref, wiring)
    summary = module.run(stage_cfg)
    summary.print()
    print(f"({time.time() - started:.0f}s)")
    return summary, stage_cfg


def _stage(module_name: str, ref: StageRef, wiring: list[str]):
    module = importlib.import_module(module_name)
    cfg = load_config(module.CONFIG_CLASS, ref.config, wiring + ref.overrides)
    return module, cfg


def _ask_with_openai(base_url: str, model: str, image: bytes, question: str, max_tokens: int) -> str:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="unused-local")
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    reply = client.chat.completions.create(
        model=model,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": url}},
                    {"type": "text", "text": question},
                ],
            }
        ],
        max_tokens=max_tokens,
        temperature=0.0,
    )
    return reply.choices[0].message.content or ""


def _benchmark(cfg: DemoConfig, held_out: tuple, out: str, base_url: str) -> list[dict[str, Any]]:
    from pulse.ecgbench.runner import EndpointConfig, read_answers, run_items
    from pulse.ecgbench.score import score_items

    items, subsets = held_out
    if not items:
        print("no benchmark items (no labelled records with images in the split)")
        return []
    sample = items[0]
    answer = _ask_with_openai(
        base_url, cfg.model_name, sample["image"], sample["question"], cfg.bench.max_tokens
    )
    print(f"openai client → {sample['id']}\n  Q: {sample['question'][:160]!r}\n  A: {answer!r}")
    endpoint = EndpointConfig(
        name=cfg.model_name,
        base_url=base_url,
        model=cfg.model_name,
        api_key_env=None,
        max_tokens=cfg.bench.max_tokens,
        max_concurrent_requests=cfg.bench.concurrency,
    )
    predictions_path = io.join(out, "ecgbench", "predictions.jsonl")
    run_items(items, endpoint, predictions_path, progress=False)
    predictions = list(read_answers(predictions_path).values())
    results = []
    for name, subset in sorted(subsets.items()):
        gold = [item for item in items if item["subset"] == name]
        if not gold:
            continue
        wanted = {item["id"] for item in gold}
        preds = [p for p in predictions if p.get("question_id") in wanted]
        result = score_items(subset, gold, preds, mode=cfg.bench.mode, allow_partial=True)
        results.append({"question_type": subset.kind, **result})
    io.write_text(io.join(out, "ecgbench", "results.json"), json.dumps(results, indent=2))
    return results


def _print_table(results: list[dict[str, Any]]) -> None:
    print("\n| subset | type | n | AUC | F1 | HL | accuracy |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        cells = [r.get(k) for k in ("auc", "f1", "hamming_loss", "accuracy")]
        text = ["" if v is None else f"{v:.1f}" for v in cells]
        print(f"| {r['subset']} | {r['question_type']} | {r['n']} | " + " | ".join(text) + " |")


def run(cfg: DemoConfig) -> StageSummary:
    from pulse.demo_learning import (
        held_out_items,
        learning_table,
        print_learning_table,
        write_heart_rate_llava,
    )

    started = time.time()
    out = cfg.output_dir or tempfile.mkdtemp(prefix="pulse-demo-")
    print(f"pulse demo: writing everything under {out}")
    init_ray(cfg.ray)
    write_run_info(cfg, out, "demo")

    _run_stage(
        "1/7 ingest: bundled real records → record Parquet",
        "pulse.data_ray.ingest",
        cfg.ingest,
        [f"output_dir={io.join(out, 'ingest')}"],
    )
    _run_stage(
        "2/7 render: records → clean paper-ECG images (3x4 + II rhythm strip)",
        "pulse.data_ray.render.job",
        cfg.render,
        [f"input_dir={io.join(out, 'ingest')}", f"output_dir={io.join(out, 'render')}"],
    )
    _run_stage(
        "3/7 build: template instructions (close-ended, 8-option MCQ, rhythm) → Parquet + LLaVA JSON",
        "pulse.data_ray.instruct.job",
        cfg.build,
        [
            f"records_dir={io.join(out, 'ingest')}",
            f"images_dir={io.join(out, 'render')}",
            f"output_dir={io.join(out, 'build')}",
        ],
    )
    strips_json, strips_images = write_heart_rate_llava(
        io.join(out, "user-llava"), cfg.learning.train_rows, seed=0
    )
    print(f"+ {cfg.learning.train_rows} heart-rate strips as a user's LLaVA JSON: {strips_json}")
    built = io.join(out, "build", "parquet", "split=train")
    sources = (
        f"[{{name: built, path: '{built}', weight: 1}}, {{name: heart-rate, path: '{strips_json}', "
        f"format: llava, images: '{strips_images}', weight: {cfg.learning.weight}}}]"
    )
    result, stage_cfg = _run_stage(
        "4/7 train: mixture (build Parquet + LLaVA JSON), tiny LLaVA-NeXT, Ray Train 2 workers, HF export",
        "pulse.train_ray.job",
        cfg.train,
        [
            "name=pulse-demo",
            f"storage_path={io.join(out, 'train')}",
            "data.train_path=null",
            f"data.sources={sources}",
            f"export_dir={io.join(out, 'export')}",
        ],
    )

    held_out = held_out_items(cfg.bench, out)
    t = _step("5/7 serve: the export behind an OpenAI-compatible Ray Serve endpoint")
    serve_module, serve_cfg = _stage(
        "pulse.serve.job",
        cfg.serve,
        [
            f"models=[{{name: {cfg.model_name}, checkpoint: '{result.export_dir}'}}]",
            f"port={_free_port()}",
        ],
    )
    base_url = serve_module.start(serve_cfg)
    print(f"serving {cfg.model_name} at {base_url} ({time.time() - t:.0f}s)")

    failed = None
    try:
        t = _step("6/7 ECGBench: ask the endpoint about held-out records, score with the ECGBench rules")
        _print_table(_benchmark(cfg, held_out, out, base_url))
        print(f"({time.time() - t:.0f}s)")
    except Exception as exc:  # the learning check below does not need the endpoint
        failed = f"{type(exc).__name__}: {exc}"
        print(f"ECGBench through the endpoint failed: {failed}")
    finally:
        serve_module.stop(serve_cfg)

    t = _step("7/7 did it learn? held-out items: trained vs untrained model vs chance")
    rows = learning_table(cfg.learning, cfg.bench, held_out, out, result.export_dir, stage_cfg.model.build)
    print_learning_table(rows)
    print(f"({time.time() - t:.0f}s)")
    return StageSummary(
        "demo",
        outputs={"outputs": out, "learning table": io.join(out, "learning.json")},
        seconds=time.time() - started,
        extra={"ecgbench": failed} if failed else {},
        exit_code=1 if failed else 0,
        counts_rows=False,
    )
