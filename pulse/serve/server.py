"""``ModelServer``: one Serve deployment per model, wrapping the transformers engine.

Non-streaming requests go through ``@serve.batch`` (dynamic batching); streaming requests
run one at a time. All ``generate()`` calls share one worker thread per replica, so the
event loop stays free for health checks, cancellations and new arrivals.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ray import serve

from pulse.serve.config import ModelConfig
from pulse.serve.engine import Generation, IncrementalDecoder, Prepared, TokenStreamer, TransformersEngine

logger = logging.getLogger("ray.serve")


class ModelServer:
    """Serve deployment body: ``complete`` (batched), ``stream`` (token deltas), ``stats``, health."""

    def __init__(self, model: dict[str, Any], num_cpus: float = 1.0):
        import math

        self.cfg = ModelConfig.model_validate(model)
        threads = self.cfg.torch_threads or max(1, math.ceil(num_cpus))
        self.engine = TransformersEngine(self.cfg.checkpoint, self.cfg.device, self.cfg.dtype, threads)
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

    def _prepare(self, request: dict[str, Any]) -> Prepared:
        return Prepared(
            prompt=self.engine.render_prompt(request["messages"]),
            images=request["images"],
            max_tokens=request["max_tokens"],
            temperature=request["temperature"],
            top_p=request["top_p"],
            seed=request["seed"],
            stop=request["stop"],
            deadline=time.monotonic() + request["timeout_s"],
            cancel=threading.Event(),
        )

    async def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        """One chat completion (batched with concurrent ones); returns a ``Generation`` as a dict."""
        row = self._prepare(request)
        try:
            result = await self.generate_batch(row)
        except asyncio.CancelledError:
            # The client went away: finish this row at the next step instead of generating to the end.
            assert row.cancel is not None
            row.cancel.set()
            self._stats["cancelled"] += 1
            raise
        return result.__dict__

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def generate_batch(self, rows: list[Prepared]) -> list[Generation]:
        self._stats["batches"] += 1
        self._stats["rows"] += len(rows)
        self._stats["max_batch"] = max(self._stats["max_batch"], len(rows))
        loop = asyncio.get_running_loop()
        results = await loop.run_in_executor(self._executor, self._generate_safely, rows)
        self._stats["stopped_early"] += sum(r.finish_reason in {"cancelled", "timeout"} for r in results)
        return results

    def _generate_safely(self, rows: list[Prepared]) -> list[Generation]:
        """A row the model cannot handle fails alone, as an ``error`` result; the replica lives on."""
        try:
            return self.engine.generate_many(rows)
        except Exception:
            if len(rows) == 1:
                logger.exception("generation failed")
                return [Generation("", "error", 0, 0)]
        return [self._generate_safely([row])[0] for row in rows]

    async def stream(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yields ``{"delta": text}`` items, then one ``{"finish_reason", "prompt_tokens", "completion_tokens"}``."""
        row = self._prepare(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[int | None] = asyncio.Queue()
        streamer = TokenStreamer(
            on_token=lambda t: loop.call_soon_threadsafe(queue.put_nowait, t),
            on_end=lambda: loop.call_soon_threadsafe(queue.put_nowait, None),
        )
        decoder = IncrementalDecoder(
            lambda ids: self.engine.tokenizer.decode(ids, skip_special_tokens=True),
            row.stop,
            self.engine.eos_ids,
        )
        self._stats["streams"] += 1
        future = loop.run_in_executor(self._executor, self._stream_safely, row, streamer)
        try:
            while (token := await queue.get()) is not None:
                if delta := decoder.feed(token):
                    yield {"delta": delta}
            if tail := decoder.flush():
                yield {"delta": tail}
            result = await future
            yield {
                "finish_reason": result.finish_reason,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
            }
        except (asyncio.CancelledError, GeneratorExit):
            assert row.cancel is not None
            row.cancel.set()
            self._stats["cancelled"] += 1
            raise

    def _stream_safely(self, row: Prepared, streamer: TokenStreamer) -> Generation:
        try:
            result = self.engine.generate([row], streamer=streamer)[0]
            if result.finish_reason in {"cancelled", "timeout"}:
                self._stats["stopped_early"] += 1
            return result
        except Exception:
            logger.exception("streaming generation failed")
            streamer.end()
            return Generation("", "error", 0, 0)

    def stats(self) -> dict[str, Any]:
        """Batching/cancellation counters and the process id of this replica (for tests and benchmarks)."""
        import os

        return {**self._stats, "pid": os.getpid()}

    def ready(self) -> str:
        return self.cfg.name

    def check_health(self) -> None:
        if self._executor._shutdown:
            raise RuntimeError("generation thread pool is shut down")
