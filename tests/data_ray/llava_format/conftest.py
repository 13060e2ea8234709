"""An ECGInstruct-format fixture written by the tests: a JSON array plus two image shards.

Good single-turn and multi-turn rows (images split across ``shard_0.tar`` and ``shard_1.tar.gz``,
paths like ECGInstruct's), and one row of each bad kind with the reason it must be counted by.
"""

from __future__ import annotations

import io as _stdio
import json
import tarfile
from pathlib import Path

import pytest

from pulse.train_ray.synthetic import heart_rate_rows

N_GOOD = 12
BAD_REASONS = {
    "bad-missing-image": "missing_image",
    "bad-corrupt-image": "corrupt_image",
    "bad-no-image-token": "missing_image_token",
    "bad-not-alternating": "bad_conversation",
    "bad-empty-answer": "empty_answer",
    "bad-turn-type": "malformed_row",
    "bad-not-object": "malformed_row",
}


def ecginstruct_rows(n_good: int = N_GOOD, seed: int = 3) -> tuple[list, dict[str, bytes]]:
    """(JSON records, image path -> PNG bytes); every third good row is multi-turn."""
    records, images = [], {}
    for i, row in enumerate(heart_rate_rows(n_good, seed=seed)):
        path = f"ptb-xl/fix_header_aug_all_papersize_layout/{i:05d}_hr-0.png"
        images[path] = row["image"]
        turns = [dict(t) for t in row["conversations"]]
        if i % 3 == 0:
            turns += [{"from": "human", "value": "Is the rhythm regular?"}, {"from": "gpt", "value": "yes"}]
        if i == 1:  # LLaVA style: the image token at the end of the first turn
            turns[0]["value"] = turns[0]["value"].removeprefix("<image>\n") + "\n<image>"
        records.append(
            {
                "id": f"ptb-xl-{i:05d}",
                "image": path,
                "conversations": turns,
                "metadata": {"subtask": "rhythm", "type": "close-ended"},
                "source": "PTB-XL",
            }
        )
    good = records[0]
    images["ptb-xl/broken/corrupt.png"] = images[good["image"]][:50]

    def bad(row_id: str, **changes) -> dict:
        return {**good, "id": row_id, **changes}

    human, answer = good["conversations"][0], good["conversations"][1]
    records += [
        bad("bad-missing-image", image="ptb-xl/nowhere/missing.png"),
        bad("bad-corrupt-image", image="ptb-xl/broken/corrupt.png"),
        bad("bad-no-image-token", conversations=[{"from": "human", "value": "What rhythm?"}, answer]),
        bad("bad-not-alternating", conversations=[human, human, answer]),
        bad("bad-empty-answer", conversations=[human, {"from": "gpt", "value": "  "}]),
        bad("bad-turn-type", conversations=[human, {"from": "gpt", "value": ["a", "list"]}]),
        ["bad-not-object"],
    ]
    return records, images


def write_shards(images: dict[str, bytes], folder: Path) -> list[str]:
    """Half the images in an uncompressed tar, half in a tar.gz (members named ``./<path>``)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "shard_0.tar", folder / "shard_1.tar.gz"]
    items = sorted(images.items())
    for index, (path, mode) in enumerate(zip(paths, ("w", "w:gz"), strict=True)):
        with tarfile.open(path, mode) as archive:
            for name, data in items[index::2]:
                info = tarfile.TarInfo(f"./{name}")
                info.size = len(data)
                archive.addfile(info, _stdio.BytesIO(data))
    return [str(p) for p in paths]


@pytest.fixture(scope="session")
def ecginstruct_fixture(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("ecginstruct")
    records, images = ecginstruct_rows()
    json_path = root / "ECGInstruct.json"
    json_path.write_text(json.dumps(records, indent=1))
    shards = write_shards(images, root / "shards")
    folder = root / "images"
    for name, data in images.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return {"json": str(json_path), "shards": shards, "folder": str(folder), "records": records}
