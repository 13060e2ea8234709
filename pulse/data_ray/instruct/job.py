"""Build ECGInstruct-style instruction data from records and rendered images.

records + images -> per-source generators (templates for label-only sources, the report task,
LLM synthesis from reports with PTB-XL reports translated first, direct ECG-QA conversion)
-> balance -> synthesize -> validate -> faithfulness -> LLM judge + threshold -> near-duplicate
removal -> sharded Parquet (images inline) + LLaVA JSON, errors/, stats/ (count table, judge
histogram) and run_info.json. A rerun on the same output_dir with the same config skips finished
shards (a finished build has nothing to do); a changed config is refused unless ``overwrite=true``.

  pulse build --config configs/build/templates.yaml
  pulse build --config configs/build/smollm2.yaml judge.threshold=3.5 limit=20
"""

from __future__ import annotations

import json
import time

from pulse import io, resume
from pulse.config import write_run_info
from pulse.data_ray.instruct import join
from pulse.data_ray.instruct.balance import balance_row, cell_counts, keep_probabilities
from pulse.data_ray.instruct.config import BuildConfig
from pulse.data_ray.instruct.ecgqa import ecgqa_rows
from pulse.data_ray.instruct.faithfulness import check_row
from pulse.data_ray.instruct.plan import plan_records
from pulse.data_ray.instruct.rows import map_rows, shard_of
from pulse.data_ray.instruct.stats import merge_markers, write_stats
from pulse.data_ray.instruct.validate import validate_row
from pulse.data_ray.instruct.write import (
    ShardWriter,
    completed_shards,
    finalize_llava,
    image_item,
    row_item,
)
from pulse.progress import Progress
from pulse.runtime import init_ray
from pulse.summary import StageSummary

CONFIG_CLASS = BuildConfig
OUTPUTS = ("parquet", "llava", "errors", "stats")
NOT_IN_FINGERPRINT = ("output_dir", "write.shuffle", "write.resume")
"""Config fields that do not change what a build writes (where it goes, how rows are shuffled)."""


def write_group(group, **kwargs):
    return ShardWriter(**kwargs)(group)


def plan_rows(cfg: BuildConfig, done: set[int]):
    """Records (minus finished shards) -> translated -> planned rows (+ ECG-QA), balanced, materialized."""
    shards = cfg.write.num_shards
    records = join.read_records(cfg.records_dir, cfg.storage, cfg.limit)
    records = records.filter(join.not_in_shards(done, shards)).map(join.add_shard, fn_args=(shards,))
    if cfg.translate.enabled:
        from pulse.data_ray.instruct.translate import translate

        records = translate(records, cfg.translate)
    plan = plan_records(records, cfg)
    qa = join.read_ecgqa(cfg.records_dir, cfg.storage) if cfg.include_ecgqa else None
    if qa is not None:
        qa_rows = ecgqa_rows(qa, shards, cfg.seed)
        plan = plan.union(qa_rows.filter(join.not_in_shards(done, shards)))
    plan = plan.materialize()
    probabilities = keep_probabilities(plan_counts(cfg, plan, resuming=bool(done)), cfg.balance.max_per_cell)
    return map_rows(plan, balance_row, probabilities, cfg.seed)


def plan_counts(cfg: BuildConfig, plan, resuming: bool) -> dict[str, int]:
    """Planned rows per cell of the whole build: counted on the first run and kept in ``_progress/``,
    so a resumed run (which plans only the unfinished shards) balances with the same probabilities."""
    path = io.join(cfg.output_dir, "_progress", "plan_counts.json")
    if resuming and io.exists(path, cfg.storage):
        return json.loads(io.read_text(path, cfg.storage))
    counts = cell_counts(plan)
    io.write_text(path, json.dumps(counts), cfg.storage)
    return counts


