"""Scoring constructed answer files in both modes, and the `pulse ecgbench score` command."""

from __future__ import annotations

import json
import random

import pytest

from pulse.cli import main as pulse_main
from pulse.ecgbench.load import load_subset
from pulse.ecgbench.score import MissingPredictionsError, score_items
from tests.ecgbench.conftest import ecgqa_rows, fixture_rows, mcq_rows, write_hf_subset


def _gold(subset: str, answers: list) -> list[dict]:
    return [{"id": f"g{i}", "question": "q", "answer": a} for i, a in enumerate(answers)]


def _preds(texts: list[str], key: str = "text") -> list[dict]:
    return [{"question_id": f"g{i}", key: t} for i, t in enumerate(texts)]


def test_ptb_paper_and_strict_hand_computed():
    gold = _gold("ptb-test", ["NORM", "MI", "NORM;MI", "STTC"])
    preds = _preds(["NORMAL ECG", "NORM", "Findings: MI", "HYP"])
    paper = score_items("ptb-test", gold, preds, "paper")
    assert paper["n"] == 4 and list(paper)[:5] == ["subset", "n", "auc", "f1", "hamming_loss"]
    assert paper["f1"] == pytest.approx((2 / 3 + 0.5) / 3 * 100)
    assert paper["auc"] == pytest.approx((0.75 + 0.5 + 0.5) / 3 * 100)
    strict = score_items("ptb-test", gold, preds, "strict")
    # "NORMAL ECG" is not NORM on token boundaries: row 0 predicts nothing (unparseable)
    assert strict["unparseable"] == 1
    # NORM tp0 fp1 fn2 -> F1 0, AUC (0 + 1/2)/2 ; MI F1 2/3 AUC .75 ; STTC 0/.5 ; HYP fp -> F1 0
    assert strict["f1"] == pytest.approx((0 + 2 / 3 + 0 + 0) / 4 * 100)
    assert strict["auc"] == pytest.approx((0.25 + 0.75 + 0.5) / 3 * 100)


def test_code15_pools_binary_and_multilabel_items():
    gold = _gold("code15-test", ["NORM", "ABNORMAL", "RBBB"])
    preds = _preds(["It is NORMAL. Answer: NORM", "ABNORMAL", "ABNORMAL with RBBB"])
    out = score_items("code15-test", gold, preds, "paper")
    # classes ABNORMAL, NORM, RBBB; row 3 also predicts ABNORMAL (false positive)
    # ABNORMAL: tp1 fp1 tn1 -> F1 2/3, AUC (1 + 1/2)/2 ; NORM, RBBB perfect
    assert out["f1"] == pytest.approx((2 / 3 + 1 + 1) / 3 * 100)
    assert out["auc"] == pytest.approx((0.75 + 1 + 1) / 3 * 100)
    assert out["hamming_loss"] == pytest.approx(1 / 9 * 100)


def test_mcq_seeded_random_fallback_matches_the_published_scorer():
    gold = _gold("csn-test-no-cot", ["A. Sinus", "B. AF", "C. SB", "D. ST", "E. LBBB"])
    preds = _preds(["A", "no idea", "The correct option is (B)", "D. ST", "E"])
    random.seed(42)  # the published scorer: module-level seed, random.choice in item order
    first, second = random.choice("ABCDEFGH"), random.choice("ABCDEFGH")
    paper = score_items("csn-test-no-cot", gold, preds, "paper")
    assert paper["random_fallback"] == 2
    assert paper["accuracy"] == pytest.approx((3 + (first == "B") + (second == "C")) / 5 * 100)
    strict = score_items("csn-test-no-cot", gold, preds, "strict")
    assert strict["accuracy"] == pytest.approx(60.0)
    assert strict["unparseable"] == 1


def test_mmmu_falls_back_over_a_to_d():
    gold = _gold("mmmu-ecg", ["C"] * 6)
    paper = score_items("mmmu-ecg", gold, _preds(["?"] * 6), "paper")
    rng = random.Random(42)
    expected = sum(rng.choice("ABCD") == "C" for _ in range(6)) / 6 * 100
    assert paper["accuracy"] == pytest.approx(expected)


def test_missing_predictions_error_rows_and_response_layout():
    gold = _gold("cpsc-test", ["NORM", "AF", "STD"])
    preds = [
        {"id": "g0", "response": "NORM"},
        {"id": "g1", "response": "", "metadata": {"error": "http: 500"}},
    ]
    with pytest.raises(MissingPredictionsError, match="cpsc-test: 1 of 3 gold items have no prediction"):
        score_items("cpsc-test", gold, preds)
    out = score_items("cpsc-test", gold, [*preds, {"id": "zzz", "response": "AF"}], allow_partial=True)
    assert (out["n"], out["missing"], out["error_rows"], out["unknown_ids"]) == (2, 1, 1, 1)


