"""The in-process transformers engine: batching, error rows, images, and the Ray Data path."""

from __future__ import annotations

import io
import sys
import threading
import time

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


# --- The vision engine the endpoint serves (the tiny LLaVA-NeXT folder), with pre-decoded images ---

IMAGE_QUESTION = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What rhythm?"}]}]


@pytest.fixture(scope="module")
def llava_engine(tiny_llava_dir):
    return TransformersEngine(
        TransformersEngineConfig(model_source=str(tiny_llava_dir), device="cpu", torch_threads=1)
    )


@pytest.fixture(scope="module")
def image():
    from PIL import Image

    from tests.serve.serve_testlib import png_bytes

    return Image.open(io.BytesIO(png_bytes())).convert("RGB")


def ask(image, **params) -> ChatRequest:
    extra = {k: params.pop(k) for k in ("deadline", "cancel") if k in params}
    return ChatRequest(IMAGE_QUESTION, SamplingParams(**{"max_tokens": 10, **params}), (image,), **extra)


def test_greedy_matches_offline_generate_token_for_token(llava_engine, image, tiny_llava_dir):
    from pulse.llm.streaming import TokenStreamer
    from pulse.models.loader import load_pretrained_dir

    model, processor = load_pretrained_dir(tiny_llava_dir)
    prompt = processor.apply_chat_template(IMAGE_QUESTION, add_generation_prompt=True, tokenize=False)
    inputs = processor(images=[image], text=[prompt], add_special_tokens=False, return_tensors="pt")
    reference = model.generate(**inputs, max_new_tokens=10, do_sample=False)[
        0, inputs["input_ids"].shape[1] :
    ]
    ids, ended = [], []
    result = llava_engine.generate([ask(image)], streamer=TokenStreamer(ids.append, lambda: ended.append(1)))[
        0
    ]
    assert ids == reference.tolist() and ended == [1]
    assert result.text == processor.tokenizer.decode(reference, skip_special_tokens=True)
    assert result.finish_reason == "length" and result.completion_tokens == 10


def test_prompt_starts_with_a_single_bos(llava_engine):
    prompt, images, _ = llava_engine.render(ChatRequest([{"role": "user", "content": "hi"}]))
    ids = llava_engine._encode([(prompt, images, 0)])["input_ids"][0].tolist()
    assert ids[0] == llava_engine.tokenizer.bos_token_id and ids[1] != llava_engine.tokenizer.bos_token_id


def test_batch_of_mixed_requests_equals_each_alone(llava_engine, image):
    text_only = ChatRequest([{"role": "user", "content": "Is the ECG normal?"}], SamplingParams(max_tokens=6))
    rows = [ask(image), ask(image, max_tokens=4), text_only]
    batched = llava_engine.generate(rows)
    alone = [llava_engine.generate([r])[0] for r in rows]
    assert [b.text for b in batched] == [a.text for a in alone]
    assert [b.completion_tokens for b in batched] == [10, 4, 6]
    assert batched[1].finish_reason == "length"


def test_stop_strings_truncate_and_finish_with_stop(llava_engine, image):
    full = llava_engine.generate([ask(image)])[0].text
    stop = full[3:5]
    stopped = llava_engine.generate([ask(image, stop=[stop])])[0]
    assert stopped.text == full[: full.find(stop)]
    assert stopped.finish_reason == "stop"


def test_seeded_sampling_is_reproducible_whatever_it_is_batched_with(llava_engine, image):
    a = llava_engine.generate([ask(image, temperature=1.0, seed=11)])[0].text
    b = llava_engine.generate([ask(image, temperature=1.0, seed=11), ask(image, temperature=1.0, seed=5)])[
        0
    ].text
    assert a == b


class ForwardCounter:
    """Counts the model's forward passes (a real hook on the real model)."""

    def __init__(self, model):
        self.calls = 0
        self.handle = model.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.calls += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_cancel_and_deadline_stop_a_request_before_its_prefill(llava_engine, image):
    cancel = threading.Event()
    cancel.set()
    with ForwardCounter(llava_engine.model) as forward:
        cancelled = llava_engine.generate([ask(image, max_tokens=200, cancel=cancel)])[0]
        late = llava_engine.generate([ask(image, max_tokens=200, deadline=time.monotonic() - 1)])[0]
    assert (cancelled.finish_reason, cancelled.completion_tokens) == ("cancelled", 0)
    assert (late.finish_reason, late.completion_tokens) == ("timeout", 0)
    assert forward.calls == 0, "an expired or cancelled request must never reach prefill"


def test_deadline_passing_during_image_preprocessing_skips_the_prefill(llava_engine, image, monkeypatch):
    """The deadline is checked again after the processor ran (image decoding/resizing takes time)."""
    encode = llava_engine._encode

    def slow_encode(items):
        out = encode(items)
        time.sleep(0.3)
        return out

    monkeypatch.setattr(llava_engine, "_encode", slow_encode)
    on_time = ask(image, max_tokens=3)
    with ForwardCounter(llava_engine.model) as forward:
        results = llava_engine.generate([ask(image, max_tokens=3, deadline=time.monotonic() + 0.15), on_time])
    assert results[0].finish_reason == "timeout" and results[0].completion_tokens == 0
    assert results[1].finish_reason == "length" and results[1].completion_tokens == 3
    assert forward.calls == 3, "only the request on time ran: one prefill + two decode steps"


def test_deadline_between_tokens_stops_a_long_generation(llava_engine, image):
    result = llava_engine.generate([ask(image, max_tokens=800, deadline=time.monotonic() + 0.5)])[0]
    assert result.finish_reason == "timeout" and 0 < result.completion_tokens < 800


def test_prompt_plus_max_tokens_beyond_the_context_fails_alone_before_prefill(llava_engine, image):
    assert llava_engine.max_model_len == 1024  # the tiny model's max_position_embeddings
    fits = llava_engine.generate([ask(image, max_tokens=8)])[0]
    room = 1024 - fits.prompt_tokens
    too_long = ChatRequest(
        [{"role": "user", "content": "sinus rhythm " * 2000}], SamplingParams(max_tokens=1)
    )
    with ForwardCounter(llava_engine.model) as forward:
        results = llava_engine.generate(
            [ask(image, max_tokens=room + 1), too_long, ask(image, max_tokens=room)]
        )
    # The first only exceeds once its image tokens are counted: the check runs after encoding too.
    assert results[0].reason == "context_length_exceeded"
    assert f"maximum context length is 1024 tokens, but {1024 + 1} were requested" in results[0].error
    assert results[1].reason == "context_length_exceeded" and forward.calls > 0
    assert results[2].error is None and results[2].prompt_tokens == fits.prompt_tokens


def test_max_model_len_overrides_the_models_context(tiny_engine):
    engine = TransformersEngine(TransformersEngineConfig(model_source="tiny-random", max_model_len=40))
    result = engine.generate([ChatRequest(user(QUESTIONS[3]), SamplingParams(max_tokens=30))])[0]
    assert (
        result.reason == "context_length_exceeded" and "maximum context length is 40 tokens" in result.error
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": 1e308},
        {"temperature": float("nan")},
        {"top_p": 0.0},
        {"seed": 10**30},
        {"max_tokens": 10**12},
    ],
)
def test_out_of_range_sampling_values_are_refused_by_the_request_type(bad):
    from pulse.llm.base import make_request

    result = make_request(user("x"), bad)
    assert result.reason == "bad_sampling_params", result
    assert result.error.split(": ")[1] == next(iter(bad))
