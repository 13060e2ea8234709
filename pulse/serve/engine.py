"""The transformers engine: a LLaVA-NeXT checkpoint, chat messages in, generated text out.

No Serve here: ``ModelServer`` (``pulse.serve.server``) wraps it with batching and HTTP.
Greedy requests are generated together in one left-padded ``generate()`` call; a request
with its own sampling settings or seed runs alone so its output does not depend on what it
was batched with. Per-row limits (``max_tokens``, stop strings, cancellation, deadline)
are enforced by one stopping criterion that marks each row finished independently.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pulse.models.tiny_llava import load_pretrained_dir

DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


@dataclass
class Prepared:
    """One request ready for the model: chat prompt text, decoded images, sampling settings."""

    prompt: str
    images: list[Any]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    deadline: float = float("inf")
    cancel: threading.Event | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class Generation:
    """What came out: text, OpenAI finish reason (``stop``/``length``, or ``timeout``/``cancelled``), tokens."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def truncate_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """``text`` cut before the earliest stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class RowStopper:
    """A transformers stopping criterion that finishes each row on its own terms."""

    def __init__(self, prompt_len: int, rows: list[Prepared], eos_ids: set[int], decode: Callable):
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
            reason = None
            if (n and int(new[i, -1]) in self.eos_ids) or (
                row.stop and truncate_at_stop(self.decode(new[i]), row.stop)[1]
            ):
                reason = "stop"
            elif n >= row.max_tokens:
                reason = "length"
            elif row.cancel is not None and row.cancel.is_set():
                reason = "cancelled"
            elif now > row.deadline:
                reason = "timeout"
            if reason:
                self.finished_at[i], self.reasons[i] = n, reason
        done = [f is not None for f in self.finished_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class TransformersEngine:
    """Loads a HF LLaVA-NeXT folder (or hub id) once; generates for batches of ``Prepared`` requests."""

    def __init__(
        self, checkpoint: str, device: str = "cpu", dtype: str = "float32", torch_threads: int | None = None
    ):
        import torch

        if torch_threads:
            torch.set_num_threads(torch_threads)
        torch_dtype = getattr(torch, DTYPES[dtype]) if dtype in DTYPES else "auto"
        self.model, self.processor = load_pretrained_dir(checkpoint, dtype=torch_dtype)
        self.model.to(device)
        self.device = device
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos if eos is not None else self.tokenizer.eos_token_id]
        self.eos_ids = {int(e) for e in eos if e is not None}
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = next(iter(self.eos_ids))

    def render_prompt(self, messages: list[dict[str, Any]]) -> str:
        """llava_v1 prompt text from chat messages (images as ``{"type": "image"}`` parts)."""
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def encode(self, rows: list[Prepared]):
        images = [img for row in rows for img in row.images]
        inputs = self.processor(
            images=images or None,
            text=[row.prompt for row in rows],
            padding=len(rows) > 1,
            # The chat template already renders the BOS token; don't let the tokenizer add a second.
            add_special_tokens=False,
            return_tensors="pt",
        )
        return inputs.to(self.device)

    def _decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def generate(self, rows: list[Prepared], streamer=None) -> list[Generation]:
        """Generate for rows that share sampling settings (all greedy, or one sampled row)."""
        import torch

        inputs = self.encode(rows)
        prompt_len = inputs["input_ids"].shape[1]
        stopper = RowStopper(prompt_len, rows, self.eos_ids, self._decode)
        sampling: dict[str, Any] = {"do_sample": False}
        if not rows[0].greedy:
            sampling = {
                "do_sample": True,
                "temperature": rows[0].temperature,
                "top_p": rows[0].top_p,
                "top_k": 0,
            }
            if rows[0].seed is not None:
                torch.manual_seed(rows[0].seed)
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=max(row.max_tokens for row in rows),
                stopping_criteria=[stopper],
                pad_token_id=self.pad_id,
                streamer=streamer,
                **sampling,
            )
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        results = []
        for i, row in enumerate(rows):
            new = output[i, prompt_len:]
            end = stopper.finished_at[i] if stopper.finished_at[i] is not None else new.shape[0]
            new = new[:end]
            reason = stopper.reasons[i] or ("length" if end >= row.max_tokens else "stop")
            text, hit = truncate_at_stop(self._decode(new), row.stop)
            results.append(Generation(text, "stop" if hit else reason, int(prompt_tokens[i]), int(end)))
        return results

    def generate_many(self, rows: list[Prepared]) -> list[Generation]:
        """Any mix of rows: greedy ones in one batched call, sampled ones each on their own."""
        results: list[Generation | None] = [None] * len(rows)
        greedy = [i for i, row in enumerate(rows) if row.greedy]
        if greedy:
            for i, result in zip(greedy, self.generate([rows[i] for i in greedy]), strict=True):
                results[i] = result
        for i, row in enumerate(rows):
            if not row.greedy:
                results[i] = self.generate([row])[0]
        return [r for r in results if r is not None]


class TokenStreamer:
    """A transformers streamer that hands each new token id to ``on_token`` (skips the prompt)."""

    def __init__(self, on_token: Callable[[int], None], on_end: Callable[[], None]):
        self.on_token = on_token
        self.on_end = on_end
        self._prompt_seen = False

    def put(self, value) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.on_token(int(token))

    def end(self) -> None:
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
        text = self.decode(self.ids)
        text, hit = truncate_at_stop(text, self.stops)
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
