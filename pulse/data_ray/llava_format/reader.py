"""Stream LLaVA-format instruction data (ECGInstruct.json, LLaVA JSON arrays, JSONL) row by row.

A JSON array is never parsed whole: the file is read in chunks (local or ``s3://``) and each
element is decoded with ``json.JSONDecoder.raw_decode`` as soon as it is complete, so peak
memory is one chunk plus the largest row, whatever the file size. A JSONL file is read line by
line. An element that does not decode becomes an error record (``malformed_row``) and the
parser resynchronises at the next top-level ``{``; a nested object of the broken row may then
surface as a row of its own, which fails validation and is counted too. Nothing stops the read.

:func:`validate_record` turns one decoded record into the fields of ``INSTRUCTION_SCHEMA``
(task/qtype from ``metadata.subtask``/``metadata.type``, ``source`` from the row) or raises
:class:`RowError` with a reason from ``pulse.errors.REASONS``.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pulse import io
from pulse.data_ray.conversation import check_conversation as check_turns
from pulse.data_ray.stage import StageError
from pulse.schema import INSTRUCTION_SCHEMA

CHUNK_CHARS = 1 << 20
MAX_ROW_CHARS = 64 << 20
"""A row still incomplete after this many characters is declared malformed (bounds memory)."""
QTYPE_NAMES = {
    "multiple-choice": "mcq",
    "mcq": "mcq",
    "open-ended": "open",
    "open": "open",
    "close-ended": "close",
    "closed-ended": "close",
    "close": "close",
    "fill-in-the-blank": "fill",
    "fill": "fill",
}
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


class RowError(StageError):
    """A record that cannot become an instruction row; ``reason`` is what summaries count by."""


@dataclass
class RawRecord:
    """One element of the input: its position and either the decoded value or why it failed."""

    index: int
    value: Any = None
    error: str | None = None


def _text_chunks(stream, chunk_chars: int) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while True:
        data = stream.read(chunk_chars)
        if not data:
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
            return
        yield decoder.decode(data)


def _incomplete(exc: json.JSONDecodeError, buffer: str) -> bool:
    """Whether a decode error may just mean the element continues in the next chunk."""
    return exc.msg.startswith("Unterminated string") or exc.pos >= len(buffer) - 64


def iter_json_array(chunks: Iterator[str], max_row_chars: int = MAX_ROW_CHARS) -> Iterator[RawRecord]:
    """Elements of a top-level JSON array, decoded one at a time from text chunks."""
    buffer, pos, eof, index = "", 0, False, 0

    def more() -> bool:
        nonlocal buffer, pos, eof
        chunk = next(chunks, None)
        if chunk is None:
            eof = True
            return False
        buffer = buffer[pos:] + chunk
        pos = 0
        return True

    def skip(chars: str) -> None:
        nonlocal pos
        while True:
            while pos < len(buffer) and buffer[pos] in chars:
                pos += 1
            if pos < len(buffer) or not more():
                return

    skip(_WHITESPACE)
    if pos >= len(buffer) or buffer[pos] != "[":
        yield RawRecord(0, error="malformed_row: input is not a JSON array")
        return
    pos += 1
    while True:
        skip(_WHITESPACE + ",")
        if pos >= len(buffer) or buffer[pos] == "]":
            return
        try:
            value, end = _DECODER.raw_decode(buffer, pos)
        except json.JSONDecodeError as exc:
            if not eof and _incomplete(exc, buffer) and len(buffer) - pos < max_row_chars:
                more()
                continue
            yield RawRecord(index, error=f"malformed_row: element {index}: {exc.msg} at char {exc.pos - pos}")
            index += 1
            # Resynchronise at the next object start after the failure point.
            found = buffer.find("{", max(exc.pos, pos + 1))
            while found < 0:
                pos = len(buffer)
                if not more():
                    return
                found = buffer.find("{")
            pos = found
            continue
        if end >= len(buffer) and not eof:  # a number or literal may continue in the next chunk
            more()
            continue
        yield RawRecord(index, value)
        index += 1
        pos = end
        skip(_WHITESPACE)
        if pos < len(buffer) and buffer[pos] not in ",]":
            yield RawRecord(index, error=f"malformed_row: element {index}: expected ',' or ']'")
            index += 1
            found = buffer.find("{", pos)
            pos = found if found >= 0 else len(buffer)


def iter_json_lines(chunks: Iterator[str]) -> Iterator[RawRecord]:
    """One record per non-empty line."""
    pending, index = "", 0
    for chunk in chunks:
        lines = (pending + chunk).split("\n")
        pending = lines.pop()
        for line in lines:
            if line.strip():
                yield _decode_line(line, index)
                index += 1
    if pending.strip():
        yield _decode_line(pending, index)


def _decode_line(line: str, index: int) -> RawRecord:
    try:
        return RawRecord(index, json.loads(line))
    except json.JSONDecodeError as exc:
        return RawRecord(index, error=f"malformed_row: line {index + 1}: {exc.msg}")


def iter_records(
    path: str, storage: io.StorageOptions | None = None, chunk_chars: int = CHUNK_CHARS
) -> Iterator[RawRecord]:
    """Records of a LLaVA JSON array or JSONL file (chosen by the first non-blank character)."""
    fs, inner = io.filesystem(path, storage)
    with fs.open_input_stream(inner) as stream:
        chunks = _text_chunks(stream, chunk_chars)
        first = ""
        while not first.lstrip("\ufeff" + _WHITESPACE):
            chunk = next(chunks, None)
            if chunk is None:
                break
            first += chunk
        stream_chunks = _chain(first, chunks)
        if first.lstrip("\ufeff" + _WHITESPACE).startswith("["):
            yield from iter_json_array(stream_chunks)
        else:
            yield from iter_json_lines(stream_chunks)


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first.lstrip("\ufeff")
    yield from rest


def _turns(conversations: Any) -> list[dict[str, str]]:
    if not isinstance(conversations, list) or not conversations:
        raise RowError("malformed_row", "conversations is not a non-empty list")
    turns = []
    for i, turn in enumerate(conversations):
        if not isinstance(turn, dict) or not isinstance(turn.get("from"), str):
            raise RowError("malformed_row", f"turn {i} is not {{from, value}}")
        value = turn.get("value")
        if not isinstance(value, str):
            raise RowError("malformed_row", f"turn {i} value is {type(value).__name__}, not a string")
        turns.append({"from": turn["from"], "value": value})
    return turns


def check_conversation(turns: list[dict[str, str]]) -> list[dict[str, str]]:
    """Validated turns, with the first turn's ``<image>`` moved to its start (the one check,
    ``pulse.data_ray.conversation``); raises :class:`RowError`."""
    return check_turns(turns, RowError)


def validate_record(value: Any, index: int, default_source: str | None) -> dict[str, Any]:
    """The instruction-row fields of one record (no image bytes yet); raises :class:`RowError`."""
    if not isinstance(value, dict):
        raise RowError("malformed_row", f"element {index} is a {type(value).__name__}, not an object")
    turns = check_conversation(_turns(value.get("conversations")))
    image = value.get("image")
    if isinstance(image, list) and len(image) == 1:
        image = image[0]
    if not isinstance(image, str) or not image.strip():
        raise RowError("missing_image", "row has no image path")
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    raw_type = metadata.get("type")
    qtype = QTYPE_NAMES.get(str(raw_type).lower(), str(raw_type)) if raw_type else None
    if qtype is None and len(turns) > 2:
        qtype = "multi-turn"
    return {
        **_known_row(value, index, image),
        "conversations": turns,
        "task": metadata.get("subtask") or metadata.get("task"),
        "qtype": qtype,
        "source": value.get("source") or default_source,
    }


def error_row(index: int, error: str, value: Any = None) -> dict[str, Any]:
    """An instruction row that carries only what is known of a bad record and its ``error``."""
    known = value if isinstance(value, dict) else {}
    image = known.get("image") if isinstance(known.get("image"), str) else None
    source = known.get("source") if isinstance(known.get("source"), str) else None
    return {**_known_row(known, index, image), "source": source, "error": error}


def _known_row(value: dict[str, Any], index: int, image: str | None) -> dict[str, Any]:
    """Every ``INSTRUCTION_SCHEMA`` field empty but the row's id and its image path."""
    row_id = value.get("id")
    return {
        **dict.fromkeys(INSTRUCTION_SCHEMA.names),
        "id": str(row_id) if row_id not in (None, "") else f"row-{index}",
        "record_id": image,
        "image_path": image,
    }
