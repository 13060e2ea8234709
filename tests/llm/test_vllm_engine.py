"""The vllm engine: config mapping and row contract on CPU; the real run only on a GPU.

vLLM cannot run here (no GPU, and its wheels need CUDA), so the CPU tests build and validate
``vLLMEngineProcessorConfig``, check the row adapter, and run ``apply_llm`` through Ray's
*real* ``ray.data.llm`` pipeline (chat template, tokenize, the vLLM engine stage on a GPU
placement group, detokenize) with a test-only stand-in for the ``vllm`` package
(``fake_vllm/``: a transformers model behind vLLM's async engine API) on a Ray that declares
one logical GPU. Only the GPU-marked test runs the real vLLM.
"""

from __future__ import annotations

import json
import sys

import pytest
from ray import cloudpickle

from pulse.llm import VllmEngineConfig, parse_engine_config
from pulse.llm.vllm_engine import build_vllm_config, vllm_request_row, vllm_row_to_contract

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def ask(row):
    return {**row, "messages": [{"role": "user", "content": row["q"]}], "sampling_params": {"max_tokens": 4}}


def keep(row):
    return {"q": row["q"], "text": row["generated_text"], "err": row["llm_error"], "usage": row["usage"]}


def test_config_maps_onto_vllm_processor_config():
    cfg = VllmEngineConfig(
        model_source="meta-llama/Llama-3.1-70B-Instruct",
        tensor_parallel_size=4,
        concurrency=2,
        batch_size=64,
        max_model_len=8192,
        vision=True,
        accelerator_type="H100",
        engine_kwargs={"enable_prefix_caching": True},
    )
    proc = build_vllm_config(cfg)
    assert type(proc).__name__ == "vLLMEngineProcessorConfig"
    assert proc.model_source == "meta-llama/Llama-3.1-70B-Instruct"
    assert proc.engine_kwargs["tensor_parallel_size"] == 4
    assert proc.engine_kwargs["max_model_len"] == 8192
    assert proc.engine_kwargs["enable_prefix_caching"] is True
    assert (proc.batch_size, proc.concurrency, proc.accelerator_type) == (64, 2, "H100")
    assert proc.should_continue_on_error is True
    assert proc.prepare_multimodal_stage == {"enabled": True}


def test_engine_kwargs_must_not_duplicate_typed_fields():
    with pytest.raises(ValueError, match=r"set \['tensor_parallel_size'\] as llm.tensor_parallel_size"):
        VllmEngineConfig(model_source="m", engine_kwargs={"tensor_parallel_size": 2})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        parse_engine_config({"kind": "vllm", "model_source": "m", "tensor_paralel_size": 2})


def test_request_row_validates_and_flags_bad_rows():
    good = vllm_request_row({"q": "hi"}, ask)
    assert good["messages"] == [{"role": "user", "content": "hi"}]
    assert good["sampling_params"] == {"max_tokens": 4, "temperature": 0.0}
    bad = vllm_request_row({"q": "hi"}, lambda r: {**ask(r), "sampling_params": {"max_tokens": 0}})
    assert json.loads(bad["_llm_request"])["error"].startswith("bad_sampling_params: max_tokens")
    assert bad["sampling_params"] == {"max_tokens": 1, "temperature": 0.0}  # a harmless stand-in request


def as_ray_output(request_row: dict, text: str = "yes", error: str = "") -> dict:
    """What ray.data.llm's stages make of a request row: they add columns and consume sampling_params."""
    out = {k: v for k, v in request_row.items() if k != "sampling_params"}
    generated = {"generated_text": text, "num_input_tokens": 5, "num_generated_tokens": 2}
    if error:
        generated = {"generated_text": "", "num_input_tokens": 0, "num_generated_tokens": 0}
    return {
        **out,
        **generated,
        "prompt": "<s>a",
        "prompt_token_ids": [1, 2, 3],
        "generated_tokens": [7, 8],
        "logprobs": None,
        "prompt_logprobs": None,
        "metrics": {"arrival_time": 1.0},
        "time_taken_llm": 0.1,
        "batch_uuid": "b",
        "__inference_error__": error,
    }


def seen(row):
    return row


