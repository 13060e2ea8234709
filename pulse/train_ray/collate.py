"""Turn one instruction row into a training sample, and pad samples into a batch.

A sample is rendered with the model's own chat template and tokenized once, exactly as serving
sees it. Rendering the conversation prefix by prefix gives the character span of each assistant
answer; tokens starting inside an answer (including its end-of-turn token) keep their ids, all
others (system, ``USER:`` turns, ``ASSISTANT:``, padding, image) get label -100. Single- and multi-turn conversations take the same
path. The single ``<image>`` placeholder is expanded to exactly the number of image tokens the
processor produces for that image (anyres: base view + tiles + one newline per row), so
input ids always agree with the model's image features. Over-long samples are cut after the
image tokens or dropped (``SampleError("too_long")``); image tokens are never cut.
"""

from __future__ import annotations

import io as _stdio
from dataclasses import dataclass
from typing import Any

import numpy as np

from pulse.data_ray.conversation import IMAGE_TOKEN as IMAGE_PLACEHOLDER
from pulse.data_ray.conversation import check_conversation
from pulse.data_ray.stage import StageError

IGNORE_INDEX = -100


class SampleError(StageError):
    """A row that cannot become a training sample; ``reason`` is what summaries count by."""


@dataclass
class EncodedSample:
    input_ids: np.ndarray  # (T,) int64
    labels: np.ndarray  # (T,) int64, IGNORE_INDEX outside answers
    pixel_values: np.ndarray  # (P, 3, H, W) float32: base view + anyres tiles
    image_sizes: np.ndarray  # (2,) original (height, width)
    truncated: bool = False


