"""`pulse ecgbench run`: refusals before anything is sent, and own items end to end into --output-dir."""

from __future__ import annotations

import json

from pulse.cli import main as pulse_main
from pulse.ecgbench.runner import data_url
from tests.ecgbench.chat_server import ChatServer, question_of
from tests.ecgbench.conftest import fixture_rows, own_record, write_own_inputs


def _run(server: ChatServer, subset: str, gold: str, *extra: str) -> int:
    endpoint = ["--base-url", server.base_url, "--model", "m", "--api-key-env", "PULSE_TEST_NO_KEY"]
    return pulse_main(["ecgbench", "run", "--subset", subset, "--gold", gold, *endpoint, *extra])


def _own_items(tmp_path) -> str:
    records = [
        own_record("ptbxl/1", "ptbxl", "test", superclasses=["NORM"]),
        own_record("ptbxl/2", "ptbxl", "test", superclasses=["MI", "STTC"]),
    ]
    records_dir, images_dir = write_own_inputs(tmp_path, records, {"ptbxl/1", "ptbxl/2"})
    out = str(tmp_path / "bench")
    assert (
        pulse_main(["ecgbench", "items", "--records", records_dir, "--images", images_dir, "--out", out]) == 0
    )
    return out


def test_run_refuses_items_without_images_and_of_another_subset(tmp_path, capsys):
    rows = fixture_rows("cpsc_test_sample.json")
    for row in rows:
        row.pop("image")
    (tmp_path / "cpsc-test.json").write_text(json.dumps(rows))
    bench = _own_items(tmp_path)
    capsys.readouterr()
    with ChatServer(lambda m: "NORM") as server:
        out = str(tmp_path / "out")
        assert _run(server, "cpsc-test", str(tmp_path), "--allow-partial", "--output-dir", out) == 2
        err = capsys.readouterr().err
        assert err.startswith(
            "pulse ecgbench run: cpsc-test: 2 of 2 items have no image (first: ['cpsc-A6504'"
        )
        assert err.count("\n") == 1

        assert _run(server, "ptb-test", f"{bench}/own-ptbxl.json", "--allow-partial", "--out", out) == 2
        err = capsys.readouterr().err
        assert (
            "2 of 2 items are of subset own-ptbxl, not ptb-test (first: ptbxl/1); pass --subset own-ptbxl"
            in err
        )
        assert server.requests == []
    assert not (tmp_path / "out").exists()


def test_own_items_run_into_an_output_dir(ray_session, tmp_path, capsys):
    bench = _own_items(tmp_path)

    def answer(messages):
        return "NORM" if "NORM" in question_of(messages) else "?"

    out = tmp_path / "run"
    with ChatServer(answer) as server:
        assert _run(server, "own-ptbxl", bench, "--mode", "strict", "--output-dir", str(out)) == 0
        urls = sorted(m["messages"][0]["content"][0]["image_url"]["url"] for m in server.requests)
    assert urls == sorted(data_url(b"\x89PNG-" + rid) for rid in (b"ptbxl/1", b"ptbxl/2"))
    assert sorted(p.name for p in out.iterdir()) == [
        "answers.jsonl",
        "predictions.jsonl",
        "results.csv",
        "results.json",
        "results.md",
    ]
    results = json.loads((out / "results.json").read_text())["results"]
    strict = next(r for r in results if r["mode"] == "strict")
    assert (strict["model"], strict["subset"], strict["n"], strict["error_rows"]) == ("m", "own-ptbxl", 2, 0)
    answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert [(a["question_id"], a["text"], a["extracted"], a["correct"]) for a in answers] == [
        ("ptbxl/1", "NORM", ["NORM"], True),
        ("ptbxl/2", "NORM", ["NORM"], False),
    ]
    assert "| m |" in (out / "results.md").read_text()