def test_output_rows_follow_the_shared_contract():
    ok = vllm_row_to_contract(as_ray_output(vllm_request_row({"q": "a"}, ask)), keep)
    assert ok == {"q": "a", "text": "yes", "err": None, "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    failed = vllm_row_to_contract(
        as_ray_output(vllm_request_row({"q": "a"}, ask), error="ValueError: long"), keep
    )
    assert (failed["text"], failed["err"], failed["usage"]) == (
        None,
        "engine_error: ValueError: long",
        {"prompt_tokens": 0, "completion_tokens": 0},
    )
    flagged = vllm_row_to_contract(as_ray_output(vllm_request_row({"q": "a"}, lambda r: r["report"])), keep)
    assert flagged["err"] == "preprocess_error: KeyError('report')"


@pytest.mark.parametrize(
    "preprocess",
    [ask, lambda r: {**ask(r), "sampling_params": {"max_tokens": 0}}, lambda r: r["missing"]],
    ids=["good", "bad_params", "preprocess_crash"],
)
def test_postprocess_sees_the_same_row_as_with_the_other_engines(preprocess):
    """Ray's extra columns (prompt_token_ids, logprobs, metrics, ...) never reach postprocess."""
    from pulse.llm.base import (
        REQUEST_COLUMN,
        RESPONSE_COLUMN,
        ChatResult,
        decode_request,
        encode_request_row,
        encode_result,
        finish_row,
    )

    row = {"q": "a", "record_id": "r1"}
    other = encode_request_row(row, preprocess)
    request = decode_request(other[REQUEST_COLUMN])
    result = request if isinstance(request, ChatResult) else ChatResult("yes", None, 5, 2)
    other[RESPONSE_COLUMN] = encode_result(result)
    via_other_engine = finish_row(other, seen)
    via_vllm = vllm_row_to_contract(as_ray_output(vllm_request_row(row, preprocess)), seen)
    assert via_vllm == via_other_engine
    assert set(via_vllm) >= {
        "q",
        "record_id",
        "messages",
        "sampling_params",
        "generated_text",
        "llm_error",
        "usage",
    }


@pytest.mark.slow
def test_apply_llm_runs_ray_data_llm_end_to_end_on_a_vllm_stand_in():
    """Fake where nothing real can run: vLLM itself (see the module doc); everything else is real."""
    import os
    import subprocess
    from pathlib import Path

    import pulse
    from pulse.llm.smollm2 import cached_dir

    here = Path(__file__).parent
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a fresh Ray, not the session's
    repo = str(Path(pulse.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join([str(here / "fake_vllm"), repo, env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(here / "run_vllm_on_fake.py"), str(cached_dir())],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("ROWS ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    rows = {row["case"]: row for row in json.loads(lines[0][5:])}
    assert set(rows) == {"short", "long", "bad_params", "stop"}
    contract = [
        "case",
        "generated_text",
        "labels",
        "llm_error",
        "messages",
        "sampling_params",
        "turns",
        "usage",
    ]
    assert all(row["columns"] == contract for row in rows.values()), rows  # none of Ray's columns leak
    assert all(row["types"] == ["list", "list", "dict"] for row in rows.values())  # as the other engines give
    short = rows["short"]
    assert short["error"] is None and short["text"].strip()
    assert short["usage"]["prompt_tokens"] > 5 and 1 <= short["usage"]["completion_tokens"] <= 8
    assert "," not in rows["stop"]["text"] and rows["stop"]["error"] is None
    assert rows["long"]["error"].startswith(
        "engine_error: ValueError: This model's maximum context length is 128"
    )
    assert rows["long"]["text"] is None and rows["long"]["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }
    assert rows["bad_params"]["error"].startswith("bad_sampling_params: max_tokens")


@pytest.mark.gpu
def test_vllm_engine_generates_on_gpu(ray_session):
    """GPU only: SmolLM2 (de-quantised from the PyPI package) through ray.data.llm + vLLM."""
    import ray

    from pulse.llm import apply_llm
    from pulse.llm.smollm2 import cached_dir

    cfg = VllmEngineConfig(model_source=str(cached_dir()), max_model_len=2048, gpu_memory_utilization=0.5)
    ds = ray.data.from_items([{"q": "Name one heart rhythm."}, {"q": "What does ECG stand for?"}])
    rows = apply_llm(ds, cfg, ask, keep).take_all()
    assert len(rows) == 2
    assert all(r["err"] is None and r["text"] for r in rows)
    assert all(r["usage"]["completion_tokens"] > 0 for r in rows)
