"""The in-process transformers engine: batching, error rows, images, and the Ray Data path."""

from __future__ import annotations

import sys

import pytest
from ray import cloudpickle

from pulse.llm import ChatRequest, SamplingParams, TransformersEngineConfig, apply_llm
from pulse.llm.base import truncate_at_stop
from pulse.llm.transformers_engine import TransformersEngine, split_content

cloudpickle.register_pickle_by_value(sys.modules[__name__])

QUESTIONS = [
    "rhythm",
    "Is the rhythm regular?",
    "Does lead V1 show ST elevation or ST depression in this ECG?",
    "What is the heart rate in bpm of this electrocardiogram and is the QRS complex normal or wide?",
]


def user(text):
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def tiny_engine():
    return TransformersEngine(TransformersEngineConfig(model_source="tiny-random", batch_size=8))


def test_batched_generation_equals_one_at_a_time(tiny_engine):
    """Left padding and attention masks are right: a row's text does not depend on its batch."""
    params = SamplingParams(max_tokens=6)
    batched = tiny_engine.generate([ChatRequest(user(q), params) for q in QUESTIONS])
    single = [tiny_engine.generate([ChatRequest(user(q), params)])[0] for q in QUESTIONS]
    assert [r.text for r in batched] == [r.text for r in single]
    assert all(r.error is None and r.text for r in batched)
    assert [r.prompt_tokens for r in batched] == [r.prompt_tokens for r in single]
    assert len({r.prompt_tokens for r in batched}) == len(QUESTIONS)
    assert all(1 <= r.completion_tokens <= 6 for r in batched)


def test_bad_requests_become_error_results_beside_good_ones(tiny_engine, png_data_url):
    image_turn = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": png_data_url}}]}]
    odd_part = [{"role": "user", "content": [{"type": "audio", "audio": "x"}]}]
    requests = [
        ChatRequest(user("Is the rhythm regular?"), SamplingParams(max_tokens=3)),
        ChatRequest(image_turn),
        ChatRequest(odd_part),
        ChatRequest(user("sinus " * 5000)),
    ]
    results = tiny_engine.generate(requests)
    assert results[0].error is None and results[0].text
    assert results[1].error == "template_error: this model is text-only and takes no image_url parts"
    assert results[2].error == "template_error: unknown content part type 'audio'"
    assert results[3].error.startswith("context_length_exceeded: ")
    assert results[3].error.endswith("prompt tokens > max_input_tokens=4096")
    assert results[3].reason == "context_length_exceeded" and results[3].finish_reason == "error"


def test_sampling_is_seeded_and_grouped(tiny_engine):
    sampled = SamplingParams(max_tokens=8, temperature=1.0, top_p=0.9, seed=3)
    greedy = SamplingParams(max_tokens=8)
    mixed = [ChatRequest(user(q), p) for q in QUESTIONS[:2] for p in (sampled, greedy)]
    first, second = tiny_engine.generate(mixed), tiny_engine.generate(mixed)
    assert [r.text for r in first] == [r.text for r in second]
    alone = tiny_engine.generate([ChatRequest(user(QUESTIONS[0]), greedy)])[0]
    assert first[1].text == alone.text


def test_stop_strings_cut_the_text():
    assert truncate_at_stop("Answer: A\nReason: x", ["\n"]) == ("Answer: A", True)
    assert truncate_at_stop("abc", ["z"]) == ("abc", False)
    assert truncate_at_stop("a.b;c", [";", "."]) == ("a", True)
    assert truncate_at_stop("abc STOP def END", ["END", "STOP"]) == ("abc ", True)
    assert truncate_at_stop("abc", None) == ("abc", False)


def test_content_parts_flatten_for_text_models():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
    ]
    rendered, images = split_content(messages, vision=False)
    assert rendered[1] == {"role": "user", "content": "one\ntwo"}
    assert images == []


def test_vision_model_takes_data_url_images(tiny_llava_dir, png_data_url):
    engine = TransformersEngine(TransformersEngineConfig(model_source=str(tiny_llava_dir), batch_size=4))
    with_image = [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": png_data_url}},
                {"type": "text", "text": "What is the rhythm?"},
            ],
        }
    ]
    bad_url = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]
    params = SamplingParams(max_tokens=4)
    results = engine.generate(
        [ChatRequest(with_image, params), ChatRequest(user("rhythm?"), params), ChatRequest(bad_url, params)]
    )
    assert results[0].error is None and results[0].completion_tokens >= 1
    assert results[0].prompt_tokens > results[1].prompt_tokens + 10  # the image became image tokens
    assert results[1].error is None
    assert results[2].error.startswith("template_error: image_url must be a base64 data URL")


def test_apply_llm_runs_batched_in_ray_data(ray_session, tiny_engine):
    import ray

    def preprocess(row):
        if row["i"] == 3:
            raise KeyError("report")
        return {
            **row,
            "messages": user(QUESTIONS[row["i"] % len(QUESTIONS)]),
            "sampling_params": {"max_tokens": 5},
        }

    def postprocess(row):
        return {"i": row["i"], "text": row["generated_text"], "error": row["llm_error"], **row["usage"]}

    cfg = TransformersEngineConfig(model_source="tiny-random", batch_size=4, num_cpus=1)
    rows = sorted(
        apply_llm(
            ray.data.from_items([{"i": i} for i in range(10)]), cfg, preprocess, postprocess
        ).take_all(),
        key=lambda r: r["i"],
    )
    assert [r["i"] for r in rows] == list(range(10))
    assert rows[3]["error"] == "preprocess_error: KeyError('report')" and rows[3]["text"] is None
    expected = tiny_engine.generate([ChatRequest(user(q), SamplingParams(max_tokens=5)) for q in QUESTIONS])
    for row in rows:
        if row["i"] != 3:
            assert row["error"] is None
            assert row["text"] == expected[row["i"] % len(QUESTIONS)].text  # same seed, same weights
            assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
