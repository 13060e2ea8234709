"""Builds with the LLM stages on: translate, synthesize, judge (with retries), threshold, faithfulness.

The endpoint is scripted (see ``scripted_llm.py`` for why); the pulse http engine, Ray Data and the
stages are real. A last test runs the synthesis stage on the real in-process transformers engine.
"""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from pulse.config import load_config
from pulse.data_ray.instruct.config import BuildConfig, SynthesisConfig
from pulse.data_ray.instruct.job import run
from pulse.data_ray.instruct.synthesize import synthesize

from .scripted_llm import TRANSLATION, ScriptedLLM


def http_engine(base_url: str) -> str:
    return json.dumps(
        {
            "kind": "http",
            "base_url": base_url,
            "model": "scripted",
            "api_key_env": None,
            "max_retries": 1,
            "batch_size": 16,
            "max_concurrent_requests": 4,
        }
    )


def test_llm_build_translates_synthesizes_judges_and_filters(ray_session, build_inputs, tmp_path):
    out = tmp_path / "out"
    with ScriptedLLM() as llm:
        engine = http_engine(llm.base_url)
        cfg = load_config(
            BuildConfig,
            None,
            [
                f"records_dir={build_inputs['records_dir']}",
                f"images_dir={build_inputs['images_dir']}",
                f"output_dir={out}",
                "write.shuffle=sort",
                "include_ecgqa=false",
                "write.num_shards=2",
                "routes={ptbxl: [report, synthesis, multi_turn]}",
                f"translate.engine={engine}",
                f"synthesis.engine={engine}",
                f"judge.engine={engine}",
                "synthesis.per_record=4",
                "judge.max_retries=1",
                "judge.threshold=3",
            ],
        )
        summary = run(cfg)
    roles = [role for role, _ in llm.prompts]
    assert roles.count("translate") == 2  # ptbxl/6001 and ptbxl/7911 are German; 6000 is English
    synth_for_german = [p for role, p in llm.prompts if role == "synthesis" and TRANSLATION in p]
    assert len(synth_for_german) == 2 * 5  # 4 single tasks + 1 dialogue per translated record
    assert max(llm.judge_calls.values()) == 2  # malformed first verdicts were asked again

    errors = summary.errors_by_reason
    assert errors["unfaithful"] == 3  # close-ended "atrial fibrillation" answers on sinus-rhythm records
    assert errors["judge_malformed"] == 3  # open-ended verdicts stay malformed after the retry
    assert errors["judge_below_threshold"] == 3  # fill-in-the-blank rows scored 2 < 3
    assert errors["judge_unfaithful"] == 3  # dialogues judged inconsistent
    assert "no_english_report" not in errors and "synthesis_unparsable" not in errors

    rows = [r for p in out.glob("parquet/split=*/*.parquet") for r in pq.read_table(p).to_pylist()]
    kept = {(r["source"], r["qtype"], r["generator"].split(":")[0]) for r in rows}
    assert ("ptbxl", "mcq", "synthesis-v1") in kept and ("ptbxl", "open", "report") in kept
    mcq = [r for r in rows if r["qtype"] == "mcq" and r["source"] == "ptbxl"]
    assert len(mcq) == 3 and all(r["judge_score"] == 4.0 and r["judge_reason"] for r in mcq)
    assert mcq[0]["generator"] == "synthesis-v1:http/scripted"
    reports = {r["record_id"]: r["conversations"][1]["value"] for r in rows if r["task"] == "report"}
    assert reports["ptbxl/6001"] == TRANSLATION and reports["ptbxl/6000"].startswith("sinus rhythm.")
    dropped = pq.read_table(out / "errors").to_pylist()
    below = [r for r in dropped if r["error"].startswith("judge_below_threshold")]
    assert all(r["judge_score"] == 2.0 for r in below)
    hist = json.loads((out / "stats" / "summary.json").read_text())
    assert hist["rows_ok"] == summary.rows_ok


@pytest.mark.slow
def test_synthesis_stage_runs_on_the_transformers_engine(ray_session):
    import ray.data

    from pulse.llm.config import TransformersEngineConfig

    rows = [
        {
            "id": f"ptbxl/{i}#synth:0",
            "record_id": f"ptbxl/{i}",
            "split": "train",
            "shard": 0,
            "source": "ptbxl",
            "task": "rhythm",
            "qtype": "open",
            "generator": "synthesis",
            "conversations": [],
            "judge_score": None,
            "judge_reason": None,
            "error": None,
            "labels_std": ["NSR"],
            "superclasses": ["NORM"],
            "context": "sinus rhythm. normal ecg.",
            "request": "single|open-ended|rhythm",
        }
        for i in range(3)
    ]
    engine = TransformersEngineConfig(model_source="tiny-random", batch_size=3, max_input_tokens=2048)
    cfg = SynthesisConfig(engine=engine, max_tokens=8, temperature=0.0)
    done = synthesize(ray.data.from_items(rows), cfg).take_all()
    assert sorted(r["id"] for r in done) == sorted(r["id"] for r in rows)
    for row in done:
        assert row["generator"] == "synthesis-v1:transformers/tiny-random"
        # A random model writes no "Task:/Response:"; the row must become an error row, not crash.
        assert row["error"] is None or row["error"].split(":")[0] in {
            "synthesis_unparsable",
            "context_length_exceeded",
        }
