"""OpenAI chat-completions wire format: request validation and error bodies (answers: ``responses``).

Validation is pure (no Serve, no model) so every 4xx path is testable on its own; the app
turns an ``APIError`` into ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pulse.serve.config import LimitsConfig


class APIError(Exception):
    """An error with an HTTP status and an OpenAI-style body."""

    def __init__(
        self,
        status: int,
        message: str,
        err_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        return {
            "error": {"message": self.message, "type": self.err_type, "param": self.param, "code": self.code}
        }


MAX_JSON_DEPTH = 32
IMAGE_TOKEN = "<image>"
SEED_RANGE = (-(2**63), 2**63 - 1)  # what torch.manual_seed and vLLM accept
MIN_SAMPLING_TEMPERATURE = 1e-3


class _Lenient(BaseModel):
    # OpenAI clients send fields we do not use (user, logprobs=false, ...); ignore rather than 400.
    # NaN/Infinity never reach the sampler.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class ImageURL(_Lenient):
    url: str
    detail: str | None = None


class ContentPart(_Lenient):
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageURL | None = None


class ChatMessage(_Lenient):
    role: Literal["system", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class StreamOptions(_Lenient):
    include_usage: bool = False


class ChatCompletionRequest(_Lenient):
    model: str
    messages: list[ChatMessage] = Field(..., min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1)


@dataclass
class GenerationRequest:
    """What the engine needs: llava_v1 chat messages (images replaced by parts), images, sampling."""

    request_id: str
    model: str
    messages: list[dict[str, Any]]
    image_urls: list[str]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False


_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id(serve_request_id: str | None = None) -> str:
    """``chatcmpl-<id>``: the completion's id, logged with the request.

    ``<id>`` is the one Ray Serve's proxy answers in ``X-Request-ID`` (the client's own
    ``X-Request-ID`` when it sent a sane one), so the header, the body and the log line agree.
    """
    if serve_request_id and _CLIENT_REQUEST_ID.fullmatch(serve_request_id):
        return f"chatcmpl-{serve_request_id}"
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def json_depth_ok(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when no array/object nests deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def parse_json_body(body: bytes) -> Any:
    """Decode a request body; any malformed or pathological JSON is a 400 ``invalid_json``.

    Besides syntax errors this covers nesting deep enough to exhaust the parser's recursion,
    integers too long to convert, NaN/Infinity literals and non-UTF-8 bytes.
    """
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise APIError(400, "Malformed JSON body: nested too deeply", code="invalid_json") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, int digit limit, NaN
        raise APIError(400, f"Malformed JSON body: {exc}"[:300], code="invalid_json") from None
    if not json_depth_ok(payload):
        raise APIError(
            400, f"Malformed JSON body: nested deeper than {MAX_JSON_DEPTH} levels", code="invalid_json"
        )
    return payload


def validation_message(exc: ValidationError) -> tuple[str, str | None]:
    """A one-line message naming the first bad field, plus that field's dotted path."""
    err = exc.errors(include_url=False, include_input=False)[0]
    param = ".".join(str(p) for p in err["loc"]) or None
    return f"Invalid request: {param}: {err['msg']}"[:500], param


def parse_chat_request(
    payload: Any, limits: LimitsConfig, model_names: list[str], serve_request_id: str | None = None
) -> GenerationRequest:
    """Validate a decoded JSON body against the protocol and the configured limits.

    Raises:
        APIError: 400 for protocol/limit violations, 404 for an unknown model.
    """
    if not isinstance(payload, dict):
        raise APIError(400, "Request body must be a JSON object")
    try:
        req = ChatCompletionRequest.model_validate(payload)
    except ValidationError as exc:
        message, param = validation_message(exc)
        raise APIError(400, message, param=param) from None
    if req.model not in model_names:
        raise APIError(
            404,
            f"The model {req.model[:100]!r} does not exist; available: {', '.join(model_names)}",
            code="model_not_found",
            param="model",
        )
    if len(req.messages) > limits.max_messages:
        raise APIError(
            400, f"Too many messages: {len(req.messages)} > {limits.max_messages}", param="messages"
        )
    max_tokens = req.max_completion_tokens or req.max_tokens or limits.default_max_tokens
    if max_tokens > limits.max_tokens_cap:
        raise APIError(
            400,
            f"max_tokens={max_tokens} exceeds this endpoint's cap of {limits.max_tokens_cap}",
            code="max_tokens_exceeded",
            param="max_tokens",
        )
    messages, image_urls = _flatten_messages(req.messages)
    if len(image_urls) > limits.max_images:
        raise APIError(
            400,
            f"Too many images: {len(image_urls)} > {limits.max_images} per request",
            code="too_many_images",
            param="messages",
        )
    if not messages or messages[-1]["role"] != "user":
        raise APIError(400, "The last message must have role 'user'", param="messages")
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stop) > 4 or any(not s for s in stop):
        raise APIError(400, "stop: at most 4 non-empty strings", param="stop")
    return GenerationRequest(
        request_id=new_request_id(serve_request_id),
        model=req.model,
        messages=messages,
        image_urls=image_urls,
        max_tokens=max_tokens,
        # logits / 1e-40 overflows to inf and sampling fails; that close to 0 is greedy anyway.
        temperature=req.temperature if req.temperature >= MIN_SAMPLING_TEMPERATURE else 0.0,
        top_p=req.top_p,
        seed=req.seed,
        stop=stop,
        stream=req.stream,
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
    )


def _flatten_messages(messages: list[ChatMessage]) -> tuple[list[dict[str, Any]], list[str]]:
    """Messages as HF chat-template input (``{"type": "image"}`` placeholders) and the image URLs in order."""
    out: list[dict[str, Any]] = []
    urls: list[str] = []
    for i, msg in enumerate(messages):
        if msg.content is None or isinstance(msg.content, str):
            _check_text(msg.content or "", f"messages.{i}.content")
            out.append({"role": msg.role, "content": msg.content or ""})
            continue
        parts: list[dict[str, Any]] = []
        for j, part in enumerate(msg.content):
            if part.type == "text":
                _check_text(part.text or "", f"messages.{i}.content.{j}.text")
                parts.append({"type": "text", "text": part.text or ""})
            elif part.image_url is None or not part.image_url.url:
                raise APIError(400, "image_url part without a url", param=f"messages.{i}.content.{j}")
            elif msg.role != "user":
                raise APIError(400, "Images are only accepted in user messages", param=f"messages.{i}")
            else:
                parts.append({"type": "image"})
                urls.append(part.image_url.url)
        out.append({"role": msg.role, "content": parts})
    return out, urls


def _check_text(text: str, param: str) -> None:
    # The literal image token would be expanded as an image with no pixels behind it.
    if IMAGE_TOKEN in text:
        raise APIError(
            400,
            f"Text may not contain the reserved token {IMAGE_TOKEN}; send images as image_url parts",
            param=param,
        )
