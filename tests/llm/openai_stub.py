"""A scripted OpenAI-compatible server on 127.0.0.1 for the http engine tests.

This is a fake on purpose: the thing under test is the client (retries, error rows,
concurrency, rate limits), and only a scripted server can return a 503 twice and then
a 200 on demand. The HTTP is real (aiohttp on a socket). The last user message picks the
behaviour:

- ``ok:<text>``                 200 with ``echo:<text>``
- ``flaky:<status>:<n>:<key>``  ``<status>`` for the first ``n`` attempts of ``key``, then 200
- ``always:<status>``           that status every time (400 JSON body, 500 ``text/plain``, ...)
- ``malformed``                 200 with a body that is not a completion
- ``sleep:<seconds>``           answer after sleeping (timeouts)

Every request waits ``latency_s`` first, so in-flight counts are observable.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter

from aiohttp import web


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StubOpenAIServer:
    def __init__(self, latency_s: float = 0.0):
        self.latency_s = latency_s
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.in_flight = 0
        self.max_in_flight = 0
        self.arrivals: list[float] = []
        self.attempts: Counter[str] = Counter()
        self.bodies: list[dict] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    def reset(self) -> None:
        with self._lock:
            self.max_in_flight = 0
            self.arrivals.clear()
            self.attempts.clear()
            self.bodies.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.arrivals.append(time.monotonic())
        try:
            await asyncio.sleep(self.latency_s)
            body = await request.json()
            with self._lock:
                self.bodies.append(body)
            return await self._respond(body)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _respond(self, body: dict) -> web.StreamResponse:
        prompt = body["messages"][-1]["content"]
        if isinstance(prompt, list):
            prompt = " ".join(p.get("text", "") for p in prompt)
        kind, _, rest = prompt.partition(":")
        if kind == "flaky":
            status, n, key = rest.split(":", 2)
            with self._lock:
                self.attempts[key] += 1
                attempt = self.attempts[key]
            if attempt <= int(n):
                return self._error(int(status))
            return self._completion(f"echo:{key} after {attempt}")
        if kind == "always":
            with self._lock:
                self.attempts[prompt] += 1
            return self._error(int(rest))
        if kind == "malformed":
            with self._lock:
                self.attempts[prompt] += 1
            return web.Response(status=200, text='{"choices": []}', content_type="application/json")
        if kind == "sleep":
            await asyncio.sleep(float(rest))
        return self._completion(f"echo:{rest}")

    @staticmethod
    def _error(status: int) -> web.Response:
        if status == 500:
            return web.Response(status=500, text="Internal Server Error", content_type="text/plain")
        if status == 429:
            return web.json_response(
                {"error": {"message": "Rate limit reached", "type": "rate_limit"}},
                status=429,
                headers={"Retry-After": "0"},
            )
        if status == 400:
            return web.json_response(
                {"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}},
                status=400,
            )
        return web.Response(status=status, text=json.dumps({"detail": f"status {status}"}))

    @staticmethod
    def _completion(text: str) -> web.Response:
        return web.json_response(
            {
                "id": "cmpl-stub",
                "object": "chat.completion",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": len(text.split())},
            }
        )

    def start(self) -> StubOpenAIServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            self._loop.run_until_complete(site.start())
            started.set()
            self._loop.run_forever()

        threading.Thread(target=serve, daemon=True, name="stub-openai").start()
        if not started.wait(10):
            raise RuntimeError("stub OpenAI server did not start")
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
