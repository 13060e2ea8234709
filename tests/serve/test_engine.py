"""The transformers engine on the tiny checkpoint: greedy parity with offline generate(),
batching, per-row limits, seeded sampling, cancellation/deadline, incremental decoding."""

from __future__ import annotations

import io
import threading
import time

import pytest
from PIL import Image

from pulse.models.tiny_llava import load_pretrained_dir
from pulse.serve.engine import (
    IncrementalDecoder,
    Prepared,
    TokenStreamer,
    TransformersEngine,
    truncate_at_stop,
)
from tests.serve.serve_testlib import png_bytes

QUESTION = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What rhythm?"}]}]


@pytest.fixture(scope="module")
def engine(tiny_llava_dir):
    return TransformersEngine(str(tiny_llava_dir), torch_threads=1)


@pytest.fixture(scope="module")
def image():
    return Image.open(io.BytesIO(png_bytes())).convert("RGB")


def row(engine, image, **kw) -> Prepared:
    return Prepared(prompt=engine.render_prompt(QUESTION), images=[image], **{"max_tokens": 10, **kw})


def test_greedy_matches_offline_generate_token_for_token(engine, image, tiny_llava_dir):
    model, processor = load_pretrained_dir(tiny_llava_dir)
    prompt = processor.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False)
    inputs = processor(images=[image], text=[prompt], add_special_tokens=False, return_tensors="pt")
    reference = model.generate(**inputs, max_new_tokens=10, do_sample=False)[
        0, inputs["input_ids"].shape[1] :
    ]
    ids = []
    streamer = TokenStreamer(ids.append, lambda: None)
    result = engine.generate([row(engine, image)], streamer=streamer)[0]
    assert ids == reference.tolist()
    assert result.text == processor.tokenizer.decode(reference, skip_special_tokens=True)


def test_prompt_starts_with_a_single_bos(engine):
    inputs = engine.encode(
        [Prepared(prompt=engine.render_prompt([{"role": "user", "content": "hi"}]), images=[], max_tokens=1)]
    )
    ids = inputs["input_ids"][0].tolist()
    assert ids[0] == engine.tokenizer.bos_token_id and ids[1] != engine.tokenizer.bos_token_id


def test_batch_of_mixed_requests_equals_each_alone(engine, image):
    text_only = Prepared(
        prompt=engine.render_prompt([{"role": "user", "content": "Is the ECG normal?"}]),
        images=[],
        max_tokens=6,
    )
    rows = [row(engine, image), row(engine, image, max_tokens=4), text_only]
    batched = engine.generate_many(rows)
    alone = [engine.generate([r])[0] for r in rows]
    assert [b.text for b in batched] == [a.text for a in alone]
    assert [b.completion_tokens for b in batched] == [10, 4, 6]
    assert batched[1].finish_reason == "length"


def test_stop_strings_truncate_and_finish_with_stop(engine, image):
    full = engine.generate([row(engine, image)])[0].text
    stop = full[3:5]
    stopped = engine.generate([row(engine, image, stop=[stop])])[0]
    assert stopped.text == full[: full.find(stop)]
    assert stopped.finish_reason == "stop"


def test_seeded_sampling_is_reproducible(engine, image):
    a = engine.generate([row(engine, image, temperature=1.0, seed=11)])[0].text
    b = engine.generate([row(engine, image, temperature=1.0, seed=11)])[0].text
    assert a == b


def test_cancel_and_deadline_stop_generation_early(engine, image):
    cancel = threading.Event()
    cancel.set()
    cancelled = engine.generate([row(engine, image, max_tokens=200, cancel=cancel)])[0]
    assert cancelled.finish_reason == "cancelled" and cancelled.completion_tokens <= 1
    late = engine.generate([row(engine, image, max_tokens=200, deadline=time.monotonic() - 1)])[0]
    assert late.finish_reason == "timeout" and late.completion_tokens <= 1


def test_truncate_at_stop_picks_the_earliest():
    assert truncate_at_stop("abc STOP def END", ["END", "STOP"]) == ("abc ", True)
    assert truncate_at_stop("abc", ["x"]) == ("abc", False)


def test_incremental_decoder_holds_back_stop_prefixes_and_partial_utf8():
    vocab = {1: "Sinus", 2: " rhy", 3: "thm", 4: "\ufffd", 5: "###", 9: "<eos>"}
    decoder = IncrementalDecoder(lambda ids: "".join(vocab[i] for i in ids), stops=["###"], eos_ids={9})
    out = [decoder.feed(t) for t in (1, 2, 3)]
    assert "".join(out) + decoder.flush() == "Sinus rhythm"
    decoder = IncrementalDecoder(lambda ids: "".join(vocab[i] for i in ids), stops=["###"], eos_ids={9})
    assert decoder.feed(1) == "Sin"  # "us" held back: could start "###"? no, but the hold is len(stop)-1
    assert decoder.feed(5) == "us"
    assert decoder.stopped and decoder.feed(2) == ""
    plain = IncrementalDecoder(lambda ids: "".join(vocab[i] for i in ids), stops=[], eos_ids={9})
    assert plain.feed(4) == ""  # a partial UTF-8 character is not sent yet
    assert plain.feed(9) == "" and plain.stopped
