"""``vllm.outputs`` of the test-only stand-in (see ``vllm/__init__.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    logprobs: Any = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool
    metrics: Any = None
    prompt_logprobs: Any = None


class PoolingRequestOutput:
    """Never produced: generation only."""
