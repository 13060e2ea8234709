"""The build plan: per record, the rows each routed generator makes (before any LLM call).

Routing per source (``BuildConfig.routes``): ``templates`` writes finished label-based rows;
``report`` writes the report-generation row (the English report is the answer); ``synthesis``
and ``multi_turn`` write *pending* rows that carry their LLM request (``request``) and the
report they are built from (``context``), for :mod:`synthesize` to complete. ECG-QA rows are
converted separately (:mod:`ecgqa`).
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

import pyarrow as pa

from pulse.data_ray.instruct.config import BuildConfig
from pulse.data_ray.instruct.prompts import load_prompt_file
from pulse.data_ray.instruct.rows import ROW_SCHEMA, conversation, instruction_row, with_error
from pulse.data_ray.instruct.templates import TemplateBook, template_rows

ENGLISH = "en"


def english_report(record: dict[str, Any]) -> str | None:
    """``report_en`` when a translation ran, else the report itself when it is English."""
    if record.get("report_en"):
        return record["report_en"]
    report = (record.get("report") or "").strip()
    return report if report and record.get("report_lang") == ENGLISH else None


class Planner:
    """``flat_map`` callable: a record row -> its planned instruction rows."""

    def __init__(self, cfg: BuildConfig):
        self.cfg = cfg
        self.routes = cfg.routes
        self.book = TemplateBook(cfg.templates.prompts)
        self.synthesis = load_prompt_file(cfg.synthesis.prompts)

    def __call__(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        generators = self.routes.get(record.get("dataset") or "", [])
        if record.get("error"):
            row = instruction_row(record, "record", task="record", qtype="none", generator="ingest")
            return [with_error(row, "upstream_error", record["error"])]
        rows: list[dict[str, Any]] = []
        if "templates" in generators:
            rows += template_rows(
                record,
                self.book,
                negatives=self.cfg.templates.negatives_per_record,
                options=self.cfg.templates.mcq_options,
                seed=self.cfg.seed,
            )
        report = english_report(record)
        if {"report", "synthesis", "multi_turn"} & set(generators) and report is None:
            row = instruction_row(record, "report", task="report", qtype="open", generator="report")
            detail = (
                f"report_lang={record.get('report_lang')!r}; enable translate.engine"
                if record.get("report")
                else "empty report"
            )
            return [*rows, with_error(row, "no_english_report", detail)]
        rng = random.Random(f"{self.cfg.seed}:plan:{record['record_id']}")
        if "report" in generators:
            question = rng.choice(self.synthesis["report_questions"])
            rows.append(
                instruction_row(
                    record,
                    "report",
                    task="report",
                    qtype="open",
                    generator=f"report:{self.synthesis['version']}",
                    conversations=conversation(question, report),
                    context=report,
                )
            )
        if "synthesis" in generators:
            types = self.cfg.synthesis.task_types
            offset = rng.randrange(len(types))  # a record asks for distinct types, from a seeded start
            for index in range(self.cfg.synthesis.per_record):
                task_type = types[(index + offset) % len(types)]
                aspect = rng.choice(list(self.synthesis["aspects"]))
                rows.append(
                    instruction_row(
                        record,
                        f"synth:{index}",
                        task=aspect,
                        qtype=self.synthesis["task_types"][task_type],
                        generator="synthesis",
                        context=report,
                        request=f"single|{task_type}|{aspect}",
                    )
                )
        if "multi_turn" in generators:
            for index in range(self.cfg.synthesis.multi_turn_per_record):
                rows.append(
                    instruction_row(
                        record,
                        f"dialog:{index}",
                        task="report",
                        qtype="multi-turn",
                        generator="multi_turn",
                        context=report,
                        request="multi_turn",
                    )
                )
        return rows


@lru_cache(maxsize=4)
def _planner(cfg_json: str) -> Planner:
    return Planner(BuildConfig.model_validate_json(cfg_json))


def plan_batch(batch: pa.Table, cfg_json: str) -> pa.Table:
    """``map_batches`` form of :class:`Planner` (tasks, not actors: the setup is a few YAML reads,
    cached per worker process)."""
    planner = _planner(cfg_json)
    out = [row for record in batch.to_pylist() for row in planner(record)]
    return pa.Table.from_pylist(out, schema=ROW_SCHEMA)
