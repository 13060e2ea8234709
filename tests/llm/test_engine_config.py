"""Engine configs: the ``kind`` union, strict keys, the shipped YAML, and ``python -m pulse.llm``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pulse.config import CONFIG_DIR, StrictModel, load_config
from pulse.llm import (
    EngineConfig,
    HttpEngineConfig,
    SamplingParams,
    TransformersEngineConfig,
    VllmEngineConfig,
    parse_engine_config,
)
from pulse.llm.__main__ import load_engine_config, main
from pulse.llm.base import make_request

SHIPPED = sorted((CONFIG_DIR / "llm").glob("*.yaml"))


class JobWithEngine(StrictModel):
    """How a job config nests an engine."""

    llm: EngineConfig = TransformersEngineConfig()


def test_kind_selects_the_engine_model():
    assert isinstance(parse_engine_config({"kind": "transformers"}), TransformersEngineConfig)
    assert isinstance(
        parse_engine_config({"kind": "http", "base_url": "http://h/v1", "model": "m"}), HttpEngineConfig
    )
    assert isinstance(parse_engine_config({"kind": "vllm", "model_source": "m"}), VllmEngineConfig)
    assert isinstance(parse_engine_config({"model_source": "tiny-random"}), TransformersEngineConfig)
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        parse_engine_config({"kind": "sglang"})


def test_job_config_overrides_switch_engines_and_reject_typos(tmp_path):
    cfg = load_config(JobWithEngine, None, ["llm.kind=http", "llm.base_url=http://h:8000/v1/", "llm.model=m"])
    assert isinstance(cfg.llm, HttpEngineConfig)
    assert cfg.llm.base_url == "http://h:8000/v1"
    with pytest.raises(ValueError, match=r"Unknown config key: llm.transformers.max_concurency"):
        load_config(JobWithEngine, None, ["llm.max_concurency=4"])
    with pytest.raises(ValueError, match="base_url must start with http"):
        load_config(JobWithEngine, None, ["llm.kind=http", "llm.base_url=h:8000", "llm.model=m"])


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_engine_yaml_is_valid_and_documents_its_command(path):
    text = path.read_text()
    assert text.startswith("# ")
    assert f"python -m pulse.llm --config configs/llm/{path.name}" in text
    assert "Override:" in text
    engine = load_engine_config(str(path), [])
    assert engine.kind in {"transformers", "http", "vllm"}


def test_shipped_yaml_set_covers_all_engines():
    assert {load_engine_config(str(p), []).kind for p in SHIPPED} == {"transformers", "http", "vllm"}


def test_sampling_params_validation():
    assert SamplingParams(stop="\n").stop == ["\n"]
    bad = make_request([{"role": "user", "content": "x"}], {"max_tokens": 0})
    assert bad.error.startswith("bad_sampling_params: max_tokens: Input should be greater than or equal to 1")
    assert make_request([{"content": "x"}], {}).error.startswith("bad_messages")
    assert make_request([], {}).error == "no_messages: preprocess returned no messages"
    assert make_request([{"role": "user", "content": "x"}], {"max_tokens": 3, "beam": 2}).error.startswith(
        "bad_sampling_params: beam: Extra inputs are not permitted"
    )


def test_cli_answers_through_an_endpoint(stub_server, capsys):
    rc = main(
        [
            "--config",
            "llm/openai_endpoint.yaml",
            f"base_url={stub_server.base_url}",
            "--prompt",
            "ok:hello",
        ]
    )
    assert rc == 0
    assert "echo:hello" in capsys.readouterr().out
    assert (
        main(
            [
                "--prompt",
                "ok:x",
                "kind=http",
                f"base_url={stub_server.base_url}",
                "model=m",
                "max_retries=0",
                "--prompt",
                "always:400",
            ]
        )
        == 1
    )
    assert "http_400: max_tokens is too large" in capsys.readouterr().err


def test_engine_fault_fails_the_batch_rows_not_the_job():
    import pyarrow as pa

    from pulse.llm.base import REQUEST_COLUMN, RESPONSE_COLUMN, encode_request_row, finish_row, run_table

    def boom(requests):
        raise RuntimeError("CUDA out of memory")

    rows = [
        encode_request_row({"i": i}, lambda r: {**r, "messages": [{"role": "user", "content": "x"}]})
        for i in range(3)
    ]
    table = run_table(pa.Table.from_pylist(rows), boom)
    assert REQUEST_COLUMN in table.column_names and RESPONSE_COLUMN in table.column_names
    out = [finish_row(r, lambda r: r) for r in table.to_pylist()]
    assert [r["llm_error"] for r in out] == ["engine_error: RuntimeError('CUDA out of memory')"] * 3
    assert [r["generated_text"] for r in out] == [None] * 3
    assert out[0]["messages"] == [{"role": "user", "content": "x"}]
