"""The engine-independent half of the LLM seam: requests, results, and the row contract.

``preprocess(row)`` returns the row plus ``messages`` (OpenAI chat messages; content a
string or a list of ``text`` / ``image_url`` parts) and ``sampling_params``
(``max_tokens``, ``temperature``, optional ``top_p``, ``stop``, ``seed``).
``postprocess(row)`` gets that row plus ``generated_text`` (``None`` on failure),
``llm_error`` (``"<reason>: <detail>"`` or ``None``) and ``usage``
(``prompt_tokens``, ``completion_tokens``) and returns the output row.

Between the two, the request travels as one JSON string column so that rows whose
messages differ in shape (text vs. image parts) never have to share an Arrow type.
A preprocess that raises, or returns no ``messages``, turns into an ``llm_error`` the
postprocess sees; it never stops the job.
"""

from __future__ import annotations

import json
import math
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from pulse.llm.config import SamplingParams

MESSAGES = "messages"
SAMPLING_PARAMS = "sampling_params"
GENERATED_TEXT = "generated_text"
LLM_ERROR = "llm_error"
USAGE = "usage"
REQUEST_COLUMN = "_llm_request"

# The row tasks around the engine are capped on purpose (see apply_request_udf); Ray Data warns
# about the cap whenever a dataset has fewer blocks than it, which is noise for small jobs.
warnings.filterwarnings(
    "ignore",
    message=r"The maximum number of concurrent tasks for 'Map\((encode_request_row|finish_row)\)'",
    category=UserWarning,
)
RESPONSE_COLUMN = "_llm_response"

Row = dict[str, Any]
RowFn = Callable[[Row], Row]


CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
"""The error reason of a prompt (plus ``max_tokens``) longer than the model's context; the
endpoint answers it with 400 ``context_length_exceeded``, like OpenAI and vLLM."""
STOPPED_EARLY = frozenset({"timeout", "cancelled"})
"""Finish reasons of a request that ended before ``stop``/``length``: its deadline passed or
its caller went away (before prefill, or between tokens)."""


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to run: OpenAI-style messages plus validated sampling settings.

    ``messages`` content is a string or a list of ``text``, ``image_url`` (a ``data:`` URL the
    engine decodes) and ``image`` parts (placeholders for ``images``, already decoded, in order:
    the endpoint decodes and checks images before they reach the model). ``deadline`` is a
    ``time.monotonic()`` value and ``cancel`` an event the caller sets when it goes away; both
    are checked before prefill and after every token.
    """

    messages: list[dict[str, Any]]
    params: SamplingParams = field(default_factory=SamplingParams)
    images: tuple[Any, ...] = ()
    deadline: float = math.inf
    cancel: threading.Event | None = None

    def stop_reason(self, now: float | None = None) -> str | None:
        """``cancelled`` or ``timeout`` if this request should not (or no longer) run."""
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if (time.monotonic() if now is None else now) > self.deadline:
            return "timeout"
        return None


@dataclass(frozen=True)
class ChatResult:
    """What an engine returns for one request: text or an error, plus token counts.

    ``finish_reason`` is OpenAI's ``stop``/``length``, or ``timeout``/``cancelled`` (text so far),
    or ``error`` (``text`` is ``None`` and ``error`` is ``"<reason>: <detail>"``).
    """

    text: str | None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None

    @property
    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}

    @property
    def reason(self) -> str | None:
        """The error's reason code (``context_length_exceeded``, ``template_error``, ...) or ``None``."""
        return self.error.split(":", 1)[0] if self.error else None

    @classmethod
    def failed(cls, reason: str, detail: str) -> ChatResult:
        return cls(None, f"{reason}: {detail}", finish_reason="error")

    @classmethod
    def stopped(cls, reason: str) -> ChatResult:
        """A request that never reached the model: its deadline passed or it was cancelled."""
        return cls("", None, 0, 0, reason)


