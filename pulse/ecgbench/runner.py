"""Answer ECGBench items with any OpenAI-compatible endpoint, through Ray Data and ``pulse.llm``.

Single-turn items send one user message (the ECG as a ``data:`` URL image part, then the question),
greedy decoding and 1024 new tokens by default, as the paper does. Arena items run in rounds: each
follow-up carries the model's own earlier answers and the image only in turn 1. Bounded
concurrency, the global request rate, retries with backoff and per-row errors come from
``pulse.llm``'s ``http`` engine. Output is JSONL in the PULSE layout (``question_id``, ``prompt``,
``text``, ``answer_id``, ``model_id``, ``metadata``; arena rows add ``golden_convs`` and
``predict_convs``). Rerunning skips the items already answered; error rows are retried, and the
final ones are also written to ``errors/`` beside the output.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from functools import partial

from pydantic import Field

from pulse import io
from pulse.ecgbench.load import item_image_bytes
from pulse.errors import error_text
from pulse.llm.config import HttpEngineConfig
from pulse.summary import StageSummary

IMAGE_MIME = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"RIFF": "image/webp"}


class MissingImageError(ValueError):
    """Items without any image (neither bytes nor a path): every ECGBench question is about one."""


def check_images(items: list[dict]) -> None:
    """Refuse items that have neither image bytes nor an image path, before any request is sent."""
    missing = [item["id"] for item in items if not item.get("image") and not item.get("image_path")]
    if missing:
        subset = items[0].get("subset") if items else None
        raise MissingImageError(
            f"{subset}: {len(missing)} of {len(items)} items have no image (first: {missing[:3]}); "
            "nothing was sent (rebuild own items with `pulse ecgbench items`)"
        )


class EndpointConfig(HttpEngineConfig):
    """One model behind an OpenAI-compatible endpoint: ``pulse.llm``'s http engine (every option of it:
    concurrency, rate, retries, headers) plus the model's label and its decoding settings.

    Attributes:
        name: label of the model in results, tables and plots.
        base_url: up to and including ``/v1``.
        model: model name sent in each request.
        api_key_env: environment variable holding the API key (never the key itself).
    """

    name: str = Field(..., min_length=1)
    max_tokens: int = Field(1024, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    max_concurrent_requests: int = Field(8, ge=1)
    timeout_s: float = Field(300.0, gt=0)
    batch_size: int = Field(16, ge=1)

    def engine(self) -> HttpEngineConfig:
        """The ``pulse.llm`` http engine config for this endpoint."""
        return HttpEngineConfig(**self.model_dump(include=set(HttpEngineConfig.model_fields)))


def data_url(image: bytes) -> str:
    """The image as a ``data:`` URL (PNG/JPEG/WEBP sniffed from its magic bytes)."""
    mime = next((m for magic, m in IMAGE_MIME.items() if image.startswith(magic)), "image/png")
    return f"data:{mime};base64,{base64.b64encode(image).decode()}"


def turn_messages(image: bytes | None, questions: list[str], answers: list[str]) -> list[dict]:
    """Chat messages for the next turn: the image only in turn 1, earlier answers as assistant turns."""
    messages: list[dict] = []
    for i, question in enumerate(questions):
        content: list[dict] = []
        if i == 0 and image:
            content.append({"type": "image_url", "image_url": {"url": data_url(image)}})
        content.append({"type": "text", "text": question})
        messages.append({"role": "user", "content": content})
        if i < len(answers):
            messages.append({"role": "assistant", "content": answers[i]})
    return messages


def _preprocess(row: dict, max_tokens: int, temperature: float) -> dict:
    state = json.loads(row["state"])
    return {
        **row,
        "messages": turn_messages(row["image"], state["questions"], state["answers"]),
        "sampling_params": {"max_tokens": max_tokens, "temperature": temperature},
    }


def _postprocess(row: dict) -> dict:
    text = row.get("generated_text")
    return {"id": row["id"], "text": (text or "").strip(), "error": row.get("llm_error") or row.get("error")}


def _generate_round(rows: list[dict], endpoint: EndpointConfig, progress: str | None) -> dict[str, dict]:
    """One request per row through Ray Data; returns ``{id: {text, error}}``."""
    import ray.data
    from tqdm import tqdm

    from pulse.llm import apply_llm

    ds = ray.data.from_items(rows)
    ds = apply_llm(
        ds,
        endpoint.engine(),
        partial(_preprocess, max_tokens=endpoint.max_tokens, temperature=endpoint.temperature),
        _postprocess,
    )
    out: dict[str, dict] = {}
    bar = tqdm(total=len(rows), desc=progress, disable=progress is None, unit="item")
    for row in ds.select_columns(["id", "text", "error"]).iter_rows():
        out[row["id"]] = {"text": row["text"], "error": row["error"]}
        bar.update(1)
    bar.close()
    return out


def read_answers(path: str, storage: io.StorageOptions | None = None) -> dict[str, dict]:
    """Existing answer rows by ``question_id`` (an absent file is no answers)."""
    if not io.exists(path, storage):
        return {}
    rows = [json.loads(line) for line in io.read_text(path, storage).splitlines() if line.strip()]
    return {str(r["question_id"]): r for r in rows}


def answer_row(item: dict, endpoint: EndpointConfig, texts: list[str], error: str | None) -> dict:
    """A PULSE-layout answer row (arena rows carry both conversations)."""
    row = {
        "question_id": item["id"],
        "prompt": item["question"],
        "text": texts[0] if texts else "",
        "answer_id": uuid.uuid4().hex[:22],
        "model_id": endpoint.name,
        "metadata": {"subset": item.get("subset"), "error": error},
    }
    if len(item["turns"]) > 1:
        row["golden_convs"] = [{"question": t["question"], "answer": t["answer"]} for t in item["turns"]]
        row["predict_convs"] = [
            {"question": t["question"], "answer": a} for t, a in zip(item["turns"], texts, strict=False)
        ]
    return row


def run_items(
    items: list[dict],
    endpoint: EndpointConfig,
    out_jsonl: str,
    storage: io.StorageOptions | None = None,
    progress: bool = True,
) -> str:
    """Answer every item not yet answered in ``out_jsonl``; returns the path.

    Args:
        items: normalised items (``load.load_subset`` or ``own_items.build_items``).
        endpoint: the model to ask.
        out_jsonl: predictions file (local or s3://); rows without an error are kept and skipped.
        storage: S3 options.
        progress: show a progress bar per round.

    Raises:
        MissingImageError: some items have no image at all (nothing is sent); an image path that
            cannot be read is that item's error row instead (``missing_image`` / ``unreadable_file``, the
            reasons of ``pulse.errors``; the endpoint's own reasons come from ``pulse.llm``).
    """
    check_images(items)
    started = time.time()
    existing = read_answers(out_jsonl, storage)
    done = {qid: row for qid, row in existing.items() if not (row.get("metadata") or {}).get("error")}
    todo = [item for item in items if item["id"] not in done]
    state = {item["id"]: {"texts": [], "error": None, "image": None} for item in todo}
    for item in todo:
        try:
            state[item["id"]]["image"] = item_image_bytes(item, storage)
        except Exception as exc:  # a missing or unreadable image is this item's error row
            reason = "missing_image" if isinstance(exc, FileNotFoundError) else "unreadable_file"
            state[item["id"]]["error"] = error_text(reason, f"{type(exc).__name__}: {exc}")
    max_turns = max((len(item["turns"]) for item in todo), default=0)
    for turn in range(max_turns):
        rows = []
        for item in todo:
            st = state[item["id"]]
            if turn >= len(item["turns"]) or st["error"]:
                continue
            questions = [t["question"] for t in item["turns"][: turn + 1]]
            history = json.dumps({"questions": questions, "answers": st["texts"]})
            rows.append({"id": item["id"], "image": st["image"], "state": history})
        if not rows:
            break
        label = f"{endpoint.name} turn {turn + 1}" if max_turns > 1 else endpoint.name
        for qid, result in _generate_round(rows, endpoint, label if progress else None).items():
            if result["error"]:
                state[qid]["error"] = result["error"]
            else:
                state[qid]["texts"].append(result["text"])
    by_id = {**done}
    for item in todo:
        st = state[item["id"]]
        by_id[item["id"]] = answer_row(item, endpoint, st["texts"], st["error"])
    ordered = [by_id[item["id"]] for item in items if item["id"] in by_id]
    io.write_text(out_jsonl, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered), storage)
    errors = [r for r in ordered if r["metadata"].get("error")]
    error_path = _errors_path(out_jsonl)
    if errors:
        io.write_text(error_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in errors), storage)
    elif io.exists(error_path, storage):
        io.delete(error_path, storage)
    summary = StageSummary.from_errors(
        f"ecgbench run {endpoint.name}",
        [r["metadata"].get("error") for r in ordered],
        outputs={"predictions": out_jsonl, **({"errors": error_path} if errors else {})},
        seconds=time.time() - started,
        extra={"answered_before": len(done), "requested": len(todo)},
    )
    summary.print()
    return out_jsonl


def _errors_path(out_jsonl: str) -> str:
    base, _, name = out_jsonl.replace("\\", "/").rpartition("/")
    return io.join(base or ".", "errors", name)
