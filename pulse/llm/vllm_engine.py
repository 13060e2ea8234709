"""vLLM through ``ray.data.llm`` (GPU only; ``pip install -e '.[vllm]'``).

Thin on purpose: ``build_vllm_config`` maps pulse's typed config onto
``vLLMEngineProcessorConfig`` and ``apply_vllm`` runs ``build_processor`` with the
caller's preprocess. Ray's own postprocess hook is skipped (with
``should_continue_on_error`` its failed rows bypass it), and ``vllm_row_to_contract``
turns every row, failed or not, into the contract the other engines produce. Never run
this on a CPU-only cluster: the engine actor waits for a GPU forever without an error.
"""

from __future__ import annotations

from typing import Any

from pulse.llm.base import (
    GENERATED_TEXT,
    MESSAGES,
    SAMPLING_PARAMS,
    RowFn,
    call_postprocess,
    encode_request_row,
    make_request,
    short,
)
from pulse.llm.config import VllmEngineConfig

# Columns ray.data.llm's stages add; dropped before the row reaches postprocess.
VLLM_INTERNAL_COLUMNS = (
    "prompt",
    "tokenized_prompt",
    "generated_tokens",
    "num_generated_tokens",
    "num_input_tokens",
    "request_id",
    "time_taken_llm",
    "params",
    "metrics",
    "embeddings",
    "multimodal_data",
    "mm_processor_kwargs",
    "multimodal_uuids",
    "batch_uuid",
    "__inference_error__",
)


def build_vllm_config(cfg: VllmEngineConfig):
    """The ``vLLMEngineProcessorConfig`` for ``cfg`` (validates without a GPU or vLLM)."""
    from ray.data.llm import vLLMEngineProcessorConfig

    engine_kwargs: dict[str, Any] = {
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "pipeline_parallel_size": cfg.pipeline_parallel_size,
        "gpu_memory_utilization": cfg.gpu_memory_utilization,
        **cfg.engine_kwargs,
    }
    if cfg.max_model_len is not None:
        engine_kwargs["max_model_len"] = cfg.max_model_len
    return vLLMEngineProcessorConfig(
        model_source=cfg.model_source,
        engine_kwargs=engine_kwargs,
        batch_size=cfg.batch_size,
        concurrency=cfg.concurrency,
        max_concurrent_batches=cfg.max_concurrent_batches,
        accelerator_type=cfg.accelerator_type,
        should_continue_on_error=True,
        prepare_multimodal_stage={"enabled": cfg.vision},
    )


def vllm_request_row(row: dict, preprocess: RowFn) -> dict:
    """Preprocess for ray.data.llm: validated ``messages`` + ``sampling_params`` as top-level fields.

    A row whose preprocess fails keeps an ``_llm_request`` error and a one-token dummy
    request, so the engine stays busy-safe and ``vllm_row_to_contract`` reports the error.
    """
    import json

    packed = encode_request_row(row, preprocess)
    request = json.loads(packed["_llm_request"])
    checked = (
        make_request(request.get(MESSAGES), request.get(SAMPLING_PARAMS)) if "error" not in request else None
    )
    if checked is None or not hasattr(checked, "messages"):
        error = request.get("error") or checked.error
        packed["_llm_request"] = json.dumps({"error": error})
        packed[MESSAGES] = [{"role": "user", "content": "."}]
        packed[SAMPLING_PARAMS] = {"max_tokens": 1, "temperature": 0.0}
        return packed
    packed["_llm_request"] = "{}"  # the messages travel as ray.data.llm expects, not twice
    packed[MESSAGES] = checked.messages
    packed[SAMPLING_PARAMS] = checked.params.model_dump(exclude_none=True)
    return packed


def vllm_row_to_contract(row: dict, postprocess: RowFn) -> dict:
    """A ray.data.llm output row (success or ``__inference_error__``) in the pulse contract."""
    import json

    out = dict(row)
    request = json.loads(out.pop("_llm_request", None) or "{}")
    error = request.get("error") or None
    if not error and out.get("__inference_error__"):
        error = f"engine_error: {short(out['__inference_error__'])}"
    usage = {
        "prompt_tokens": out.get("num_input_tokens") or 0,
        "completion_tokens": out.get("num_generated_tokens") or 0,
    }
    text = out.get(GENERATED_TEXT)
    for column in VLLM_INTERNAL_COLUMNS:
        out.pop(column, None)
    if error:
        usage = {}
    return call_postprocess(out, text=text, error=error, usage=usage, postprocess=postprocess)


def apply_vllm(ds, cfg: VllmEngineConfig, preprocess: RowFn, postprocess: RowFn):
    """GPU only: ``build_processor`` over ``ds``, then the shared postprocess contract."""
    from functools import partial

    from ray.data.llm import build_processor

    processor = build_processor(
        build_vllm_config(cfg),
        preprocess=partial(vllm_request_row, preprocess=preprocess),
        postprocess=None,
    )
    return processor(ds).map(partial(vllm_row_to_contract, postprocess=postprocess))


def generate_vllm(cfg: VllmEngineConfig, prompts: list[list[dict]], sampling_params: dict) -> list[str]:
    """GPU only: offline ``vllm.LLM.chat`` for scripts (no Ray Data)."""
    try:
        from vllm import LLM, SamplingParams
    except ImportError as exc:
        raise ImportError("the vllm engine needs the extra: pip install -e '.[vllm]'") from exc
    llm = LLM(model=cfg.model_source, **build_vllm_config(cfg).engine_kwargs)
    outputs = llm.chat(prompts, SamplingParams(**sampling_params))
    return [o.outputs[0].text for o in outputs]
