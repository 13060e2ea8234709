import numpy as np
import pytest
from PIL import Image

from pulse.models.tiny_llava import LlavaBuildConfig, build_model, build_processor
from pulse.train_ray.collate import (
    IGNORE_INDEX,
    SampleError,
    decode_image,
    encode_sample,
    pad_batch,
    to_messages,
)

SINGLE = [
    {"from": "human", "value": "<image>\nWhat is the rhythm?"},
    {"from": "gpt", "value": "sinus rhythm"},
]
MULTI = [
    *SINGLE,
    {"from": "human", "value": "Is it regular?"},
    {"from": "gpt", "value": "yes"},
]


@pytest.fixture(scope="module")
def processor():
    return build_processor(LlavaBuildConfig())


def image(width, height, seed=0):
    pixels = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype("uint8")
    return Image.fromarray(pixels)


def answer_text(processor, sample):
    return processor.tokenizer.decode([t for t in sample.labels if t != IGNORE_INDEX])


def test_single_turn_labels_only_the_answer(processor):
    sample = encode_sample(processor, image(220, 170), SINGLE, max_length=512)
    assert answer_text(processor, sample) == " sinus rhythm</s>"
    # Ids are exactly what the processor produces for the rendered chat (what serving sees).
    text = processor.apply_chat_template(to_messages(SINGLE), tokenize=False)
    reference = processor(images=[image(220, 170)], text=[text], return_tensors="np")
    assert np.array_equal(reference["input_ids"][0], sample.input_ids)
    assert np.array_equal(reference["pixel_values"][0], sample.pixel_values)
    # Everything before the answer (system, USER:, image tokens, ASSISTANT:) is masked.
    first = int(np.argmax(sample.labels != IGNORE_INDEX))
    assert (sample.labels[:first] == IGNORE_INDEX).all()
    assert processor.tokenizer.decode(sample.input_ids[:first]).endswith("ASSISTANT:")


def test_multi_turn_labels_every_answer_and_no_question(processor):
    sample = encode_sample(processor, image(220, 170), MULTI, max_length=512)
    assert answer_text(processor, sample) == " sinus rhythm</s> yes</s>"
    labelled = processor.tokenizer.decode(
        [t for t, lab in zip(sample.input_ids, sample.labels, strict=True) if lab == IGNORE_INDEX]
    )
    assert "Is it regular?" in labelled and "sinus" not in labelled.split("ASSISTANT:")[-1]


@pytest.mark.parametrize(
    ("size", "tiles", "image_tokens"),
    # 16 base tokens + unpadded tile grid + one newline per row (the padded 112x112 grid for 110x60)
    [((110, 60), 5, 52), ((50, 100), 3, 56), ((80, 80), 5, 88), ((300, 60), 3, 34)],
)
def test_anyres_shapes_and_image_token_counts(processor, size, tiles, image_tokens):
    sample = encode_sample(processor, image(*size), SINGLE, max_length=512)
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert sample.pixel_values.shape == (tiles, 3, 56, 56)
    assert int((sample.input_ids == image_id).sum()) == image_tokens
    assert tuple(sample.image_sizes) == (size[1], size[0])


def test_padded_batch_runs_through_the_model(processor):
    samples = [
        encode_sample(processor, image(w, h, i), conv, 512).__dict__
        for i, (w, h, conv) in enumerate([(110, 60, SINGLE), (80, 80, MULTI), (50, 100, SINGLE)])
    ]
    batch = pad_batch(samples, processor.tokenizer.pad_token_id)
    longest = max(len(s["input_ids"]) for s in samples)
    assert batch["input_ids"].shape == (3, longest)
    assert batch["pixel_values"].shape == (3, 5, 3, 56, 56)
    short = len(samples[0]["input_ids"])
    assert batch["attention_mask"][0, :short].all() and not batch["attention_mask"][0, short:].any()
    assert (batch["labels"][0, short:] == IGNORE_INDEX).all()
    model = build_model(LlavaBuildConfig(), processor.tokenizer)
    loss = model(**batch).loss  # image tokens agree with image features for every aspect ratio
    assert np.isfinite(loss.item())


def test_truncation_never_cuts_image_tokens(processor):
    full = encode_sample(processor, image(220, 170), MULTI, max_length=512)
    first_answer = int(np.argmax(full.labels != IGNORE_INDEX))
    cut = encode_sample(processor, image(220, 170), MULTI, max_length=first_answer + 2)
    assert cut.truncated and len(cut.input_ids) == first_answer + 2
    assert np.array_equal(cut.input_ids, full.input_ids[: first_answer + 2])
    with pytest.raises(SampleError, match="too_long"):
        encode_sample(processor, image(220, 170), MULTI, max_length=first_answer)  # no answer token left
    with pytest.raises(SampleError, match="too_long"):
        encode_sample(processor, image(220, 170), SINGLE, max_length=40)  # inside the image tokens
    with pytest.raises(SampleError, match="too_long"):
        encode_sample(processor, image(220, 170), MULTI, max_length=first_answer + 2, truncation="drop")


@pytest.mark.parametrize(
    ("turns", "reason"),
    [
        ([{"from": "human", "value": "no image here"}, {"from": "gpt", "value": "x"}], "missing_image_token"),
        ([{"from": "human", "value": "<image>\nq"}, {"from": "human", "value": "q2"}], "bad_conversation"),
        ([{"from": "human", "value": "<image>\nq"}], "bad_conversation"),
        (
            [{"from": "human", "value": "<image>\nq <image>"}, {"from": "gpt", "value": "a"}],
            "extra_image_token",
        ),
        ([{"from": "system", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}], "bad_conversation"),
        ([], "bad_conversation"),
    ],
)
def test_malformed_conversations_are_sample_errors(turns, reason):
    with pytest.raises(SampleError) as info:
        to_messages(turns)
    assert info.value.reason == reason


def test_corrupt_image_bytes_are_sample_errors():
    import io

    buffer = io.BytesIO()
    image(64, 32).save(buffer, format="PNG")
    assert decode_image(buffer.getvalue()).size == (64, 32)
    for bad in (buffer.getvalue()[:80], b"not an image", b""):
        with pytest.raises(SampleError) as info:
            decode_image(bad)
        assert info.value.reason == "corrupt_image"
