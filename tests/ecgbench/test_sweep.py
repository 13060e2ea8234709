"""A sweep over two real local endpoints: resumable, results files, paper-layout table, plots."""

from __future__ import annotations

import json

import pytest
import yaml

from pulse.cli import main as pulse_main
from pulse.config import CONFIG_DIR, load_config
from pulse.ecgbench.report import load_published, markdown_table
from pulse.ecgbench.sweep import SweepConfig
from tests.ecgbench.chat_server import ChatServer, question_of
from tests.ecgbench.conftest import fixture_rows, mcq_rows, write_hf_subset


def test_shipped_configs_validate():
    cfg = load_config(SweepConfig, CONFIG_DIR / "ecgbench" / "sweep_local.yaml", ["mode=strict"])
    assert cfg.mode == "strict" and len(cfg.models) == 2
    with pytest.raises(Exception, match="Unknown config key: modle"):
        load_config(SweepConfig, CONFIG_DIR / "ecgbench" / "sweep_local.yaml", ["modle=x"])


def test_markdown_table_paper_layout():
    results = [
        {"model": "mine", "subset": "cpsc-test", "auc": 60.04, "f1": 20.0, "hamming_loss": 9.96},
        {"model": "mine", "subset": "ptb-test", "auc": 70.0, "f1": None, "hamming_loss": 12.0},
    ]
    table = markdown_table(results, published=load_published())
    lines = table.splitlines()
    assert lines[0] == "**In-domain:** PTB-XL Super · **Out-of-domain:** CPSC 2018"
    assert lines[2].startswith(
        "| Model | PTB-XL Super AUC ↑ | PTB-XL Super F1 ↑ | PTB-XL Super HL ↓ | CPSC 2018 AUC ↑"
    )
    assert "| PULSE-7B (published) | 82.4 | 74.8 | 11.0 | 76.9 | 57.6 | 8.6 |" in lines
    assert "| mine | 70.0 | – | 12.0 | 60.0 | 20.0 | 10.0 |" in lines


def test_sweep_two_endpoints_resumable(ray_session, tmp_path, capsys):
    bench = str(tmp_path / "bench")
    write_hf_subset(bench, "cpsc-test", fixture_rows("cpsc_test_sample.json"))
    write_hf_subset(bench, "g12-test-no-cot", mcq_rows("g12", ["B. AF", "H. SB", "A. NORM"]))

    def good(messages):
        q = question_of(messages)
        return "NORM" if "diagnostic statement" in q else ("B" if "rhythm?" in q else "Sinus rhythm.")

    # Arena (multi-turn) and the judge have their own tests; each Ray Data pass costs seconds on 2 cores.
    with ChatServer(good) as a, ChatServer(lambda m: "I am not sure.") as b:
        cfg = {
            "output_dir": str(tmp_path / "sweep"),
            "gold": bench,
            "subsets": ["cpsc-test", "g12-test-no-cot"],
            "allow_partial": True,
            "models": [
                {
                    "name": "model-a",
                    "base_url": a.base_url,
                    "model": "a",
                    "api_key_env": None,
                    "max_tokens": 16,
                },
                {
                    "name": "model-b",
                    "base_url": b.base_url,
                    "model": "b",
                    "api_key_env": None,
                    "max_tokens": 16,
                },
            ],
        }
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(cfg))
        assert pulse_main(["ecgbench", "sweep", "--config", str(path)]) == 0
        asked = (len(a.requests), len(b.requests))
        assert asked == (2 + 3, 2 + 3)
        printed = capsys.readouterr().out  # the table, then the sweep's summary (pulse.jobs.finish)
        assert "# ECGBench sweep (paper mode)" in printed and "\n[ecgbench-sweep] ok=10 errors=0 (" in printed
        assert pulse_main(["ecgbench", "sweep", "--config", str(path), "plots=false"]) == 0
        assert (len(a.requests), len(b.requests)) == asked  # resumed: nothing asked again
    out = tmp_path / "sweep"
    results = json.loads((out / "results.json").read_text())["results"]
    by = {(r["model"], r["subset"], r["mode"]): r for r in results}
    assert by[("model-a", "g12-test-no-cot", "strict")]["accuracy"] == pytest.approx(100 / 3)
    assert by[("model-b", "g12-test-no-cot", "strict")]["unparseable"] == 3
    assert by[("model-a", "cpsc-test", "paper")]["hamming_loss"] == pytest.approx(0.0)
    assert "model,subset" in (out / "results.csv").read_text().splitlines()[0].replace('"', "")
    table = (out / "results.md").read_text()
    assert "| PULSE-7B (published) |" in table and "| model-b |" in table and "## Error rows" in table
    for name in ("per_subset.png", "delta_vs_pulse.png"):
        assert (out / "plots" / name).read_bytes().startswith(b"\x89PNG")
    assert (out / "run_info.json").exists()


