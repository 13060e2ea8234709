"""``ModelServer``: one Serve deployment per model, wrapping the LLM seam's transformers engine.

Non-streaming requests go through ``@serve.batch`` (dynamic batching); streaming requests
run one at a time. All ``generate()`` calls share one worker thread per replica, so the
event loop stays free for health checks, cancellations and new arrivals. Each request is a
``pulse.llm.ChatRequest`` (validated sampling settings, deadline, cancel event); a request
the engine refuses comes back with ``finish_reason: error`` and ``error: {status, message, code}``
(400 ``context_length_exceeded`` for a prompt longer than the context), which the ingress answers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ray import serve

from pulse.llm.base import STOPPED_EARLY, ChatRequest, ChatResult, short
from pulse.llm.streaming import IncrementalDecoder, TokenStreamer
from pulse.llm.transformers_engine import TransformersEngine
from pulse.serve.backends import result_dict, sampling_params
from pulse.serve.config import ModelConfig

logger = logging.getLogger("ray.serve")


class ModelServer:
    """Serve deployment body: ``complete`` (batched), ``stream`` (token deltas), ``stats``, health."""

    def __init__(self, model: dict[str, Any], num_cpus: float = 1.0):
        self.cfg = ModelConfig.model_validate(model)
        engine_cfg = self.cfg.engine.model_copy(
            update={"num_cpus": num_cpus, "batch_size": self.cfg.max_batch_size}
        )
        if not engine_cfg.torch_threads:
            engine_cfg = engine_cfg.model_copy(update={"torch_threads": max(1, math.ceil(num_cpus))})
        self.engine = TransformersEngine(engine_cfg)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pulse-generate")
        self.generate_batch.set_max_batch_size(self.cfg.max_batch_size)
        self.generate_batch.set_batch_wait_timeout_s(self.cfg.batch_wait_timeout_s)
        self._stats = {
            "batches": 0,
            "rows": 0,
            "max_batch": 0,
            "cancelled": 0,
            "streams": 0,
            "stopped_early": 0,
        }

    def _prepare(self, request: dict[str, Any]) -> ChatRequest | ChatResult:
        """The engine request (deadline from ``timeout_s``), or the error result of bad sampling values."""
        params = sampling_params(request)
        if isinstance(params, ChatResult):
            return params
        return ChatRequest(
            messages=request["messages"],
            params=params,
            images=tuple(request.get("images") or ()),
            deadline=time.monotonic() + request["timeout_s"],
            cancel=threading.Event(),
        )

    async def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        """One chat completion (batched with concurrent ones); see ``result_dict``."""
        row = self._prepare(request)
        if isinstance(row, ChatResult):
            return result_dict(row)
        try:
            result = await self.generate_batch(row)
        except asyncio.CancelledError:
            # The client went away: finish this row at the next step instead of generating to the end.
            assert row.cancel is not None
            row.cancel.set()
            self._stats["cancelled"] += 1
            raise
        return result_dict(result)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def generate_batch(self, rows: list[ChatRequest]) -> list[ChatResult]:
        self._stats["batches"] += 1
        self._stats["rows"] += len(rows)
        self._stats["max_batch"] = max(self._stats["max_batch"], len(rows))
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._executor, self._generate_safely, rows)
        self._stats["stopped_early"] += sum(r.finish_reason in STOPPED_EARLY for r in results)
        return results

    def _generate_safely(self, rows: list[ChatRequest], streamer=None) -> list[ChatResult]:
        """The engine isolates bad rows itself; this only keeps an unexpected fault from the replica."""
        try:
            return self.engine.generate(rows, streamer=streamer)
        except Exception as exc:
            logger.exception("generation failed")
            if streamer is not None:
                streamer.end()
            return [ChatResult.failed("engine_error", short(repr(exc)))] * len(rows)

    async def stream(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yields ``{"delta": text}`` items, then one final item: ``result_dict`` without ``text``."""
        row = self._prepare(request)
        if isinstance(row, ChatResult):
            yield {k: v for k, v in result_dict(row).items() if k != "text"}
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        streamer = TokenStreamer(
            on_token=lambda t: loop.call_soon_threadsafe(queue.put_nowait, t),
            on_end=lambda: loop.call_soon_threadsafe(queue.put_nowait, None),
        )
        decoder = IncrementalDecoder(self.engine._decode, row.params.stop or [], self.engine.eos_ids)
        self._stats["streams"] += 1
        future = loop.run_in_executor(self._executor, self._stream_safely, row, streamer)
        try:
            while (token := await queue.get()) is not None:
                if delta := decoder.feed(token):
                    yield {"delta": delta}
            if tail := decoder.flush():
                yield {"delta": tail}
            result = await future
            yield {k: v for k, v in result_dict(result).items() if k != "text"}
        except (asyncio.CancelledError, GeneratorExit):
            assert row.cancel is not None
            row.cancel.set()
            self._stats["cancelled"] += 1
            raise

    def _stream_safely(self, row: ChatRequest, streamer: TokenStreamer) -> ChatResult:
        result = self._generate_safely([row], streamer=streamer)[0]
        if result.finish_reason in STOPPED_EARLY:
            self._stats["stopped_early"] += 1
        return result

    def stats(self) -> dict[str, Any]:
        """Batching/cancellation counters and the process id of this replica (for tests and benchmarks)."""
        import os

        return {**self._stats, "pid": os.getpid()}

    def ready(self) -> str:
        return self.cfg.name

    def check_health(self) -> None:
        if self._executor._shutdown:
            raise RuntimeError("generation thread pool is shut down")
