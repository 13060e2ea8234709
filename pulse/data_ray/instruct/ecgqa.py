"""ECG-QA converted directly into close-ended instructions (no LLM).

Input rows follow ``pulse.data_ray.readers.ecgqa.ECGQA_SCHEMA`` (question, answer list,
template_id, attribute_type, record_ids, split). Options are the template's answer classes
(``answers_for_each_template.csv`` of ECG-QA, bundled). The prompt ends with the sentence the
ECGBench scorer strips before splitting the options on commas, so candidates parse exactly.
Comparison questions need two ECG images and become ``ecgqa_multi_ecg`` error rows.
"""

from __future__ import annotations

import ast
import csv
import io as _stdio
import random
from functools import lru_cache
from typing import Any

import pyarrow as pa

from pulse import io
from pulse.config import PACKAGE_ROOT
from pulse.data_ray.instruct.rows import (
    ROW_COLUMNS,
    ROW_SCHEMA,
    conversation,
    instruction_row,
    shard_of,
    stable_hash,
)
from pulse.data_ray.readers.ecgqa import ECGQA_SCHEMA
from pulse.data_ray.stage import Stage, map_stage

OPTIONS_CSV = str(PACKAGE_ROOT / "assets" / "realdata" / "ecgqa" / "ptbxl" / "answers_for_each_template.csv")
CLOSING = "Only answer based on the given Options without any explanation."
PROMPTS = (
    "Given this ECG image, answer the question by choosing every option that applies. "
    "List your selections separated by commas.\nQuestion: {question}\nOptions: {options}\n" + CLOSING,
    "Review the ECG image and select all applicable options. Separate your picks with commas.\n"
    "Question: {question}\nOptions: {options}\n" + CLOSING,
)
TASK_BY_ATTRIBUTE = {
    "scp_code": "morphology",
    "stage_of_infarction": "morphology",
    "extra_systole": "rhythm",
    "noise": "feature",
    "heart_axis": "feature",
    "numeric_feature": "feature",
}
GENERATOR = "ecgqa:direct-v1"


@lru_cache(maxsize=4)
def template_options(path: str = OPTIONS_CSV) -> dict[int, list[str]]:
    """template_id -> answer classes of that template."""
    table: dict[int, list[str]] = {}
    for row in csv.DictReader(_stdio.StringIO(io.read_text(path))):
        table[int(row["template_id"])] = list(ast.literal_eval(row["classes"]))
    return table


def ecgqa_row(
    qa: dict[str, Any], num_shards: int, seed: int = 0, options_csv: str = OPTIONS_CSV
) -> dict[str, Any]:
    """One ECG-QA sample as an instruction row (an error row when it cannot be converted)."""
    record_ids = list(qa.get("record_ids") or [])
    record_id = record_ids[0] if record_ids else f"ecgqa/{qa.get('sample_id')}"
    record = {
        "record_id": record_id,
        "split": qa.get("split") or "train",
        "shard": shard_of(record_id, num_shards),
        "dataset": "ecgqa",
    }
    task = TASK_BY_ATTRIBUTE.get(qa.get("attribute_type") or "", "morphology")
    # Template and paraphrased releases share sample and question ids; the wording tells them apart.
    wording = f"{stable_hash(qa.get('question') or ''):016x}"[:8]
    key = f"ecgqa:{qa.get('sample_id')}:{qa.get('question_id')}:{wording}"

    def error(reason: str, detail: str) -> dict[str, Any]:
        return instruction_row(
            record, key, task=task, qtype="close", generator=GENERATOR, error=f"{reason}: {detail}"
        )

    if qa.get("error"):
        return error("upstream_error", qa["error"])
    if len(record_ids) != 1:
        return error("ecgqa_multi_ecg", f"{len(record_ids)} ECGs ({qa.get('question_type')})")
    answers = [a for a in qa.get("answer") or [] if a]
    question = (qa.get("question") or "").strip()
    if not question or not answers:
        return error("ecgqa_malformed", "empty question or answer")
    options = template_options(options_csv).get(int(qa.get("template_id") or -1))
    if not options:
        return error("ecgqa_no_options", f"template {qa.get('template_id')} has no answer classes")
    missing = [a for a in answers if a not in options]
    if missing:
        return error("ecgqa_answer_not_in_options", ", ".join(missing))
    rng = random.Random(f"{seed}:{key}")
    text = rng.choice(PROMPTS).format(question=question, options=", ".join(options))
    return instruction_row(
        record,
        key,
        task=task,
        qtype="close",
        generator=GENERATOR,
        conversations=conversation(text, ", ".join(answers)),
    )


class EcgqaStage(Stage):
    """ECG-QA rows (``ECGQA_SCHEMA``) in, instruction rows out (:func:`ecgqa_row`; tasks)."""

    name = "instruct.ecgqa"
    input_columns = ("question", "answer", "record_ids")
    optional_columns = tuple(ECGQA_SCHEMA.names)
    output_columns = ROW_COLUMNS

    def __init__(self, num_shards: int, seed: int = 0):
        self.num_shards, self.seed = num_shards, seed

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.select(self.read_columns(batch.column_names)).to_pylist()
        return pa.Table.from_pylist(
            [ecgqa_row(qa, self.num_shards, self.seed) for qa in rows], schema=ROW_SCHEMA
        )


def ecgqa_rows(qa, num_shards: int, seed: int = 0):
    """``qa`` -> instruction rows (:class:`EcgqaStage` through ``map_stage``)."""
    return map_stage(
        qa, EcgqaStage, kwargs={"num_shards": num_shards, "seed": seed}, tasks=True, workers=None
    )
