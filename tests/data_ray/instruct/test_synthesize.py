from __future__ import annotations

from pulse.data_ray.instruct.config import SynthesisConfig
from pulse.data_ray.instruct.synthesize import SynthesisPrompts, parse_dialogue, parse_single
from pulse.data_ray.instruct.validate import validate_row


def pending(request: str = "single|multiple-choice|rhythm") -> dict:
    return {
        "id": "ptbxl/6000#synth:0",
        "record_id": "ptbxl/6000",
        "split": "train",
        "shard": 1,
        "source": "ptbxl",
        "task": "rhythm",
        "qtype": "mcq",
        "generator": "synthesis",
        "conversations": [],
        "judge_score": None,
        "judge_reason": None,
        "error": None,
        "labels_std": ["NSR", "TAb"],
        "superclasses": ["NORM"],
        "context": "sinus rhythm. minor non-specific t wave flattening in v3,4.",
        "request": request,
    }


def test_parse_single_task_and_response():
    text = "Task: Which rhythm is shown?\nA. Sinus rhythm\nB. Atrial fibrillation\nResponse: Regular P waves.\nAnswer: A"
    conv = parse_single(text)
    assert conv[0]["value"] == "<image>\nWhich rhythm is shown?\nA. Sinus rhythm\nB. Atrial fibrillation"
    assert conv[1]["value"] == "Regular P waves.\nAnswer: A"
    assert parse_single("**Task:** Describe the T waves.\n**Response:** Flattened in V3-V4.")[1]["value"] == (
        "Flattened in V3-V4."
    )
    assert parse_single("What a fascinating topic!") is None
    assert parse_single("Task: only a task") is None


def test_parse_dialogue_alternates_and_needs_two_exchanges():
    text = "Human: What is the rhythm?\nAssistant: Sinus rhythm.\nHuman: Any T-wave changes?\nAssistant: Flat in V3."
    conv = parse_dialogue(text)
    assert [t["from"] for t in conv] == ["human", "gpt", "human", "gpt"] and conv[0]["value"].startswith(
        "<image>\n"
    )
    assert parse_dialogue("Human: Q?\nAssistant: A.") is None
    assert parse_dialogue("Assistant: hi\nHuman: Q\nAssistant: A\nHuman: Q2\nAssistant: A2") is None
    trailing = parse_dialogue(text + "\nHuman: And the axis?")
    assert len(trailing) == 4


def test_preprocess_builds_messages_from_the_report_and_request():
    prompts = SynthesisPrompts(SynthesisConfig(max_tokens=99, temperature=0.3))
    row = prompts.preprocess(pending())
    user = row["messages"][-1]["content"]
    assert "minor non-specific t wave flattening" in user and "multiple-choice" in user
    assert "rhythm disturbance" in user  # the aspect's description from the prompt file
    assert row["sampling_params"] == {"max_tokens": 99, "temperature": 0.3}
    dialog = prompts.preprocess(pending("multi_turn"))["messages"][-1]["content"]
    assert "dialogue" in dialog


def test_postprocess_parses_validates_and_keeps_errors():
    prompts = SynthesisPrompts(SynthesisConfig())
    text = "Task: Which rhythm?\nA. Sinus rhythm\nB. Atrial flutter\nResponse: Answer: A"
    done = prompts.postprocess({**pending(), "generated_text": text, "llm_error": None, "messages": []})
    assert done["error"] is None and validate_row(done)["error"] is None
    assert set(done) == set(pending()) and done["generator"].startswith("synthesis-v1:")
    junk = prompts.postprocess(
        {**pending(), "generated_text": "What a fascinating topic!", "llm_error": None}
    )
    assert junk["error"].startswith("synthesis_unparsable: What a fascinating")
    failed = prompts.postprocess(
        {**pending(), "generated_text": None, "llm_error": "context_length_exceeded: 5000 > 4096"}
    )
    assert failed["error"] == "context_length_exceeded: 5000 > 4096"