def instruction_rows(cfg: BuildConfig, plan):
    """Planned rows -> LLM-completed, validated, faithfulness-checked and judged rows."""
    rows = plan
    if cfg.synthesis.enabled:
        from pulse.data_ray.instruct.synthesize import synthesize

        rows = synthesize(rows, cfg.synthesis)
    rows = map_rows(rows, validate_row)
    if cfg.faithfulness.enabled:
        rows = map_rows(rows, check_row)
    if cfg.judge.enabled:
        from pulse.data_ray.instruct.judge import judge

        rows = judge(rows, cfg.judge)
    return rows


def write_shards(cfg: BuildConfig, rows, wanted_records: set[str]) -> list[dict]:
    shards = cfg.write.num_shards
    images = join.read_images(cfg.images_dir, cfg.storage)
    images = images.filter(lambda row: row["record_id"] in wanted_records)
    items = rows.map(row_item).union(images.map(image_item, fn_args=(shards,)))
    writer_kwargs = {
        "output": io.Folder(cfg.output_dir, cfg.storage),
        "num_shards": shards,
        "llava": cfg.write.llava,
        "dedupe": {"threshold": cfg.dedupe.threshold, "k": cfg.dedupe.shingle}
        if cfg.dedupe.enabled
        else None,
    }
    if cfg.write.shuffle == "sort":
        from ray.data.context import ShuffleStrategy

        items.context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED  # this dataset's own copy
    pending = len({shard_of(record_id, shards) for record_id in wanted_records})
    with Progress(init_ray(cfg.ray), "build", total=pending, unit="shards") as progress:
        written = items.groupby("shard", num_partitions=max(1, min(shards, 32))).map_groups(
            write_group, batch_format="pyarrow", fn_kwargs={**writer_kwargs, "progress": progress.counter}
        )
        return [json.loads(row["marker"]) for row in written.take_all()]


def run(cfg: BuildConfig) -> StageSummary:
    """Run the build; returns its summary (rows per split, errors by reason, outputs), which
    ``pulse.jobs.finish`` prints."""
    started = time.time()
    state = resume.prepare(
        cfg,
        cfg.output_dir,
        "build",
        outputs=OUTPUTS,
        ignore=NOT_IN_FINGERPRINT,
        storage=cfg.storage,
        overwrite=cfg.overwrite or not cfg.write.resume,
    )
    if state.status == "done":
        print(resume.nothing_to_do("build", cfg.output_dir), flush=True)
        return StageSummary(**state.done)
    init_ray(cfg.ray)
    done = (
        completed_shards(cfg.output_dir, cfg.write.num_shards, cfg.storage)
        if state.status == "resume"
        else {}
    )
    write_run_info(cfg, cfg.output_dir, "build", cfg.storage)
    plan = plan_rows(cfg, set(done))
    wanted = join.record_ids_of(plan)
    markers = write_shards(cfg, instruction_rows(cfg, plan), wanted) if wanted else []
    totals = merge_markers([*done.values(), *markers])
    outputs = {
        "parquet": io.join(cfg.output_dir, "parquet"),
        "errors": io.join(cfg.output_dir, "errors"),
        "run_info": io.join(cfg.output_dir, "run_info.json"),
    }
    if cfg.write.llava:
        for split, path in finalize_llava(cfg.output_dir, cfg.storage).items():
            outputs[f"llava_{split}"] = path
    outputs.update(
        write_stats(cfg.output_dir, totals, cfg.judge.threshold if cfg.judge.enabled else None, cfg.storage)
    )
    summary = StageSummary(
        "build",
        rows_ok=totals["rows_ok"],
        rows_error=sum(totals["errors"].values()),
        errors_by_reason=totals["errors"],
        outputs=outputs,
        seconds=time.time() - started,
        extra={
            "rows_per_split": totals["splits"],
            "shards_written": sorted(m["shard"] for m in markers),
            "shards_skipped_resume": sorted(done),
        },
    )
    io.write_text(io.join(cfg.output_dir, "stats", "summary.json"), summary.to_json(), cfg.storage)
    resume.mark_done(cfg.output_dir, summary.__dict__, cfg.storage)
    return summary
