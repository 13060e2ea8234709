"""The vllm engine: config mapping and row contract on CPU; the real run only on a GPU.

vLLM cannot run here (no GPU; an engine actor would wait for one forever), so the CPU
tests build and validate ``vLLMEngineProcessorConfig`` and the processor's stages without
executing them, and check the row adapter on rows shaped like ray.data.llm's output.
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


def test_output_rows_follow_the_shared_contract():
    ok = {
        "q": "a",
        "_llm_request": "{}",
        "messages": [{"role": "user", "content": "a"}],
        "prompt": "<s>a",
        "generated_text": "yes",
        "num_input_tokens": 5,
        "num_generated_tokens": 2,
        "generated_tokens": [1, 2],
        "__inference_error__": "",
    }
    assert vllm_row_to_contract(ok, keep) == {
        "q": "a",
        "text": "yes",
        "err": None,
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }
    failed = {**ok, "generated_text": "", "__inference_error__": "ValueError: prompt too long"}
    out = vllm_row_to_contract(failed, keep)
    assert (out["text"], out["err"]) == (None, "engine_error: ValueError: prompt too long")
    flagged = {**ok, "_llm_request": json.dumps({"error": "preprocess_error: KeyError('report')"})}
    assert vllm_row_to_contract(flagged, keep)["err"] == "preprocess_error: KeyError('report')"


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
