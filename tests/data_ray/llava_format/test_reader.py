import json

import pytest

from pulse.data_ray.llava_format.reader import (
    RowError,
    check_conversation,
    iter_json_array,
    iter_records,
    validate_record,
)


def chunked(text: str, size: int):
    return iter([text[i : i + size] for i in range(0, len(text), size)])


@pytest.mark.parametrize("size", [1, 3, 7, 64, 10_000])
def test_array_elements_decode_across_any_chunk_boundary(size):
    values = [{"id": "a", "v": [1, 2.5, None, True]}, 12345, "str,with]brackets", {"u": 'é ü \\ "'}, []]
    out = list(iter_json_array(chunked(json.dumps(values, indent=2), size)))
    assert [r.value for r in out] == values and all(r.error is None for r in out)
    assert [r.index for r in out] == list(range(len(values)))


def test_malformed_element_becomes_error_and_parsing_resumes():
    text = '[{"id": "ok1"}, {"id": "broken" "x": 1}, {"id": "ok2"}, {"id": "ok3"}]'
    out = list(iter_json_array(chunked(text, 5)))
    assert [r.value["id"] for r in out if r.error is None] == ["ok1", "ok2", "ok3"]
    errors = [r.error for r in out if r.error]
    assert len(errors) == 1 and errors[0].startswith("malformed_row:")


def test_truncated_file_gives_error_not_exception():
    out = list(iter_json_array(iter(['[{"id": "ok"}, {"id": "cut'])))
    assert out[0].value == {"id": "ok"} and out[1].error.startswith("malformed_row")


def test_not_an_array_and_jsonl(tmp_path):
    lines = tmp_path / "rows.jsonl"
    lines.write_text('{"id": 1}\n\nnot json\n{"id": 2}')
    out = list(iter_records(str(lines)))
    assert [r.value for r in out] == [{"id": 1}, None, {"id": 2}]
    assert out[1].error.startswith("malformed_row: line 2")
    array = tmp_path / "rows.json"
    array.write_text('\ufeff  [{"id": 1}, {"id": 2}]')
    assert [r.value["id"] for r in iter_records(str(array), chunk_chars=4)] == [1, 2]


def test_conversation_rules():
    human = {"from": "human", "value": "<image>\nQ?"}
    gpt = {"from": "gpt", "value": "A"}
    assert check_conversation([human, gpt, {"from": "human", "value": "more?"}, gpt])[0] == human
    moved = check_conversation([{"from": "human", "value": "Q?\n<image>"}, gpt])
    assert moved[0]["value"] == "<image>\nQ?"
    cases = {
        "bad_conversation": [[gpt, human], [human, gpt, human], [human, human, gpt]],
        "missing_image_token": [[{"from": "human", "value": "Q?"}, gpt]],
        "empty_answer": [[human, {"from": "gpt", "value": ""}]],
        "extra_image_token": [[human, gpt, {"from": "human", "value": "<image> again"}, gpt]],
    }
    for reason, conversations in cases.items():
        for turns in conversations:
            with pytest.raises(RowError) as info:
                check_conversation(turns)
            assert info.value.reason == reason, turns


def test_record_fields_from_metadata_and_source():
    record = {
        "id": "mimic-1",
        "image": "mimic/p1/1-0.png",
        "conversations": [{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "C"}],
        "metadata": {"subtask": "feature", "type": "multiple-choice"},
        "source": "MIMIC-IV-ECG",
    }
    row = validate_record(record, 0, "fallback")
    assert (row["id"], row["task"], row["qtype"], row["source"]) == (
        "mimic-1",
        "feature",
        "mcq",
        "MIMIC-IV-ECG",
    )
    assert row["image_path"] == "mimic/p1/1-0.png" and row["error"] is None
    bare = validate_record(
        {k: v for k, v in record.items() if k not in ("metadata", "source", "id")}, 7, "mine"
    )
    assert (bare["id"], bare["task"], bare["source"]) == ("row-7", None, "mine")
    for broken in ([], {"image": "x.png"}, {**record, "conversations": [{"from": "human"}]}):
        with pytest.raises(RowError) as info:
            validate_record(broken, 0, None)
        assert info.value.reason == "malformed_row"
    with pytest.raises(RowError) as info:
        validate_record({**record, "image": None}, 0, None)
    assert info.value.reason == "missing_image"


def test_published_sample_rows_are_valid():
    with open("tests/data/ecgbench_fixtures/ecginstruct_sample.json") as handle:
        sample = json.load(handle)
    rows = [validate_record(r, i, None) for i, r in enumerate(sample["rows"])]
    assert {r["source"] for r in rows} <= {"MIMIC-IV-ECG", "ECG-QA", "PTB-XL", "CODE-15%"}
    assert all(r["task"] in ("feature", "rhythm", "morphology", "report") for r in rows)
