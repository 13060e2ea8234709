"""Per-row stopping and token streaming for the transformers engine.

``RowStopper`` is the one stopping criterion: each row of a batch finishes on its own terms
(EOS, a stop string, ``max_tokens``, cancellation, deadline). ``TokenStreamer`` hands each
new token id to a callback; ``IncrementalDecoder`` turns those ids into text deltas that
never split a UTF-8 character or leak the start of a stop string.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pulse.llm.base import ChatRequest, truncate_at_stop


class RowStopper:
    """A transformers stopping criterion that finishes each row on its own terms."""

    def __init__(self, prompt_len: int, rows: list[ChatRequest], eos_ids: set[int], decode: Callable):
        self.prompt_len = prompt_len
        self.rows = rows
        self.eos_ids = eos_ids
        self.decode = decode
        self.finished_at: list[int | None] = [None] * len(rows)
        self.reasons: list[str | None] = [None] * len(rows)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        new = input_ids[:, self.prompt_len :]
        n = new.shape[1]
        now = time.monotonic()
        for i, row in enumerate(self.rows):
            if self.finished_at[i] is not None:
                continue
            stops = row.params.stop
            reason = None
            if (n and int(new[i, -1]) in self.eos_ids) or (
                stops and truncate_at_stop(self.decode(new[i]), stops)[1]
            ):
                reason = "stop"
            elif n >= row.params.max_tokens:
                reason = "length"
            else:
                reason = row.stop_reason(now)
            if reason:
                self.finished_at[i], self.reasons[i] = n, reason
        done = [f is not None for f in self.finished_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class TokenStreamer:
    """A transformers streamer that hands each new token id to ``on_token`` (skips the prompt).

    ``end`` runs ``on_end`` once, however often it is called (the engine also ends a stream
    whose request never reached the model).
    """

    def __init__(self, on_token: Callable[[int], None], on_end: Callable[[], None]):
        self.on_token = on_token
        self.on_end = on_end
        self._prompt_seen = False
        self._ended = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.on_token(int(token))

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self.on_end()


class IncrementalDecoder:
    """Turns a growing token list into text deltas; holds back partial UTF-8 and stop-string prefixes."""

    def __init__(self, decode: Callable[[list[int]], str], stops: list[str], eos_ids: set[int]):
        self.decode = decode
        self.stops = stops
        self.eos_ids = eos_ids
        self.ids: list[int] = []
        self.sent = 0
        self.stopped = False

    def feed(self, token: int) -> str:
        if self.stopped or token in self.eos_ids:
            self.stopped = self.stopped or token in self.eos_ids
            return ""
        self.ids.append(token)
        text, hit = truncate_at_stop(self.decode(self.ids), self.stops)
        if hit:
            self.stopped = True
            return self._emit(text)
        if text.endswith("\ufffd"):
            return ""
        hold = max((len(s) - 1 for s in self.stops), default=0)
        return self._emit(text[: len(text) - hold] if hold else text)

    def flush(self) -> str:
        if self.stopped:
            return ""
        text, _ = truncate_at_stop(self.decode(self.ids), self.stops)
        return self._emit(text.rstrip("\ufffd"))

    def _emit(self, text: str) -> str:
        delta = text[self.sent :]
        self.sent = max(self.sent, len(text))
        return delta