def truncate_at_stop(text: str, stops: list[str] | None) -> tuple[str, bool]:
    """``text`` cut before the earliest stop string, and whether one was found.

    The one stop trimming of every engine: generation may overshoot a stop string by a token.
    """
    cut = min((i for i in (text.find(s) for s in stops or [] if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def short(text: object, limit: int = 300) -> str:
    """One line of at most ``limit`` characters for an error detail."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def make_request(messages: Any, sampling_params: Any) -> ChatRequest | ChatResult:
    """Validate one row's messages and sampling params; a failed check is an error result."""
    if not messages:
        return ChatResult.failed("no_messages", "preprocess returned no messages")
    messages = plain(messages)
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and "role" in m and "content" in m for m in messages
    ):
        return ChatResult.failed("bad_messages", "expected a list of {role, content} dicts")
    try:
        params = SamplingParams.model_validate(plain(sampling_params) or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return ChatResult.failed("bad_sampling_params", f"{where}: {first['msg']}")
    return ChatRequest(messages=messages, params=params)


def plain(value: Any) -> Any:
    """Ray Data hands list columns over as numpy arrays; make them JSON-able Python."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def encode_request_row(row: Row, preprocess: RowFn) -> Row:
    """Run ``preprocess`` and pack its messages + sampling params into the request column."""
    try:
        out = dict(preprocess(dict(row)))
    except Exception as exc:  # a bad row must not stop the job
        out = dict(row)
        out.pop(MESSAGES, None)
        out.pop(SAMPLING_PARAMS, None)
        out[REQUEST_COLUMN] = json.dumps({"error": f"preprocess_error: {short(repr(exc))}"})
        return out
    messages = out.pop(MESSAGES, None)
    sampling = out.pop(SAMPLING_PARAMS, None)
    out[REQUEST_COLUMN] = json.dumps(
        {MESSAGES: plain(messages), SAMPLING_PARAMS: plain(sampling)}, default=str
    )
    return out


def decode_request(payload: str | None) -> ChatRequest | ChatResult:
    """The request encoded by ``encode_request_row``, or the error result it already carries."""
    try:
        data = json.loads(payload) if payload else {}
    except json.JSONDecodeError as exc:
        return ChatResult.failed("bad_request", short(exc))
    if data.get("error"):
        return ChatResult(None, data["error"])
    return make_request(data.get(MESSAGES), data.get(SAMPLING_PARAMS))


def encode_result(result: ChatResult) -> str:
    return json.dumps({"text": result.text, "error": result.error, USAGE: result.usage}, ensure_ascii=False)


def finish_row(row: Row, postprocess: RowFn) -> Row:
    """Unpack request + response, hand the row to ``postprocess``; its crash becomes ``error``."""
    out = dict(row)
    request = json.loads(out.pop(REQUEST_COLUMN, None) or "{}")
    response = json.loads(out.pop(RESPONSE_COLUMN, None) or "{}")
    out[MESSAGES] = request.get(MESSAGES)
    out[SAMPLING_PARAMS] = request.get(SAMPLING_PARAMS)
    return call_postprocess(
        out,
        text=response.get("text"),
        error=response.get("error") or request.get("error"),
        usage=response.get(USAGE),
        postprocess=postprocess,
    )


def call_postprocess(
    row: Row, text: str | None, error: str | None, usage: dict | None, postprocess: RowFn
) -> Row:
    """Attach the contract's output fields and run ``postprocess`` safely."""
    row[GENERATED_TEXT] = None if error else text
    row[LLM_ERROR] = error or None
    row[USAGE] = {
        "prompt_tokens": int((usage or {}).get("prompt_tokens") or 0),
        "completion_tokens": int((usage or {}).get("completion_tokens") or 0),
    }
    try:
        return postprocess(row)
    except Exception as exc:
        row["error"] = f"postprocess_error: {short(repr(exc))}"
        return row


def apply_request_udf(
    ds: Any, preprocess: RowFn, postprocess: RowFn, udf: type, udf_kwargs: dict, map_kwargs: dict
) -> Any:
    """preprocess (map) -> batched engine actor (map_batches over Arrow) -> postprocess (map)."""
    from functools import partial

    from ray.data import ActorPoolStrategy, TaskPoolStrategy

    concurrency = map_kwargs.pop("concurrency")
    # Bounded row tasks: unbounded 0.1-CPU tasks make Ray spawn a swarm of worker processes whose
    # start-up competes with the engine actors' model load (on 2 cores: 28 s load instead of 10 s).
    row_tasks = 2 * concurrency
    ds = ds.map(
        partial(encode_request_row, preprocess=preprocess),
        num_cpus=0.1,
        compute=TaskPoolStrategy(size=row_tasks),
    )
    ds = ds.map_batches(
        udf,
        fn_constructor_kwargs=udf_kwargs,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=concurrency),
        udf_modifying_row_count=False,
        **map_kwargs,
    )
    return ds.map(
        partial(finish_row, postprocess=postprocess), num_cpus=0.1, compute=TaskPoolStrategy(size=row_tasks)
    )


def run_table(table: Any, generate: Callable[[list[ChatRequest]], list[ChatResult]]) -> Any:
    """Decode a batch's requests, generate the valid ones, append the response column."""
    import pyarrow as pa

    decoded = [decode_request(p) for p in table.column(REQUEST_COLUMN).to_pylist()]
    todo = [i for i, d in enumerate(decoded) if isinstance(d, ChatRequest)]
    results: list[ChatResult | None] = [d if isinstance(d, ChatResult) else None for d in decoded]
    if todo:
        try:
            generated = generate([decoded[i] for i in todo])
        except Exception as exc:  # an engine fault fails this batch's rows, not the job
            generated = [ChatResult.failed("engine_error", short(repr(exc)))] * len(todo)
        for i, res in zip(todo, generated, strict=True):
            results[i] = res
    encoded = [encode_result(r) for r in results if r is not None]
    if RESPONSE_COLUMN in table.column_names:
        table = table.drop_columns([RESPONSE_COLUMN])
    return table.append_column(RESPONSE_COLUMN, pa.array(encoded, pa.string()))
