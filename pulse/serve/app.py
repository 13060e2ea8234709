"""The OpenAI-compatible ingress (FastAPI on Serve) and ``build_app`` that wires it to the models.

Routes: ``POST /v1/chat/completions`` (streaming and not), ``GET /v1/models``,
``GET /health``, and the web page at ``/`` (``/static/*``). The ingress checks the API
key, the body, the protocol and every limit, decodes images, then calls the model's
``ModelServer`` deployment through a handle. Request logs carry id, model, latency and
token counts, never image bytes or key material.
"""

import asyncio
import json
import logging
import time
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException

from pulse.serve.auth import KeyChecker
from pulse.serve.config import ServeConfig
from pulse.serve.images import load_images
from pulse.serve.protocol import (
    APIError,
    GenerationRequest,
    chunk_body,
    completion_body,
    models_body,
    parse_chat_request,
)

logger = logging.getLogger("ray.serve")
fastapi_app = FastAPI(title="pulse", docs_url=None, redoc_url=None)
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}


def error_response(err: APIError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


@fastapi_app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return error_response(APIError(exc.status_code, str(exc.detail), err_type="invalid_request_error"))


def request_log_line(req: GenerationRequest, status: int, seconds: float, usage: dict[str, int]) -> str:
    """One log line per request: id, model, status, latency, tokens (no prompt text, images or keys)."""
    return (
        f"pulse request id={req.request_id} model={req.model} status={status} stream={req.stream} "
        f"latency_ms={seconds * 1000:.1f} images={len(req.image_urls)} "
        f"prompt_tokens={usage.get('prompt_tokens', 0)} completion_tokens={usage.get('completion_tokens', 0)}"
    )


def _static_text(name: str) -> str:
    return resources.files("pulse.serve").joinpath("static", name).read_text(encoding="utf-8")


class _Metrics:
    """Custom Prometheus metrics, exported by Serve next to its own."""

    def __init__(self) -> None:
        from ray.serve import metrics

        self.requests = metrics.Counter(
            "pulse_requests", "Chat completion requests by model and status", tag_keys=("model", "status")
        )
        self.tokens = metrics.Counter("pulse_completion_tokens", "Generated tokens", tag_keys=("model",))
        self.latency = metrics.Histogram(
            "pulse_request_latency_ms",
            "End-to-end request latency",
            boundaries=[10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000],
            tag_keys=("model",),
        )

    def record(self, model: str, status: int, seconds: float, completion_tokens: int) -> None:
        self.requests.inc(tags={"model": model, "status": str(status)})
        self.tokens.inc(completion_tokens, tags={"model": model})
        self.latency.observe(seconds * 1000, tags={"model": model})


@serve.ingress(fastapi_app)
class OpenAIIngress:
    """Serve ingress deployment body; ``models`` maps model names to ``ModelServer`` handles."""

    def __init__(self, config: dict[str, Any], models: dict[str, Any], key_digests: list[str]):
        self.cfg = ServeConfig.model_validate(config)
        self.models = models
        self.keys = KeyChecker.from_digests(key_digests)
        self.created = int(time.time())
        self.metrics = _Metrics()

    def _authorize(self, request: Request) -> None:
        reason = self.keys.check(request.headers.get("authorization"))
        if reason:
            raise APIError(401, reason, err_type="authentication_error", code="invalid_api_key")

    async def _read_json(self, request: Request) -> Any:
        limit = self.cfg.limits.max_body_bytes
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise APIError(415, f"Content-Type must be application/json, got {content_type or '(none)'}")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise APIError(413, f"Request body too large: {declared} bytes > {limit}", code="body_too_large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise APIError(413, f"Request body too large: > {limit} bytes", code="body_too_large")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise APIError(400, f"Malformed JSON body: {exc}", code="invalid_json") from None

    @fastapi_app.get("/health")
    async def health(self) -> JSONResponse:
        try:
            async with asyncio.timeout(10):
                names = [await handle.ready.remote() for handle in self.models.values()]
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok", "models": names})

    @fastapi_app.get("/v1/models")
    async def list_models(self, request: Request) -> JSONResponse:
        try:
            self._authorize(request)
        except APIError as err:
            return error_response(err)
        return JSONResponse(models_body(list(self.models), self.created))

    @fastapi_app.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        start = time.monotonic()
        try:
            self._authorize(request)
            payload = await self._read_json(request)
            req = parse_chat_request(payload, self.cfg.limits, list(self.models))
            images = await load_images(req.image_urls, self.cfg.limits, self.cfg.remote_images)
        except APIError as err:
            logger.info("pulse request rejected status=%s code=%s", err.status, err.code)
            return error_response(err)
        include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
        engine_request = {
            "messages": req.messages,
            "images": images,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "seed": req.seed,
            "stop": req.stop,
            "timeout_s": self.cfg.limits.request_timeout_s,
        }
        if req.stream:
            return StreamingResponse(
                self._stream(req, engine_request, start, include_usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Request-Id": req.request_id},
            )
        return await self._complete(req, engine_request, start)

    async def _complete(self, req: GenerationRequest, engine_request: dict, start: float) -> JSONResponse:
        timeout = self.cfg.limits.request_timeout_s
        try:
            async with asyncio.timeout(timeout + 5):
                result = await self.models[req.model].complete.remote(engine_request)
        except TimeoutError:
            result = {"finish_reason": "timeout", "prompt_tokens": 0, "completion_tokens": 0}
        status = 200
        if result["finish_reason"] == "timeout":
            status, body = 504, APIError(504, f"Request timed out after {timeout:g}s", "timeout").body()
        elif result["finish_reason"] == "error":
            status, body = 500, APIError(500, "The model failed on this request", "server_error").body()
        else:
            body = completion_body(
                req,
                result["text"],
                result["finish_reason"],
                result["prompt_tokens"],
                result["completion_tokens"],
            )
        self._finish(req, status, start, result)
        return JSONResponse(body, status_code=status, headers={"X-Request-Id": req.request_id})

    async def _stream(self, req: GenerationRequest, engine_request: dict, start: float, include_usage: bool):
        def sse(obj: dict) -> str:
            return f"data: {json.dumps(obj)}\n\n"

        yield sse(chunk_body(req, {"role": "assistant", "content": ""}))
        final: dict[str, Any] = {"finish_reason": "error", "prompt_tokens": 0, "completion_tokens": 0}
        try:
            handle = self.models[req.model].options(stream=True)
            async for item in handle.stream.remote(engine_request):
                if "delta" in item:
                    yield sse(chunk_body(req, {"content": item["delta"]}))
                else:
                    final = item
        finally:
            self._finish(req, 200 if final["finish_reason"] in {"stop", "length"} else 499, start, final)
        reason = final["finish_reason"]
        if reason in {"timeout", "error"}:
            err_type = "timeout" if reason == "timeout" else "server_error"
            yield sse(
                APIError(504 if reason == "timeout" else 500, f"generation ended: {reason}", err_type).body()
            )
        else:
            yield sse(chunk_body(req, {}, finish_reason=reason))
            if include_usage:
                usage = {
                    "prompt_tokens": final["prompt_tokens"],
                    "completion_tokens": final["completion_tokens"],
                    "total_tokens": final["prompt_tokens"] + final["completion_tokens"],
                }
                yield sse({**chunk_body(req, {}), "choices": [], "usage": usage})
        yield "data: [DONE]\n\n"

    def _finish(self, req: GenerationRequest, status: int, start: float, result: dict) -> None:
        seconds = time.monotonic() - start
        usage = {k: int(result.get(k) or 0) for k in ("prompt_tokens", "completion_tokens")}
        self.metrics.record(req.model, status, seconds, usage["completion_tokens"])
        logger.info(request_log_line(req, status, seconds, usage))

    @fastapi_app.get("/")
    async def index(self) -> Response:
        if not self.cfg.web_page:
            return error_response(APIError(404, "The web page is disabled (web_page: false)"))
        return HTMLResponse(_static_text("index.html"))

    @fastapi_app.get("/static/{name}")
    async def static(self, name: str) -> Response:
        if not self.cfg.web_page or name not in STATIC_FILES:
            return error_response(APIError(404, f"No such file: {name}"))
        return Response(_static_text(name), media_type=STATIC_FILES[name])
