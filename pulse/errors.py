"""The one vocabulary of error-row reasons, for every stage.

An error row keeps its input columns and carries ``error = "<reason>: <detail>"``; the reason
(the text before the first colon) is what summaries count (``pulse.summary.StageSummary``) and
what users filter on. Every reason a stage writes is listed here with its meaning, so a
reason means the same thing in ingest, render, instruct, train and the LLM seam. A row that
failed in an earlier stage is ``upstream_error`` in every later one.
"""

from __future__ import annotations

UPSTREAM_ERROR = "upstream_error"

REASONS: dict[str, str] = {
    # any stage
    UPSTREAM_ERROR: "the row was already an error row in an earlier stage (its reason follows)",
    "malformed_row": "the row lacks a required field or has one of the wrong type",
    # ingest: readers
    "missing_file": "a file the record needs is not there",
    "unreadable_file": "a file could not be opened or parsed",
    "unreadable_header": "a WFDB header could not be parsed (and could not be recovered)",
    "unreadable_signal": "the signal data could not be decoded",
    "truncated_signal": "the signal is shorter than its header says",
    "constant_signal": "every lead is flat",
    "unknown_unit": "the ADC unit is not one pulse can convert to mV",
    "bad_metadata": "a metadata row (labels, fold, file names) is missing or invalid",
    "bad_fs": "the sampling frequency is missing or not positive",
    "unreadable_qa_file": "an ECG-QA file could not be parsed",
    "bad_qa_row": "an ECG-QA row lacks its question, answer or ECG ids",
    "missing_record": "an ECG-QA row names a record that was not ingested",
    # render
    "empty_signal": "the record has no samples",
    "nan_signal": "the signal is all NaN",
    "absurd_amplitude": "the signal's amplitude is beyond any physiological range",
    "lead_mismatch": "lead names and signal columns disagree",
    "no_standard_leads": "none of the 12 standard leads is present",
    "rhythm_leads": "a rhythm strip names a lead the record lacks",
    "layout_weights": "the layout weights are invalid",
    "render_failed": "the renderer raised (type and message follow)",
    # instruct
    "no_english_report": "a report task has no English report (and no translation)",
    "missing_image": "the record has no rendered image (or the image file is missing)",
    "synthesis_unparsable": "the LLM's synthesis reply did not parse into instruction turns",
    "judge_below_threshold": "the LLM judge scored the instruction below the threshold",
    "judge_unfaithful": "the LLM judge found the answer unfaithful to the labels",
    "invalid_judge_json": "the LLM judge's reply is not the required JSON",
    "near_duplicate": "dropped as a near-duplicate of a kept instruction",
    "balance_cap": "dropped by the per-(task, label) balance cap",
    "ecgqa_malformed": "an ECG-QA row could not be turned into an instruction",
    "ecgqa_multi_ecg": "an ECG-QA comparison question needs a second record that is missing",
    "ecgqa_no_options": "an ECG-QA choice question has no options",
    "ecgqa_answer_not_in_options": "an ECG-QA answer is not among its options",
    # LLM-format import and train
    "bad_conversation": "turns do not alternate human/gpt, or a turn is empty or not text",
    "empty_answer": "an assistant turn is empty",
    "missing_image_token": "the first human turn has no <image> placeholder",
    "extra_image_token": "more <image> placeholders than images",
    "corrupt_image": "the image bytes do not decode",
    "too_long": "the tokenized sample is longer than the model's maximum length",
    "encode_failed": "the processor raised while encoding the sample",
    "template_error": "the chat template could not be applied",
    # LLM seam (any engine)
    "no_messages": "the request has no messages",
    "bad_messages": "the messages are not a list of {role, content}",
    "bad_request": "the request could not be built from the row",
    "bad_sampling_params": "a sampling parameter is out of range",
    "context_length_exceeded": "the prompt (plus max_tokens) is longer than the model's context",
    "preprocess_error": "the stage's preprocess function raised",
    "postprocess_error": "the stage's postprocess function raised",
    "engine_error": "the engine raised for this request",
    "generation_error": "generation failed for this request",
    "connection_error": "the HTTP endpoint could not be reached",
    "malformed_response": "the HTTP endpoint's reply is not an OpenAI chat completion",
    "timeout": "the request did not finish within its deadline",
    "internal": "an internal error with no more specific reason",
}


def error_text(reason: str, detail: object = "") -> str:
    """The ``error`` column value for a row that failed with ``reason``."""
    if reason not in REASONS:
        raise ValueError(f"unknown error reason {reason!r}; add it to pulse.errors.REASONS")
    detail = str(detail).strip()
    return f"{reason}: {detail}" if detail else reason


def error_reason(error: str | None) -> str | None:
    """The countable reason of an error string (text before the first colon)."""
    if not error:
        return None
    return error.split(":", 1)[0].strip()
