"""The OpenAI-compatible ingress (FastAPI on Serve) and ``build_app`` that wires it to the models.

Routes: ``POST /v1/chat/completions`` (streaming and not), ``GET /v1/models``,
``GET /health``, ``GET /openapi.json`` and the web page at ``/`` (``/static/*``). The ingress
checks the API key, the body, the protocol and every limit, decodes images, then calls the
model's ``ModelServer`` deployment through a handle. Every answer that is not a success is an
OpenAI error body: 4xx for the client's mistakes, 429 when the queues are full, 503/504 for
the server's failures. Request logs carry id, model, latency and token counts, never image
bytes or key material.
"""

import asyncio
import json
import logging
import time
import weakref
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException

from pulse.serve.auth import KeyChecker
from pulse.serve.config import ServeConfig
from pulse.serve.errors import error_response, failure_error, result_error
from pulse.serve.images import load_images
from pulse.serve.protocol import (
    APIError,
    GenerationRequest,
    chunk_body,
    completion_body,
    models_body,
    parse_chat_request,
    parse_json_body,
)

logger = logging.getLogger("ray.serve")
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
GET = ["GET", "HEAD"]
HEADROOM_REQUESTS = 16  # ingress slots beyond admission_limit, for /health, /v1/models and the page


fastapi_app = FastAPI(title="pulse", docs_url=None, redoc_url=None, openapi_url=None)
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ROUTES = {"/", "/health", "/v1/models", "/openapi.json", "/v1/chat/completions"}  # for 405 vs 404


@fastapi_app.exception_handler(APIError)
async def _api_error(request: Request, exc: APIError) -> JSONResponse:
    return error_response(exc)


@fastapi_app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return error_response(APIError(exc.status_code, str(exc.detail), err_type="invalid_request_error"))


@fastapi_app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(APIError(400, f"Invalid request: {exc.errors()[0].get('msg', '')}"[:300]))


@fastapi_app.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("pulse unexpected error on %s", request.url.path)
    return error_response(APIError(500, "Internal server error", "server_error"))


def request_log_line(req: GenerationRequest, status: int, seconds: float, usage: dict[str, int]) -> str:
    """One log line per request: id, model, status, latency, tokens (no prompt text, images or keys)."""
    return (
        f"pulse request id={req.request_id} model={req.model} status={status} stream={req.stream} "
        f"latency_ms={seconds * 1000:.1f} images={len(req.image_urls)} "
        f"prompt_tokens={usage.get('prompt_tokens', 0)} completion_tokens={usage.get('completion_tokens', 0)}"
    )


def _static_text(name: str) -> str:
    return resources.files("pulse.serve").joinpath("static", name).read_text(encoding="utf-8")


def sse(obj: dict | str) -> str:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n"


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
        if completion_tokens > 0:  # Ray's Counter.inc refuses 0 (a failed request has no tokens)
            self.tokens.inc(completion_tokens, tags={"model": model})
        self.latency.observe(seconds * 1000, tags={"model": model})


def admission_limit(cfg: ServeConfig) -> int:
    """Chat requests one ingress replica holds at once: what the models run plus what they queue."""
    per_model = cfg.max_ongoing_requests * cfg.autoscaling.max_replicas + cfg.max_queued_requests
    return per_model * len(cfg.models)


