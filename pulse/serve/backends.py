"""The ingress's one interface to a model deployment, whichever engine runs the model.

``Backend.complete(request)`` returns a result dict and ``Backend.stream(request)`` an async
iterator of ``{"delta": text}`` items ending with one result dict (without ``text``), with
``cancel()``. A request is the engine-request dict the ingress builds (messages with
``{"type": "image"}`` placeholders, decoded images, sampling fields, ``timeout_s``); a result is
``{text, finish_reason, prompt_tokens, completion_tokens, error}`` where ``error`` is ``None`` or
``{status, message, code}``. Two backends:

- ``ModelServerBackend``: pulse's ``ModelServer`` (the transformers engine), which speaks this
  protocol itself.
- ``LLMServerBackend``: Ray's ``ray.serve.llm`` ``LLMServer`` (vLLM). Images, already decoded and
  checked by the ingress, travel as PNG ``data:`` URLs, so vLLM never fetches a URL itself; the
  sampling fields are checked with the same ``SamplingParams`` as the transformers engine; vLLM's
  refusals become the same OpenAI errors (400 ``context_length_exceeded``, ...).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any

from pydantic import ValidationError

from pulse.llm.base import CONTEXT_LENGTH_EXCEEDED, ChatResult
from pulse.llm.config import SamplingParams

SAMPLING_KEYS = ("max_tokens", "temperature", "top_p", "seed", "stop")
# Engine refusals that are the client's to fix: reason -> (HTTP status, OpenAI error code).
CLIENT_ERRORS = {
    CONTEXT_LENGTH_EXCEEDED: (400, CONTEXT_LENGTH_EXCEEDED),
    "bad_sampling_params": (400, "invalid_sampling_params"),
    "template_error": (400, "invalid_messages"),
}
MODEL_FAILED = "The model failed on this request"


def result_dict(result: ChatResult) -> dict[str, Any]:
    """A ``ChatResult`` as the result dict of the backend protocol."""
    out: dict[str, Any] = {
        "text": result.text or "",
        "finish_reason": result.finish_reason or "error",
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "error": None,
    }
    if result.error:
        status, code = CLIENT_ERRORS.get(result.reason or "", (503, "engine_error"))
        message = result.error.split(": ", 1)[-1] if status < 500 else MODEL_FAILED
        out["error"] = {"status": status, "message": message, "code": code}
    return out


def sampling_params(request: dict[str, Any]) -> SamplingParams | ChatResult:
    """The request's validated sampling settings, or the ``bad_sampling_params`` result."""
    try:
        return SamplingParams.model_validate(
            {k: request[k] for k in SAMPLING_KEYS if request.get(k) is not None}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return ChatResult.failed("bad_sampling_params", f"{where}: {first['msg']}")


def failed(status: int, message: str, code: str | None) -> dict[str, Any]:
    """A result dict for a request the model refused (``status`` < 500) or failed on."""
    return {
        "text": "",
        "finish_reason": "error",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "error": {"status": status, "message": message, "code": code},
    }


class ModelServerBackend:
    """pulse's ``ModelServer`` deployment: it speaks the backend protocol natively."""

    def __init__(self, handle: Any):
        self.handle = handle

    async def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        return await self.handle.complete.remote(request)

    def stream(self, request: dict[str, Any]) -> Any:
        return self.handle.options(stream=True).stream.remote(request)


def png_data_url(image: Any) -> str:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def with_image_urls(messages: list[dict[str, Any]], urls: list[str]) -> list[dict[str, Any]]:
    """OpenAI messages with each ``{"type": "image"}`` placeholder replaced by the next data URL."""
    remaining = iter(urls)
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {"type": "image_url", "image_url": {"url": next(remaining)}}
                if part.get("type") == "image"
                else part
                for part in content
            ]
        out.append({**message, "content": content})
    return out


def vllm_error(error: Any) -> dict[str, Any]:
    """The result dict for vLLM's ``ErrorResponse`` (4xx keep vLLM's message; 5xx are hidden)."""
    info = error.error
    status = int(info.code) if isinstance(info.code, int) and 400 <= info.code < 600 else 503
    message = str(info.message)
    if status >= 500:
        return failed(503, MODEL_FAILED, "engine_error")
    code = CONTEXT_LENGTH_EXCEEDED if "maximum context length" in message else None
    return failed(status, message[:500], code)


