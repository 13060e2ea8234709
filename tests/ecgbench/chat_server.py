"""A tiny OpenAI-compatible chat server on 127.0.0.1 for ECGBench tests (real HTTP, in a thread).

It stands in for a model endpoint where pulse's own CPU endpoint would be too slow to answer
hundreds of test prompts; the client side under test (pulse.llm's http engine) is the real one.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

Answer = Callable[[list[dict]], "str | tuple[int, str]"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def question_of(messages: list[dict]) -> str:
    """The text of the last user message."""
    content = [m for m in messages if m["role"] == "user"][-1]["content"]
    if isinstance(content, str):
        return content
    return " ".join(part["text"] for part in content if part["type"] == "text")


class ChatServer:
    """Serves ``POST /v1/chat/completions`` with ``answer(messages)``; records every request body.

    ``answer`` returns the reply text, or ``(status, body)`` to send an error status.
    """

    def __init__(self, answer: Answer):
        self.answer = answer
        self.requests: list[dict] = []
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request):
            body = await request.json()
            self.requests.append(body)
            reply = self.answer(body["messages"])
            if isinstance(reply, tuple):
                return JSONResponse({"error": {"message": reply[1]}}, status_code=reply[0])
            return {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1},
            }

        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
