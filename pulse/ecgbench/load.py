"""Load ECGBench subsets from the HF Parquet release or the converted JSON layout, local or S3.

Accepted sources for a subset:

- the HF release root (``<root>/<config>/test-00000-of-00001.parquet``) or that Parquet file;
- the converted layout: ``<root>/<config>.json`` or that file, a JSON list of
  ``{id, image, conversations}`` (``conversation`` with ``user``/``assistant`` roles, as in the PULSE
  repo's report file, is accepted too) with image paths relative to the JSON's folder.

Every item is normalised to ``{id, subset, image, image_path, question, answer, turns}``:
``question``/``answer`` are the first turn (``answer`` is a list for ``ecgqa-test``), ``turns`` all
question/answer pairs (the arena's follow-ups). ``image`` holds bytes when the source has them inline.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from pulse import io
from pulse.ecgbench.own_items import read_manifest
from pulse.ecgbench.subsets import DEFAULT_ROOT, HF_REPO, OWN_PREFIX, SUBSETS, Subset, get_subset

IMAGE_TOKEN = "<image>"
HF_SHARD = "test-00000-of-00001.parquet"


class SubsetSizeError(ValueError):
    """A subset does not have its published number of items."""


class SubsetMismatchError(ValueError):
    """The file holds items of another subset than the one asked for."""


def download_hint(root: str = DEFAULT_ROOT) -> str:
    """The command that puts the HF release under ``root`` (remote roots: download, then copy)."""
    local = DEFAULT_ROOT if io.is_remote(root) else root
    copy = f" and copy it to {root}" if io.is_remote(root) else ""
    return (
        f"download it with `pulse ecgbench download --local-dir {local}` (or `hf download {HF_REPO} "
        f"--repo-type dataset --local-dir {local}`){copy}"
    )


def strip_image_token(text: str) -> str:
    """The question without LLaVA's ``<image>`` placeholder (PULSE removes ``"<image>\\n"``)."""
    return text.replace(IMAGE_TOKEN + "\n", "").replace(IMAGE_TOKEN, "").strip()


def _turn_text(value: Any) -> Any:
    # ecgqa-test stores every value as list<string>; a one-element human question is still a string.
    if isinstance(value, list | tuple):
        return list(value)
    return "" if value is None else str(value)


def _pair_turns(conversations: list[dict]) -> list[dict]:
    if conversations and "question" in conversations[0]:
        return [
            {"question": strip_image_token(str(t["question"])), "answer": t.get("answer")}
            for t in conversations
        ]
    turns: list[dict] = []
    for turn in conversations:
        role = turn.get("from") or turn.get("role")
        value = _turn_text(turn.get("value"))
        if role in ("human", "user"):
            question = value if isinstance(value, str) else "\n".join(value)
            turns.append({"question": strip_image_token(question), "answer": None})
        elif role in ("gpt", "assistant") and turns:
            turns[-1]["answer"] = value
    return turns


def normalise_item(row: dict, subset: str, image_root: str | None = None) -> dict:
    """One raw row (either layout) as a normalised item."""
    conversations = row.get("conversations")
    if conversations is None:
        conversations = row.get("conversation") or []
    turns = _pair_turns(list(conversations))
    image = row.get("image")
    image_bytes, image_path = None, row.get("image_path")
    if isinstance(image, dict):
        image_bytes = image.get("bytes")
        image_path = image_path or image.get("path")
    elif isinstance(image, bytes | bytearray):
        image_bytes = bytes(image)
    elif isinstance(image, str) and image:
        image_path = image
        if image_root is not None and not io.is_remote(image) and not image.startswith("/"):
            image_path = io.join(image_root, image)
    if subset == "ecgqa-test" and turns and isinstance(turns[0]["answer"], str):
        turns[0]["answer"] = [turns[0]["answer"]]
    return {
        "id": str(row["id"]),
        "subset": subset,
        "image": image_bytes,
        "image_path": image_path,
        "question": turns[0]["question"] if turns else "",
        "answer": turns[0]["answer"] if turns else None,
        "turns": turns,
    }


def _parent(path: str) -> str:
    return posixpath.dirname(path if io.is_remote(path) else io.filesystem(path)[1])