class LLMServerBackend:
    """Ray's ``LLMServer`` (``ray.serve.llm``, vLLM), called through its deployment handle."""

    def __init__(self, handle: Any, model: str, max_images: int):
        from ray.llm._internal.serve.core.configs.openai_api_models import (
            ChatCompletionRequest,
            ErrorResponse,
        )

        self.handle = handle.options(stream=True)  # LLMServer.chat is a generator, streaming or not
        self.model, self.max_images = model, max_images
        self._request_cls, self._error_cls = ChatCompletionRequest, ErrorResponse

    async def _chat_request(self, request: dict[str, Any], stream: bool) -> Any:
        """Ray's ``ChatCompletionRequest``, or the result dict of a request refused before vLLM."""
        params = sampling_params(request)
        if isinstance(params, ChatResult):
            return result_dict(params)
        images = request.get("images") or []
        if len(images) > self.max_images:
            message = f"Too many images: {len(images)} > {self.max_images} per prompt for this model"
            return failed(400, message, "too_many_images")
        urls = [await asyncio.to_thread(png_data_url, image) for image in images]
        fields = params.model_dump(exclude_none=True)
        if stream:
            fields["stream_options"] = {"include_usage": True}
        try:
            return self._request_cls(
                model=self.model,
                messages=with_image_urls(request["messages"], urls),
                stream=stream,
                **fields,
            )
        except (ValidationError, ValueError) as exc:
            return failed(400, f"Invalid request for vLLM: {exc}"[:500], None)

    async def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        chat = await self._chat_request(request, stream=False)
        if isinstance(chat, dict):
            return chat
        responses = self.handle.chat.remote(chat, None)
        try:
            response = await responses.__anext__()
        except asyncio.CancelledError:
            responses.cancel()
            raise
        if isinstance(response, self._error_cls):
            return vllm_error(response)
        choice, usage = response.choices[0], response.usage
        return {
            "text": choice.message.content or "",
            "finish_reason": choice.finish_reason or "stop",
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
            "error": None,
        }

    def stream(self, request: dict[str, Any]) -> _LLMServerStream:
        return _LLMServerStream(self, request)


class _LLMServerStream:
    """vLLM's SSE chunks (lists of ``data: {...}`` strings) as the protocol's stream items."""

    def __init__(self, backend: LLMServerBackend, request: dict[str, Any]):
        self.backend, self.request = backend, request
        self._responses: Any = None
        self._items = self._run()

    def __aiter__(self) -> _LLMServerStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self._items.__anext__()

    def cancel(self) -> None:
        if self._responses is not None:
            self._responses.cancel()

    async def _run(self):
        chat = await self.backend._chat_request(self.request, stream=True)
        if isinstance(chat, dict):
            yield {k: v for k, v in chat.items() if k != "text"}
            return
        final = {"finish_reason": "stop", "prompt_tokens": 0, "completion_tokens": 0, "error": None}
        self._responses = self.backend.handle.chat.remote(chat, None)
        async for batch in self._responses:
            for chunk in batch if isinstance(batch, list) else [batch]:
                if isinstance(chunk, self.backend._error_cls):
                    yield {k: v for k, v in vllm_error(chunk).items() if k != "text"}
                    return
                data = chunk.removeprefix("data: ").strip()
                if data == "[DONE]":
                    continue
                body = json.loads(data)
                if "error" in body:  # a failure after the first chunk
                    yield {k: v for k, v in failed(503, MODEL_FAILED, "engine_error").items() if k != "text"}
                    return
                if body.get("usage"):
                    final["prompt_tokens"] = body["usage"].get("prompt_tokens", 0)
                    final["completion_tokens"] = body["usage"].get("completion_tokens", 0)
                for choice in body.get("choices", []):
                    if delta := (choice.get("delta") or {}).get("content"):
                        yield {"delta": delta}
                    if choice.get("finish_reason"):
                        final["finish_reason"] = choice["finish_reason"]
        yield final


def make_backend(model: Any, handle: Any) -> ModelServerBackend | LLMServerBackend:
    """The backend for one served model (a ``ModelConfig``) and its deployment handle."""
    if model.kind == "vllm":
        return LLMServerBackend(handle, model.name, model.engine.max_images_per_prompt)
    return ModelServerBackend(handle)
