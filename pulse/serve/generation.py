"""The chat call path of the ingress: a checked request to its model backend and back as OpenAI JSON/SSE.

``ChatCalls`` is the half of ``OpenAIIngress`` that runs after a request passed every check: one
admission slot per request (429 above the limit), the call through the model's ``Backend``
(``pulse.serve.backends``, the same for the transformers ``ModelServer`` and Ray's vLLM
``LLMServer``), its deadline, the stream (an error event and ``[DONE]`` when it fails after its
200), and one log line plus metrics per answer.
"""

import asyncio
import json
import logging
import time
import weakref
from typing import Any

from fastapi.responses import JSONResponse, Response, StreamingResponse

from pulse.serve.errors import error_response, failure_error, result_error
from pulse.serve.protocol import APIError, GenerationRequest
from pulse.serve.responses import chunk_body, completion_body

logger = logging.getLogger("ray.serve")


def request_log_line(req: GenerationRequest, status: int, seconds: float, usage: dict[str, int]) -> str:
    """One log line per request: id, model, status, latency, tokens (no prompt text, images or keys)."""
    return (
        f"pulse request id={req.request_id} model={req.model} status={status} stream={req.stream} "
        f"latency_ms={seconds * 1000:.1f} images={len(req.image_urls)} "
        f"prompt_tokens={usage.get('prompt_tokens', 0)} completion_tokens={usage.get('completion_tokens', 0)}"
    )


def sse(obj: dict | str) -> str:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n"


def _loop_time(monotonic_deadline: float) -> float:
    """A ``time.monotonic()`` deadline on the running event loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


class _Slot:
    """One admitted chat request; released exactly once (a stream that never starts: on collection)."""

    def __init__(self, owner: "ChatCalls"):
        self.owner, self.held = owner, True
        owner.inflight += 1

    def release(self) -> None:
        if self.held:
            self.held = False
            self.owner.inflight -= 1


class ChatCalls:
    """Needs ``cfg`` (``ServeConfig``), ``backends`` (model name -> ``Backend``), ``metrics``, ``inflight``."""

    def _busy(self) -> JSONResponse:
        err = APIError(
            429, "The server is busy: too many requests in flight; retry later", "rate_limit_exceeded"
        )
        return error_response(err, self.cfg.retry_after_s)

    def _fail(
        self, req: GenerationRequest, err: APIError, start: float, result: dict | None = None
    ) -> JSONResponse:
        self._finish(req, err.status, start, result or {})
        if err.status == 429:
            return self._busy()
        return error_response(err, self.cfg.retry_after_s)

    async def _complete(self, req: GenerationRequest, engine_request: dict, start: float, deadline: float):
        try:
            async with asyncio.timeout_at(_loop_time(deadline + 5)):
                result = await self.backends[req.model].complete(engine_request)
        except Exception as exc:
            return self._fail(req, failure_error(exc), start)
        if err := result_error(result, self.cfg.limits.request_timeout_s):
            return self._fail(req, err, start, result)
        body = completion_body(
            req, result["text"], result["finish_reason"], result["prompt_tokens"], result["completion_tokens"]
        )
        self._finish(req, 200, start, result)
        return JSONResponse(body)  # Serve's proxy adds X-Request-ID (the id in the body, unprefixed)

    async def _open_stream(
        self, req: GenerationRequest, engine_request: dict, start: float, slot: _Slot
    ) -> Response:
        """Start the stream and wait for its first item, so refusals still get their own status."""
        stream = self.backends[req.model].stream(engine_request)
        try:
            async with asyncio.timeout(self.cfg.limits.request_timeout_s + 5):
                first = await stream.__anext__()
        except asyncio.CancelledError:
            stream.cancel()
            raise
        except StopAsyncIteration:
            return self._fail(req, APIError(503, "The model ended the stream early", "server_error"), start)
        except Exception as exc:
            stream.cancel()
            return self._fail(req, failure_error(exc), start)
        if "delta" not in first and (err := result_error(first, self.cfg.limits.request_timeout_s)):
            return self._fail(req, err, start, first)
        body = self._stream(req, first, stream, start, slot)
        weakref.finalize(body, slot.release)
        return StreamingResponse(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    async def _stream(self, req: GenerationRequest, first: dict, stream: Any, start: float, slot: _Slot):
        final: dict[str, Any] = {"finish_reason": "error", "prompt_tokens": 0, "completion_tokens": 0}
        status = 499  # the client went away before the end
        try:
            yield sse(chunk_body(req, {"role": "assistant", "content": ""}))
            item: dict | None = first
            while item is not None:
                if "delta" in item:
                    yield sse(chunk_body(req, {"content": item["delta"]}))
                else:
                    final = item
                try:
                    item = await stream.__anext__()
                except StopAsyncIteration:
                    item = None
            err = result_error(final, self.cfg.limits.request_timeout_s)
        except (asyncio.CancelledError, GeneratorExit):
            stream.cancel()
            self._finish(req, status, start, final)
            raise
        except Exception as exc:
            err = failure_error(exc)
        finally:
            slot.release()
        try:
            if err:
                status = err.status
                yield sse(err.body())
            else:
                status = 200
                yield sse(chunk_body(req, {}, finish_reason=final["finish_reason"]))
                if req.include_usage:
                    usage = {
                        "prompt_tokens": final["prompt_tokens"],
                        "completion_tokens": final["completion_tokens"],
                        "total_tokens": final["prompt_tokens"] + final["completion_tokens"],
                    }
                    yield sse({**chunk_body(req, {}), "choices": [], "usage": usage})
            yield sse("[DONE]")
        finally:
            self._finish(req, status, start, final)

    def _finish(self, req: GenerationRequest, status: int, start: float, result: dict) -> None:
        seconds = time.monotonic() - start
        usage = {k: int(result.get(k) or 0) for k in ("prompt_tokens", "completion_tokens")}
        self.metrics.record(req.model, status, seconds, usage["prompt_tokens"], usage["completion_tokens"])
        logger.info(request_log_line(req, status, seconds, usage))