def test_sweep_over_pulse_cpu_endpoint_and_a_second_server(ray_session, tiny_llava_dir, tmp_path):
    """pulse's own Ray Serve endpoint (tiny random LLaVA-NeXT, transformers engine) beside a second
    tiny OpenAI-compatible server; the sweep scores both, resumes, and draws the table and plots."""
    from tests.serve.serve_testlib import make_config, running

    bench = str(tmp_path / "bench")
    write_hf_subset(bench, "g12-test-no-cot", mcq_rows("g12", ["B. AF", "H. SB", "A. NORM"]))
    serve_cfg = make_config(tiny_llava_dir)
    with running(serve_cfg) as pulse_url, ChatServer(lambda m: "B") as other:
        cfg = {
            "output_dir": str(tmp_path / "sweep"),
            "gold": bench,
            "subsets": ["g12-test-no-cot"],
            "allow_partial": True,
            "models": [
                {"name": "pulse-cpu", "base_url": pulse_url, "model": "pulse-tiny", "api_key_env": None,
                 "max_tokens": 8},
                {"name": "other", "base_url": other.base_url, "model": "b", "api_key_env": None,
                 "max_tokens": 8},
            ],
        }  # fmt: skip
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(cfg))
        assert pulse_main(["ecgbench", "sweep", "--config", str(path)]) == 0
        assert pulse_main(["ecgbench", "sweep", "--config", str(path), "plots=false"]) == 0
        assert len(other.requests) == 3  # resumed: the second pass asked nothing again
    out = tmp_path / "sweep"
    predictions = [
        json.loads(line)
        for line in (out / "predictions" / "pulse-cpu" / "g12-test-no-cot.jsonl").read_text().splitlines()
    ]
    assert sorted(p["question_id"] for p in predictions) == ["g12-0", "g12-1", "g12-2"]
    assert not [p for p in predictions if p["metadata"].get("error")]
    # The endpoint answered what the same checkpoint generates offline for the same image and question.
    first = next(p for p in predictions if p["question_id"] == "g12-0")
    assert first["text"] == offline_answer(tiny_llava_dir, bench, first["prompt"])

    results = json.loads((out / "results.json").read_text())["results"]
    by = {(r["model"], r["mode"]): r for r in results if r["subset"] == "g12-test-no-cot"}
    assert by[("other", "strict")]["accuracy"] == pytest.approx(100 / 3)
    assert 0 <= by[("pulse-cpu", "strict")]["accuracy"] <= 100
    table = (out / "results.md").read_text()
    assert "| pulse-cpu |" in table and "| other |" in table
    assert (out / "plots" / "per_subset.png").read_bytes().startswith(b"\x89PNG")


def offline_answer(checkpoint, bench: str, question: str, max_new_tokens: int = 8) -> str:
    """Greedy ``generate()`` of the checkpoint on item g12-0's image (what the endpoint must reproduce)."""
    import io as stdio

    import pyarrow.parquet as pq
    from PIL import Image

    from pulse.models.loader import load_pretrained_dir

    row = pq.read_table(f"{bench}/g12-test-no-cot/test-00000-of-00001.parquet").to_pylist()[0]
    assert row["id"] == "g12-0"
    image = Image.open(stdio.BytesIO(row["image"]["bytes"])).convert("RGB")
    model, processor = load_pretrained_dir(checkpoint)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(images=[image], text=[prompt], add_special_tokens=False, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new_tokens = out[0, inputs["input_ids"].shape[1] :]
    return processor.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


def test_sweep_result_is_a_stage_summary_printed_below_its_table(capsys):
    from pulse.ecgbench.sweep import SweepResult
    from pulse.jobs import finish
    from pulse.summary import StageSummary

    result = SweepResult(
        rows_ok=5,
        rows_error=1,
        errors_by_reason={"engine_error": 1},
        outputs={"table": "out/results.md"},
        results=[{"model": "m", "subset": "ptb-test", "mode": "paper", "n": 6}],
        markdown="# ECGBench sweep (paper mode)\n\n| Model |\n",
    )
    assert isinstance(result, StageSummary) and result.stage == "ecgbench-sweep"
    assert finish(result) == 0
    assert capsys.readouterr().out == (
        "# ECGBench sweep (paper mode)\n\n| Model |\n\n[ecgbench-sweep] ok=5 errors=1 (0.0s)\n"
        "    error engine_error: 1\n    table: out/results.md\n"
    )
