"""Instruction Parquet for the trainer tests, written the way the builder writes it."""

from __future__ import annotations

import pytest

from pulse.train_ray.synthetic import heart_rate_rows, write_instruction_parquet

N_GOOD = 30
BAD_IDS = {"bad-corrupt": "corrupt_image", "bad-noimage": "missing_image_token"}


def training_rows(n_good: int = N_GOOD) -> list[dict]:
    """Good single- and multi-turn rows plus one corrupt image and one row without ``<image>``."""
    rows = heart_rate_rows(n_good, seed=1)
    for row in rows[::3]:
        row["conversations"] = [
            *row["conversations"],
            {"from": "human", "value": "Is the rhythm regular?"},
            {"from": "gpt", "value": "yes"},
        ]
    corrupt = dict(rows[0], id="bad-corrupt", image=rows[0]["image"][:60])
    no_image = dict(
        rows[1],
        id="bad-noimage",
        conversations=[{"from": "human", "value": "What rhythm?"}, {"from": "gpt", "value": "normal"}],
    )
    return [*rows[:10], corrupt, *rows[10:20], no_image, *rows[20:]]


@pytest.fixture(scope="session")
def instruction_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("instructions") / "parquet" / "split=train"
    write_instruction_parquet(training_rows(), str(folder), shard_size=8)
    return str(folder)
