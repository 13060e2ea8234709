"""The build plan: per record, the rows each routed generator makes (before any LLM call).

Routing per source (``BuildConfig.routes``): ``templates`` writes finished label-based rows;
``report`` writes the report-generation row (the English report is the answer); ``synthesis``
and ``multi_turn`` write *pending* rows that carry their LLM request (``request``) and the
report they are built from (``context``), for :mod:`synthesize` to complete. ECG-QA rows are
converted separately (:mod:`ecgqa`).
"""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa

from pulse.data_ray.instruct.config import BuildConfig
from pulse.data_ray.instruct.prompts import load_prompt_file
from pulse.data_ray.instruct.rows import (
    RECORD_COLUMNS,
    ROW_COLUMNS,
    ROW_SCHEMA,
    conversation,
    instruction_row,
    with_error,
)
from pulse.data_ray.instruct.templates import TemplateBook, template_rows
from pulse.data_ray.stage import Stage, map_stage

ENGLISH = "en"


def english_report(record: dict[str, Any]) -> str | None:
    """``report_en`` when a translation ran, else the report itself when it is English."""
    if record.get("report_en"):
        return record["report_en"]
    report = (record.get("report") or "").strip()
    return report if report and record.get("report_lang") == ENGLISH else None


class Planner:
    """A record row (without an error) -> its planned instruction rows."""

    def __init__(self, cfg: BuildConfig):
        self.cfg = cfg
        self.routes = cfg.routes
        self.book = TemplateBook(cfg.templates.prompts)
        self.synthesis = load_prompt_file(cfg.synthesis.prompts)

    def __call__(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        generators = self.routes.get(record.get("dataset") or "", [])
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


class PlanStage(Stage):
    """Records in, planned instruction rows out (a cheap setup, a few YAML reads: run as tasks)."""

    name = "instruct.plan"
    input_columns = ("record_id",)
    optional_columns = (*RECORD_COLUMNS, "shard", "report_en")
    output_columns = ROW_COLUMNS

    def __init__(self, cfg: BuildConfig | dict[str, Any]):
        self.planner = Planner(cfg if isinstance(cfg, BuildConfig) else BuildConfig.model_validate(cfg))

    def __call__(self, batch: pa.Table) -> pa.Table:
        out: list[dict[str, Any]] = []
        for record in batch.select(self.read_columns(batch.column_names)).to_pylist():
            rows = self.guarded(self.planner, record)
            if isinstance(rows, str):  # an upstream error row, or the planner raised: one error row
                generator = "ingest" if record.get("error") else "plan"
                row = instruction_row(record, "record", task="record", qtype="none", generator=generator)
                rows = [{**row, "error": rows}]
            out.extend(rows)
        return pa.Table.from_pylist(out, schema=ROW_SCHEMA)


def plan_records(records, cfg: BuildConfig):
    """``records`` -> their planned rows (:class:`PlanStage` through ``map_stage``)."""
    return map_stage(
        records, PlanStage, kwargs={"cfg": cfg.model_dump(mode="json")}, tasks=True, workers=None
    )