def decode_image(data: bytes | None):
    """An RGB PIL image from PNG/JPEG bytes; corrupt or truncated bytes raise ``SampleError``."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise SampleError("corrupt_image", "empty image bytes")
    try:
        image = Image.open(_stdio.BytesIO(data))
        image.load()
        return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise SampleError("corrupt_image", f"{type(exc).__name__}: {exc}") from None


def to_messages(conversations: list[dict[str, str]]) -> list[dict[str, Any]]:
    """ECGInstruct turns (``from: human|gpt``, checked by the one ``check_conversation``) as chat
    messages; the image goes in the first user turn."""
    turns = check_conversation(list(conversations or []), SampleError)
    roles = {"human": "user", "gpt": "assistant"}
    messages = []
    for index, turn in enumerate(turns):
        text = turn["value"]
        content: list[dict[str, str]] = [{"type": "text", "text": text}]
        if index == 0:
            content = [
                {"type": "image"},
                {"type": "text", "text": text[len(IMAGE_PLACEHOLDER) :].lstrip("\n")},
            ]
        messages.append({"role": roles[turn["from"]], "content": content})
    return messages


def template_segments(processor, messages: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """The rendered chat as (text, is_answer) pieces whose concatenation is the full chat text."""
    segments: list[tuple[str, bool]] = []
    rendered = ""
    for end in range(1, len(messages) + 1):
        is_answer = messages[end - 1]["role"] == "assistant"
        # Text up to "ASSISTANT:" belongs to the prompt; the rest of the turn is the answer.
        if is_answer:
            prompt = processor.apply_chat_template(
                messages[: end - 1], add_generation_prompt=True, tokenize=False
            )
            segments.append(_suffix(rendered, prompt, "prompt"))
            rendered = prompt
        full = processor.apply_chat_template(messages[:end], tokenize=False)
        segments.append((_suffix(rendered, full, "turn")[0], is_answer))
        rendered = full
    return [s for s in segments if s[0]]


def _suffix(prefix: str, text: str, what: str) -> tuple[str, bool]:
    if not text.startswith(prefix):
        raise SampleError("template_error", f"chat template is not prefix-stable at the {what} boundary")
    return text[len(prefix) :], False


def encode_sample(
    processor, image, conversations: list[dict[str, str]], max_length: int, truncation: str = "truncate"
) -> EncodedSample:
    """Encode one conversation about one image; raises ``SampleError`` for rows to skip."""
    messages = to_messages(conversations)
    tokenizer = processor.tokenizer
    image_token_id = tokenizer.convert_tokens_to_ids(processor.image_token)
    vision = processor(images=[image], text=[processor.image_token], return_tensors="np")
    n_image_tokens = int((vision["input_ids"][0] == image_token_id).sum())
    segments = template_segments(processor, messages)
    text = "".join(piece for piece, _ in segments)
    answer_spans, cursor = [], 0
    for piece, is_answer in segments:
        if is_answer:
            answer_spans.append((cursor, cursor + len(piece)))
        cursor += len(piece)
    # One tokenization of the whole text (exactly what serving sees); answers found by char offsets.
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = []
    labels: list[int] = []
    for token, (start, _) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True):
        repeat = n_image_tokens if token == image_token_id else 1
        in_answer = any(lo <= start < hi for lo, hi in answer_spans)
        ids.extend([token] * repeat)
        labels.extend([token if in_answer else IGNORE_INDEX] * repeat)
    image_positions = [i for i, t in enumerate(ids) if t == image_token_id]
    if len(image_positions) != n_image_tokens:
        raise SampleError(
            "template_error", f"{len(image_positions)} image tokens in text, expected {n_image_tokens}"
        )
    truncated = False
    if len(ids) > max_length:
        if truncation == "drop":
            raise SampleError("too_long", f"{len(ids)} tokens > max_length {max_length}")
        if image_positions[-1] >= max_length or all(x == IGNORE_INDEX for x in labels[:max_length]):
            raise SampleError(
                "too_long", f"{len(ids)} tokens; the image or first answer ends past {max_length}"
            )
        ids, labels, truncated = ids[:max_length], labels[:max_length], True
    return EncodedSample(
        input_ids=np.asarray(ids, dtype=np.int64),
        labels=np.asarray(labels, dtype=np.int64),
        pixel_values=np.asarray(vision["pixel_values"][0][: n_tiles(processor, image)], dtype=np.float32),
        image_sizes=np.asarray(vision["image_sizes"][0], dtype=np.int64),
        truncated=truncated,
    )


def n_tiles(processor, image) -> int:
    """Base view + anyres tiles the model uses for ``image`` (the processor pads to the maximum)."""
    from transformers.models.llava_next.modeling_llava_next import image_size_to_num_patches

    ip = processor.image_processor
    crop = ip.crop_size["height"] if isinstance(ip.crop_size, dict) else ip.crop_size.height
    return image_size_to_num_patches((image.height, image.width), ip.image_grid_pinpoints, crop)


def pad_batch(samples: list[dict[str, np.ndarray]], pad_token_id: int) -> dict[str, Any]:
    """Right-pad ids/labels/mask to the longest sample and tiles to the most tiles; torch tensors."""
    import torch

    length = max(len(s["input_ids"]) for s in samples)
    tiles = max(s["pixel_values"].shape[0] for s in samples)
    n = len(samples)
    input_ids = torch.full((n, length), pad_token_id, dtype=torch.long)
    labels = torch.full((n, length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((n, length), dtype=torch.long)
    pixel_values = torch.zeros((n, tiles, *samples[0]["pixel_values"].shape[1:]), dtype=torch.float32)
    for i, s in enumerate(samples):
        t = len(s["input_ids"])
        input_ids[i, :t] = torch.as_tensor(s["input_ids"])
        labels[i, :t] = torch.as_tensor(s["labels"])
        attention_mask[i, :t] = 1
        pixel_values[i, : s["pixel_values"].shape[0]] = torch.as_tensor(s["pixel_values"])
    image_sizes = torch.as_tensor(np.stack([s["image_sizes"] for s in samples]), dtype=torch.long)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "pixel_values": pixel_values,
        "image_sizes": image_sizes,
    }