def test_judge_subsets_are_refused():
    with pytest.raises(ValueError, match="LLM judge"):
        score_items("arena", [], [])


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_cli_score_prints_one_json_object(tmp_path, capsys):
    write_hf_subset(str(tmp_path / "bench"), "cpsc-test", fixture_rows("cpsc_test_sample.json"))
    write_hf_subset(str(tmp_path / "bench"), "ecgqa-test", ecgqa_rows())
    cpsc = _write_jsonl(
        tmp_path / "cpsc.jsonl",
        [{"question_id": "cpsc-A6504", "text": "NORM"}, {"question_id": "cpsc-A5802", "text": "AF; STD"}],
    )
    argv = [
        "ecgbench",
        "score",
        "--subset",
        "cpsc-test",
        "--gold",
        str(tmp_path / "bench"),
        "--predictions",
        cpsc,
    ]
    assert pulse_main([*argv, "--allow-partial"]) == 0
    out = json.loads(capsys.readouterr().out.strip())
    assert out["subset"] == "cpsc-test" and out["n"] == 2
    # Both gold answers are NORM: the binarizer has one class, so sklearn reads the (n, 1) matrix as
    # binary and averages F1 over the values 0 and 1 (0 and 2/3); the constant gold column makes AUC NaN
    # (printed as null). This is what the published scorer computes on such a file.
    assert out["f1"] == pytest.approx(100 / 3)
    assert out["auc"] is None and out["hamming_loss"] == pytest.approx(50.0)
    assert pulse_main(argv) == 2
    assert "expected the published 2061 items" in capsys.readouterr().err

    qa_items = load_subset(str(tmp_path / "bench"), "ecgqa-test", allow_partial=True)
    qa = _write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"question_id": it["id"], "prompt": it["question"], "text": t}
            for it, t in zip(qa_items, ["No", "not sure"], strict=True)
        ],
    )
    for mode, expected in (("paper", 50.0), ("strict", 100.0)):
        argv = ["ecgbench", "score", "--subset", "ecgqa-test", "--gold", str(tmp_path / "bench")]
        assert pulse_main([*argv, "--predictions", qa, "--mode", mode, "--allow-partial"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out == {**out, "subset": "ecgqa-test", "n": 2, "accuracy": pytest.approx(expected)}


def test_mcq_layout_from_hf(tmp_path):
    write_hf_subset(str(tmp_path), "g12-test-no-cot", mcq_rows("g12", ["B. AF", "H. SB"]))
    items = load_subset(str(tmp_path), "g12-test-no-cot", allow_partial=True)
    out = score_items("g12-test-no-cot", items, [{"id": "g12-0", "text": "B"}, {"id": "g12-1", "text": "H"}])
    assert out["accuracy"] == pytest.approx(100.0)


def _bench_with_cpsc(tmp_path) -> str:
    bench = str(tmp_path / "bench")
    write_hf_subset(bench, "cpsc-test", fixture_rows("cpsc_test_sample.json"))
    return bench


def test_cli_score_exits_non_zero_when_nothing_was_scored(tmp_path, capsys):
    argv = [
        "ecgbench",
        "score",
        "--subset",
        "cpsc-test",
        "--gold",
        _bench_with_cpsc(tmp_path),
        "--allow-partial",
    ]
    errors = _write_jsonl(
        tmp_path / "errors.jsonl",
        [
            {"question_id": i, "text": "", "metadata": {"error": "http_500: x"}}
            for i in ("cpsc-A6504", "cpsc-A5802")
        ],
    )
    assert pulse_main([*argv, "--predictions", errors]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["n"] == 2  # the numbers are still printed
    assert (
        captured.err
        == "pulse ecgbench score: nothing scored: cpsc-test: all 2 predictions are error rows (see the run's errors/ file)\n"
    )

    unknown = _write_jsonl(tmp_path / "unknown.jsonl", [{"question_id": "other", "text": "NORM"}])
    assert pulse_main([*argv, "--predictions", unknown]) == 2
    assert "nothing scored: cpsc-test: no prediction matched a gold item" in capsys.readouterr().err

    # gold answers without any label of the label space: the binarizer has no class, all metrics null
    rows = fixture_rows("cpsc_test_sample.json")
    for row in rows:
        row["conversations"][1]["value"] = "normal"
    (tmp_path / "nolabel").mkdir()
    (tmp_path / "nolabel" / "cpsc-test.json").write_text(json.dumps(rows))
    preds = _write_jsonl(tmp_path / "p.jsonl", [{"question_id": r["id"], "text": "NORM"} for r in rows])
    argv[5] = str(tmp_path / "nolabel")
    assert pulse_main([*argv, "--predictions", preds]) == 2
    assert "auc/f1 null for the 2 predictions" in capsys.readouterr().err


def test_cli_score_output_dir_holds_results_table_and_answers(tmp_path, capsys):
    preds = _write_jsonl(
        tmp_path / "preds.jsonl",
        [
            {"question_id": "cpsc-A6504", "text": "NORM", "model_id": "my-model"},
            {"question_id": "cpsc-A5802", "text": "AF; STD", "model_id": "my-model"},
        ],
    )
    out = tmp_path / "results"
    argv = ["ecgbench", "score", "--subset", "cpsc-test", "--gold", _bench_with_cpsc(tmp_path)]
    assert pulse_main([*argv, "--predictions", preds, "--allow-partial", "--output-dir", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((out / "results.json").read_text())
    assert saved["mode"] == "paper" and saved["sources"]["predictions"] == preds
    assert [(r["model"], r["mode"]) for r in saved["results"]] == [
        ("my-model", "paper"),
        ("my-model", "strict"),
    ]
    assert saved["results"][0] == {"model": "my-model", **printed}
    assert (out / "results.csv").read_text().splitlines()[0].startswith("model,subset,n,auc,f1,hamming_loss")
    table = (out / "results.md").read_text()
    assert "| PULSE-7B (published) |" in table and "| my-model | – | 33.3 | 50.0 |" in table
    answers = [json.loads(line) for line in (out / "answers.jsonl").read_text().splitlines()]
    assert [(a["question_id"], a["gold"], a["extracted"], a["correct"]) for a in answers] == [
        ("cpsc-A6504", "NORM", ["NORM"], True),
        ("cpsc-A5802", "NORM", ["AF", "STD"], False),
    ]
