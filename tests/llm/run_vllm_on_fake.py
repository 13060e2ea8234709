"""Run pulse's ``apply_vllm`` through Ray's real ``ray.data.llm`` pipeline on the stand-in vLLM.

Started by ``test_vllm_engine.py`` in its own process, with ``fake_vllm/`` on ``PYTHONPATH`` and a
fresh local Ray that declares one logical GPU (the engine stage asks for a GPU bundle; nothing
uses CUDA). Prints the output rows as one JSON line.
"""

from __future__ import annotations

import json
import sys

PROMPTS = {
    "short": "Name one heart rhythm.",
    "long": "Describe the QRS complex. " * 40,
    "bad_params": "This row asks for zero tokens.",
    "stop": "Count from one to ten in words, separated by commas.",
}


def preprocess(row):
    params = {"max_tokens": 8, "temperature": 0.0}
    if row["case"] == "bad_params":
        params["max_tokens"] = 0
    if row["case"] == "stop":
        params["stop"] = [","]
    return {**row, "messages": [{"role": "user", "content": PROMPTS[row["case"]]}], "sampling_params": params}


def postprocess(row):
    return {
        "case": row["case"],
        "text": row["generated_text"],
        "error": row["llm_error"],
        "usage": row["usage"],
        "columns": sorted(row),
        "types": [type(row["labels"]).__name__, type(row["turns"]).__name__, type(row["turns"][0]).__name__],
    }


def main(model_dir: str) -> None:
    import ray

    from pulse.llm import VllmEngineConfig, apply_llm

    ray.init(num_cpus=8, num_gpus=1, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    cfg = VllmEngineConfig(model_source=model_dir, max_model_len=128, batch_size=2, max_concurrent_batches=2)
    turns = [{"from": "human", "value": "<image>\nRhythm?"}, {"from": "gpt", "value": "AF"}]
    ds = ray.data.from_items([{"case": case, "labels": ["AF", "LAD"], "turns": turns} for case in PROMPTS])
    rows = apply_llm(ds, cfg, preprocess, postprocess).take_all()
    print("ROWS " + json.dumps(sorted(rows, key=lambda r: r["case"])))


if __name__ == "__main__":
    main(sys.argv[1])
