"""Any OpenAI-compatible endpoint: an async client that never crashes the job.

Unlike ``ray.data.llm``'s ``HttpRequestProcessorConfig`` (see the design notes), every
row of a batch is in flight at once (bounded by ``max_concurrent_requests`` per actor),
``qps`` is one token bucket shared by all actors, 429 / 5xx / timeouts / connection
errors / malformed bodies are retried with exponential backoff and jitter (honouring
``Retry-After``), any response body is read as text first (a ``text/plain`` 500 is just
another retryable status), and the final failure is an error result, e.g.
``http_503: Service Unavailable (after 5 retries)`` or ``http_400: <server message>``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
from typing import Any

from pulse.llm.base import ChatRequest, ChatResult, make_request, run_table, short
from pulse.llm.config import HttpEngineConfig

RETRY_STATUSES = frozenset({408, 409, 425, 429})


def retryable(status: int) -> bool:
    return status in RETRY_STATUSES or status >= 500


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with "equal jitter", never shorter than the server's Retry-After."""
    step = min(cap, base * (2**attempt))
    delay = step / 2 + random.uniform(0, step / 2)
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return delay


def server_message(text: str) -> str:
    """The human part of an error body: OpenAI ``error.message``, FastAPI ``detail``, or the text."""
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return short(text) or "(empty body)"
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return short(err["message"])
        for key in ("error", "detail", "message"):
            if isinstance(body.get(key), str):
                return short(body[key])
    return short(text)


def parse_completion(text: str) -> ChatResult:
    """A 200 body as a result; a body without ``choices[0].message.content`` is malformed."""
    try:
        body = json.loads(text)
        content = body["choices"][0]["message"]["content"]
    except (json.JSONDecodeError, ValueError, KeyError, IndexError, TypeError) as exc:
        return ChatResult.failed("malformed_response", f"{type(exc).__name__}: {short(text, 120)}")
    if not isinstance(content, str):
        return ChatResult.failed("malformed_response", "message.content is not a string")
    usage = body.get("usage") or {}
    return ChatResult(
        content, None, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    )


class HttpChatClient:
    """Async chat-completions client with bounded concurrency, a rate limit and retries.

    Args:
        cfg: Endpoint, model, retry and concurrency settings.
        limiter: Anything with ``async acquire()`` (``LocalRateLimiter`` / ``SharedRateLimiter``);
            default: a local bucket when ``cfg.qps`` is set.
    """

    def __init__(self, cfg: HttpEngineConfig, limiter: Any = None):
        self.cfg = cfg
        if limiter is None and cfg.qps:
            from pulse.llm.rate_limit import LocalRateLimiter

            limiter = LocalRateLimiter(cfg.qps, cfg.burst)
        self.limiter = limiter
        self.semaphore = asyncio.Semaphore(cfg.max_concurrent_requests)
        self.url = f"{cfg.base_url}/chat/completions"
        self.headers = {"Content-Type": "application/json", **cfg.headers}
        key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self._client = None

    def _http(self):
        import httpx

        if self._client is None:
            limits = httpx.Limits(max_connections=self.cfg.max_concurrent_requests)
            self._client = httpx.AsyncClient(timeout=self.cfg.timeout_s, limits=limits)
        return self._client

    async def chat(
        self, request: dict[str, Any] | ChatRequest
    ) -> tuple[str | None, str | None, dict[str, int]]:
        """(text, error, usage) for one ``{"messages", "sampling_params"}`` request (a preprocessed row)."""
        if not isinstance(request, ChatRequest):
            request = make_request(request.get("messages"), request.get("sampling_params"))
        result = request if isinstance(request, ChatResult) else await self.complete(request)
        return result.text, result.error, result.usage

    async def complete_many(self, requests: list[ChatRequest]) -> list[ChatResult]:
        """All requests concurrently (up to ``max_concurrent_requests`` in flight), results in order."""
        return list(await asyncio.gather(*(self.complete(r) for r in requests)))

    async def complete(self, request: ChatRequest) -> ChatResult:
        """One request with retries; never raises for HTTP or body problems."""
        body = {
            "model": self.cfg.model,
            "messages": request.messages,
            **request.params.model_dump(exclude_none=True),
            **self.cfg.extra_body,
        }
        last = ChatResult.failed("internal", "no attempt made")
        retry_after: float | None = None
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                await asyncio.sleep(
                    backoff_delay(attempt - 1, self.cfg.backoff_base_s, self.cfg.backoff_max_s, retry_after)
                )
            async with self.semaphore:
                if self.limiter is not None:
                    await self.limiter.acquire()
                last, retry, retry_after = await self._post_once(body)
            if not retry:
                return last
        retries = self.cfg.max_retries
        return ChatResult(None, f"{last.error} (after {retries} retr{'y' if retries == 1 else 'ies'})")

    async def _post_once(self, body: dict) -> tuple[ChatResult, bool, float | None]:
        """(result, retry?, Retry-After seconds) for a single HTTP attempt."""
        import httpx

        try:
            response = await self._http().post(self.url, json=body, headers=self.headers)
        except httpx.TimeoutException as exc:
            return (
                ChatResult.failed("timeout", f"{type(exc).__name__} after {self.cfg.timeout_s}s"),
                True,
                None,
            )
        except httpx.TransportError as exc:
            return ChatResult.failed("connection_error", f"{type(exc).__name__}: {short(exc)}"), True, None
        text = response.text
        if response.status_code == 200:
            result = parse_completion(text)
            return result, result.error is not None, None
        error = ChatResult.failed(f"http_{response.status_code}", server_message(text))
        if not retryable(response.status_code):
            return error, False, None
        return error, True, _retry_after(response.headers.get("retry-after"))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: fall back to our own backoff
        return None


class HttpBatchUDF:
    """Ray Data actor: a private event loop thread runs every row of a batch concurrently."""

    def __init__(self, cfg: HttpEngineConfig, limiter_actor: Any = None):
        from pulse.llm.rate_limit import SharedRateLimiter

        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="pulse-http-llm").start()
        limiter = SharedRateLimiter(limiter_actor) if limiter_actor is not None else None
        self.client = HttpChatClient(cfg, limiter)

    def _generate(self, requests: list[ChatRequest]) -> list[ChatResult]:
        return asyncio.run_coroutine_threadsafe(self.client.complete_many(requests), self.loop).result()

    def __call__(self, table):
        return run_table(table, self._generate)


def apply_http(ds, cfg: HttpEngineConfig, preprocess, postprocess):
    from functools import partial

    from pulse.llm.base import apply_request_udf
    from pulse.llm.rate_limit import create_shared_limiter

    limiter = create_shared_limiter(cfg.qps, cfg.burst) if cfg.qps else None
    map_kwargs = {
        "concurrency": cfg.concurrency,
        "batch_size": cfg.batch_size,
        "num_cpus": cfg.num_cpus,
        # Two batches per actor overlap, so one slow row does not idle the endpoint.
        "ray_remote_args_fn": partial(dict, max_concurrency=2),
    }
    udf_kwargs = {"cfg": cfg, "limiter_actor": limiter}
    return apply_request_udf(ds, preprocess, postprocess, HttpBatchUDF, udf_kwargs, map_kwargs)


def generate_http(cfg: HttpEngineConfig, requests: list[ChatRequest]) -> list[ChatResult]:
    """Run requests against the endpoint from plain Python (no Ray)."""

    async def run() -> list[ChatResult]:
        client = HttpChatClient(cfg)
        try:
            return await client.complete_many(requests)
        finally:
            await client.aclose()

    return asyncio.run(run())