def _read_json_rows(path: str, storage: io.StorageOptions | None) -> list[dict]:
    text = io.read_text(path, storage)
    if path.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    data = json.loads(text)
    if isinstance(data, dict) and "rows" in data:  # the fixture excerpts wrap rows with a _source key
        data = data["rows"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of {{id, image, conversations}} rows")
    return data


def resolve_source(source: str, subset: str, storage: io.StorageOptions | None = None) -> str:
    """The file holding ``subset`` under ``source`` (a file is returned as is)."""
    if source.endswith((".parquet", ".json", ".jsonl")):
        return source
    for candidate in (io.join(source, subset, HF_SHARD), io.join(source, f"{subset}.json")):
        if io.exists(candidate, storage):
            return candidate
    shards = io.list_files(io.join(source, subset), "*.parquet", storage)
    if shards:
        return shards[0]
    if subset.startswith(OWN_PREFIX):
        hint = f"build your own items there with `pulse ecgbench items --out {source}`"
    else:
        hint = download_hint(source)
    raise FileNotFoundError(
        f"{subset}: no {subset}/{HF_SHARD} or {subset}.json under {source} (HF or converted layout); {hint}"
    )


def subset_spec(source: str, subset: str, storage: io.StorageOptions | None = None) -> Subset:
    """The ``Subset`` that scores ``subset``: an ECGBench config, or an own subset from its manifest."""
    if subset in SUBSETS or not subset.startswith(OWN_PREFIX):
        return get_subset(subset)
    folder = _parent(resolve_source(str(source), subset, storage))
    specs = read_manifest(folder, storage)
    if subset not in specs:
        raise ValueError(f"{subset}: not in {folder}'s subsets.json (has {sorted(specs)})")
    return specs[subset]


def _check_subset(rows: list[dict], subset: str, path: str) -> None:
    foreign = [r for r in rows if r.get("subset") not in (None, subset)]
    if foreign:
        others = sorted({str(r["subset"]) for r in foreign})
        raise SubsetMismatchError(
            f"{path}: {len(foreign)} of {len(rows)} items are of subset {', '.join(others)}, not {subset} "
            f"(first: {foreign[0].get('id')}); pass --subset {others[0]}"
        )


def load_subset(
    source: str,
    subset: str,
    *,
    allow_partial: bool = False,
    storage: io.StorageOptions | None = None,
    image_root: str | None = None,
) -> list[dict]:
    """Normalised items of one subset; the published size is enforced unless ``allow_partial``.

    Args:
        source: HF release root, converted-layout root, or the subset's Parquet/JSON file (local or s3://).
        subset: ECGBench config name, or ``own-<dataset>`` (``pulse ecgbench items`` output).
        allow_partial: accept a different number of items (fixtures, own splits, smoke runs).
        storage: S3 options; default from the AWS environment variables.
        image_root: folder that converted-layout image paths are relative to (default: the JSON's folder).

    Raises:
        SubsetSizeError: the item count differs from the published size and ``allow_partial`` is off.
        SubsetMismatchError: the rows name another subset (``pulse ecgbench items`` output).
        FileNotFoundError: no such subset under ``source``; the message names the download command.
    """
    spec = subset_spec(str(source), subset, storage)
    path = resolve_source(str(source), subset, storage)
    if path.endswith(".parquet"):
        rows = io.read_parquet(path, storage).to_pylist()
        root = None
    else:
        rows = _read_json_rows(path, storage)
        root = image_root or _parent(path)
    _check_subset(rows, subset, path)
    items = [normalise_item(row, subset, root) for row in rows]
    if len(items) != spec.size and not allow_partial:
        raise SubsetSizeError(
            f"{subset}: expected the published {spec.size} items, found {len(items)} in {path} "
            "(pass --allow-partial to evaluate a partial subset)"
        )
    return items


def item_image_bytes(item: dict, storage: io.StorageOptions | None = None) -> bytes | None:
    """The item's image bytes: inline, or read from its path (local or S3); None when it has neither."""
    if item.get("image"):
        return item["image"]
    path = item.get("image_path")
    return io.read_bytes(path, storage) if path else None