def _loop_time(monotonic_deadline: float) -> float:
    """A ``time.monotonic()`` deadline on the running event loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


class _Slot:
    """One admitted chat request; released exactly once (a stream that never starts: on collection)."""

    def __init__(self, owner: "OpenAIIngress"):
        self.owner, self.held = owner, True
        owner.inflight += 1

    def release(self) -> None:
        if self.held:
            self.held = False
            self.owner.inflight -= 1


@serve.ingress(fastapi_app)
class OpenAIIngress:
    """Serve ingress deployment body; ``models`` maps model names to ``ModelServer`` handles."""

    def __init__(self, config: dict[str, Any], models: dict[str, Any], key_digests: list[str]):
        self.cfg = ServeConfig.model_validate(config)
        self.models = models
        self.keys = KeyChecker.from_digests(key_digests)
        self.created = int(time.time())
        self.metrics = _Metrics()
        self.inflight = 0
        self.max_inflight = admission_limit(self.cfg)
        self._health: tuple[float, int, dict] = (0.0, 503, {})

    def _authorize(self, request: Request) -> None:
        reason = self.keys.check(request.headers.get("authorization"))
        if reason:
            raise APIError(401, reason, err_type="authentication_error", code="invalid_api_key")

    async def _read_body(self, request: Request) -> bytes:
        limit = self.cfg.limits.max_body_bytes
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise APIError(415, f"Content-Type must be application/json, got {content_type[:80] or '(none)'}")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise APIError(413, f"Request body too large: {declared} bytes > {limit}", code="body_too_large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise APIError(413, f"Request body too large: > {limit} bytes", code="body_too_large")
        return bytes(body)

    @fastapi_app.api_route("/health", methods=GET)
    async def health(self) -> JSONResponse:
        """Serve's controller view of the model deployments: never queues behind generation."""
        checked, status, body = self._health
        if time.monotonic() - checked > 1.0:
            status, body = await self._deployment_health()
            self._health = (time.monotonic(), status, body)
        return JSONResponse(body, status_code=status)

    async def _deployment_health(self) -> tuple[int, dict]:
        from pulse.serve.job import deployment_name

        wanted = {deployment_name(name): name for name in self.models}
        try:
            app_name = serve.get_replica_context().app_name
            async with asyncio.timeout(5):
                status = await asyncio.to_thread(serve.status)
            deployments = status.applications[app_name].deployments
            states = {wanted[d]: str(deployments[d].status.value) for d in wanted}
        except Exception as exc:
            return 503, {"status": "unavailable", "error": type(exc).__name__}
        if all(s in {"HEALTHY", "UPSCALING", "DOWNSCALING"} for s in states.values()):
            return 200, {"status": "ok", "models": list(self.models)}
        return 503, {"status": "unavailable", "models": states}

    @fastapi_app.api_route("/v1/models", methods=GET)
    async def list_models(self, request: Request) -> JSONResponse:
        self._authorize(request)
        return JSONResponse(models_body(list(self.models), self.created))

    @fastapi_app.api_route("/openapi.json", methods=GET)
    async def openapi(self, request: Request) -> JSONResponse:
        self._authorize(request)
        return JSONResponse(fastapi_app.openapi())

    @fastapi_app.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        start = time.monotonic()
        self._authorize(request)
        if self.inflight >= self.max_inflight:
            return self._busy()
        slot = _Slot(self)
        streaming = False
        try:
            deadline = start + self.cfg.limits.request_timeout_s
            try:
                payload = parse_json_body(await self._read_body(request))
                req = parse_chat_request(payload, self.cfg.limits, list(self.models))
                async with asyncio.timeout_at(_loop_time(deadline)):
                    images = await load_images(req.image_urls, self.cfg.limits, self.cfg.remote_images)
            except TimeoutError:
                return error_response(APIError(504, "Request timed out while decoding images", "timeout"))
            except APIError as err:
                logger.info("pulse request rejected status=%s code=%s", err.status, err.code)
                return error_response(err)
            engine_request = {
                "messages": req.messages,
                "images": images,
                "max_tokens": req.max_tokens,
                "temperature": req.temperature,
                "top_p": req.top_p,
                "seed": req.seed,
                "stop": req.stop,
                "timeout_s": max(0.01, deadline - time.monotonic()),
            }
            if req.stream:
                response = await self._open_stream(req, engine_request, start, slot)
                streaming = isinstance(response, StreamingResponse)
                return response
            return await self._complete(req, engine_request, start, deadline)
        finally:
            if not streaming:  # a stream releases its slot when it ends
                slot.release()

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
        response = error_response(err, self.cfg.retry_after_s)
        response.headers["X-Request-Id"] = req.request_id
        return response

    async def _complete(self, req: GenerationRequest, engine_request: dict, start: float, deadline: float):
        try:
            async with asyncio.timeout_at(_loop_time(deadline + 5)):
                result = await self.models[req.model].complete.remote(engine_request)
        except Exception as exc:
            return self._fail(req, failure_error(exc), start)
        if err := result_error(result, self.cfg.limits.request_timeout_s):
            return self._fail(req, err, start, result)
        body = completion_body(
            req, result["text"], result["finish_reason"], result["prompt_tokens"], result["completion_tokens"]
        )
        self._finish(req, 200, start, result)
        return JSONResponse(body, headers={"X-Request-Id": req.request_id})

    async def _open_stream(
        self, req: GenerationRequest, engine_request: dict, start: float, slot: _Slot
    ) -> Response:
        """Start the stream and wait for its first item, so refusals still get their own status."""
        stream = self.models[req.model].options(stream=True).stream.remote(engine_request)
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
            headers={"Cache-Control": "no-cache", "X-Request-Id": req.request_id},
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
        self.metrics.record(req.model, status, seconds, usage["completion_tokens"])
        logger.info(request_log_line(req, status, seconds, usage))

    @fastapi_app.api_route("/", methods=GET)
    async def index(self) -> Response:
        if not self.cfg.web_page:
            return error_response(APIError(404, "The web page is disabled (web_page: false)"))
        return HTMLResponse(_static_text("index.html"))

    @fastapi_app.api_route("/static/{name}", methods=GET)
    async def static(self, name: str) -> Response:
        if not self.cfg.web_page or name not in STATIC_FILES:
            return error_response(APIError(404, f"No such file: {name[:100]}"))
        return Response(_static_text(name), media_type=STATIC_FILES[name])

    # Last, so every real route matches first: unknown paths and methods reveal nothing without a key.
    @fastapi_app.api_route("/{path:path}", methods=ALL_METHODS, include_in_schema=False)
    async def not_found(self, request: Request, path: str) -> Response:
        self._authorize(request)
        if "/" + path in ROUTES:
            return error_response(APIError(405, f"Method {request.method} not allowed on /{path[:100]}"))
        return error_response(APIError(404, f"No such route: /{path[:100]}"))
