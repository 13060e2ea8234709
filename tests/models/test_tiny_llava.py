import numpy as np
from PIL import Image

from pulse.models.loader import load_pretrained_dir
from pulse.models.tiny_llava import build_tiny_llava


def test_tiny_llava_forward_and_template(tiny_llava_dir):
    model, processor = load_pretrained_dir(tiny_llava_dir)
    image = Image.fromarray((np.random.default_rng(0).random((170, 220, 3)) * 255).astype("uint8"))
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is this normal?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "yes"}]},
    ]
    text = processor.apply_chat_template(messages, tokenize=False)
    assert "USER: <image>\nIs this normal? ASSISTANT: yes</s>" in text
    batch = processor(images=[image], text=[text], return_tensors="pt")
    out = model(**batch, labels=batch["input_ids"])
    assert out.loss.item() > 0
    assert batch["pixel_values"].shape[-1] == 56


def test_build_is_deterministic():
    a, _ = build_tiny_llava()
    b, _ = build_tiny_llava()
    for (na, pa_), (nb, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert na == nb and (pa_ == pb).all()
