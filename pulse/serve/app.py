"""The OpenAI-compatible ingress (FastAPI on Serve) and ``build_app`` that wires it to the models.

Routes: ``POST /v1/chat/completions`` (streaming and not), ``GET /v1/models``, ``GET /health``,
``GET /metrics`` (Prometheus text), ``GET /openapi.json`` and the web page at ``/`` (``/static/*``).
The ingress checks the API key, the body, the protocol and every limit, decodes images, then calls
the model's deployment through its ``Backend`` (``pulse.serve.backends``): pulse's ``ModelServer``
(transformers) or Ray's ``LLMServer`` (vLLM), the same checks for both. Every answer that is not a success is an
OpenAI error body: 4xx for the client's mistakes, 429 when the queues are full, 503/504 for
the server's failures. Request logs carry id, model, latency and token counts, never image
bytes or key material.
"""

import asyncio
import logging
import time
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException

from pulse.serve.auth import KeyChecker
from pulse.serve.backends import make_backend
from pulse.serve.config import ServeConfig
from pulse.serve.errors import error_response
from pulse.serve.generation import ChatCalls, _loop_time, _Slot
from pulse.serve.images import load_images
from pulse.serve.metrics import CONTENT_TYPE, RequestMetrics
from pulse.serve.protocol import APIError, parse_chat_request, parse_json_body
from pulse.serve.responses import models_body

logger = logging.getLogger("ray.serve")
STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
GET = ["GET", "HEAD"]
HEADROOM_REQUESTS = 16  # ingress slots beyond admission_limit, for /health, /v1/models and the page


fastapi_app = FastAPI(title="pulse", docs_url=None, redoc_url=None, openapi_url=None)
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ROUTES = {"/", "/health", "/metrics", "/v1/models", "/openapi.json", "/v1/chat/completions"}  # for 405 vs 404


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


def _static_text(name: str) -> str:
    return resources.files("pulse.serve").joinpath("static", name).read_text(encoding="utf-8")


def admission_limit(cfg: ServeConfig) -> int:
    """Chat requests one ingress replica holds at once: what the models run plus what they queue."""
    per_model = cfg.max_ongoing_requests * cfg.autoscaling.max_replicas + cfg.max_queued_requests
    return per_model * len(cfg.models)


@serve.ingress(fastapi_app)
class OpenAIIngress(ChatCalls):
    """Serve ingress deployment body; ``models`` maps model names to their deployments' handles
    (``ModelServer`` or ``LLMServer``, by each model's ``engine.kind``)."""

    def __init__(self, config: dict[str, Any], models: dict[str, Any], key_digests: list[str]):
        self.cfg = ServeConfig.model_validate(config)
        self.models = models
        self.backends = {m.name: make_backend(m, models[m.name]) for m in self.cfg.models}
        self.keys = KeyChecker.from_digests(key_digests)
        self.created = int(time.time())
        self.metrics = RequestMetrics()
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

    @fastapi_app.api_route("/metrics", methods=GET)
    async def metrics_text(self, request: Request) -> Response:
        """This replica's request counts (Prometheus text); behind the key: it names models and traffic."""
        self._authorize(request)
        return Response(self.metrics.render(self.inflight), media_type=CONTENT_TYPE)

    @fastapi_app.api_route("/openapi.json", methods=GET)
    async def openapi(self, request: Request) -> JSONResponse:
        self._authorize(request)
        return JSONResponse(fastapi_app.openapi())

    @fastapi_app.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Response:
        start = time.monotonic()
        try:
            self._authorize(request)
        except APIError as err:
            self.metrics.record("-", err.status, time.monotonic() - start, 0, 0)
            raise
        if self.inflight >= self.max_inflight:
            self.metrics.record("-", 429, time.monotonic() - start, 0, 0)
            return self._busy()
        slot = _Slot(self)
        streaming, payload = False, None
        try:
            deadline = start + self.cfg.limits.request_timeout_s
            try:
                payload = parse_json_body(await self._read_body(request))
                req = parse_chat_request(
                    payload, self.cfg.limits, list(self.models), request.headers.get("x-request-id")
                )
                async with asyncio.timeout_at(_loop_time(deadline)):
                    images = await load_images(req.image_urls, self.cfg.limits, self.cfg.remote_images)
            except (TimeoutError, APIError) as exc:
                err = (
                    exc
                    if isinstance(exc, APIError)
                    else APIError(504, "Request timed out while decoding images", "timeout")
                )
                logger.info("pulse request rejected status=%s code=%s", err.status, err.code)
                model = payload.get("model") if isinstance(payload, dict) else None  # any JSON value
                known = isinstance(model, str) and model in self.backends
                self.metrics.record(model if known else "-", err.status, time.monotonic() - start, 0, 0)
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
