"""Tiny original-LLaVA (``llava_llama``) checkpoints with PULSE-7B's key names and config fields,
plus an independent reference of LLaVA's anyres preprocessing and ``flat`` merge.

Nothing here imports pulse's conversion or LLaVA-NeXT code: the reference runs the original
weights through ``CLIPVisionModel`` + a ``Sequential(Linear, GELU, Linear)`` projector +
``LlamaForCausalLM`` (whose key layout is original LLaVA's), as haotian-liu/LLaVA does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

IMAGE = 56  # a CLIP-336 analog: 56 px crops of 14 px patches -> 16 tokens per crop
PATCH = 14
PINPOINTS = [[56, 112], [112, 56], [112, 112]]
VISION = {"hidden": 32, "inter": 64, "layers": 2, "heads": 2}
TEXT = {"hidden": 64, "inter": 128, "layers": 2, "heads": 4, "kv": 2}
IMAGE_TOKEN_INDEX = -200  # LLaVA's in-code placeholder


def write_tokenizer(folder: Path) -> None:
    """A byte-level BPE tokenizer without ``<image>`` (original LLaVA's vocabulary has none)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from pulse.models.tiny_tokenizer import tokenizer_corpus

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tokenizer_corpus(), trainer)
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(folder)


def original_config(merge: str, vocab_size: int, tower: str, text: dict = TEXT) -> dict:
    """``config.json`` as LLaVA's trainer writes it (PULSE-7B's fields, tiny sizes)."""
    return {
        "_name_or_path": "lmsys/vicuna-7b-v1.5",
        "architectures": ["LlavaLlamaForCausalLM"],
        "model_type": "llava_llama",
        "attention_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "hidden_act": "silu",
        "hidden_size": text["hidden"],
        "intermediate_size": text["inter"],
        "num_hidden_layers": text["layers"],
        "num_attention_heads": text["heads"],
        "num_key_value_heads": text["kv"],
        "max_position_embeddings": 1024,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "vocab_size": vocab_size,
        "use_cache": True,
        "transformers_version": "4.37.2",
        "freeze_mm_mlp_adapter": False,
        "image_aspect_ratio": "anyres",
        "image_grid_pinpoints": PINPOINTS,
        "mm_hidden_size": VISION["hidden"],
        "mm_patch_merge_type": merge,
        "mm_projector_lr": None,
        "mm_projector_type": "mlp2x_gelu",
        "mm_use_im_patch_token": False,
        "mm_use_im_start_end": False,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "mm_vision_tower": tower,
        "tokenizer_model_max_length": 4096,
        "tokenizer_padding_side": "right",
        "tune_mm_mlp_adapter": False,
        "use_mm_proj": True,
    }


def tower_config() -> dict:
    return {
        "model_type": "clip_vision_model",
        "architectures": ["CLIPVisionModel"],
        "hidden_size": VISION["hidden"],
        "intermediate_size": VISION["inter"],
        "num_hidden_layers": VISION["layers"],
        "num_attention_heads": VISION["heads"],
        "image_size": IMAGE,
        "patch_size": PATCH,
        "projection_dim": VISION["hidden"],
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
    }


def original_weights(vocab_size: int, seed: int, text: dict = TEXT) -> dict[str, torch.Tensor]:
    """Every tensor of a ``LlavaLlamaForCausalLM`` checkpoint, under LLaVA's names."""
    g = torch.Generator().manual_seed(seed)
    w: dict[str, torch.Tensor] = {}

    def rand(*shape, scale=0.08):
        return torch.randn(*shape, generator=g) * scale

    h, v = text["hidden"], VISION["hidden"]
    kv = h // text["heads"] * text["kv"]
    w["model.embed_tokens.weight"] = rand(vocab_size, h, scale=0.5)
    for i in range(text["layers"]):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = rand(h, h)
        w[p + "self_attn.k_proj.weight"] = rand(kv, h)
        w[p + "self_attn.v_proj.weight"] = rand(kv, h)
        w[p + "self_attn.o_proj.weight"] = rand(h, h)
        w[p + "mlp.gate_proj.weight"] = rand(text["inter"], h)
        w[p + "mlp.up_proj.weight"] = rand(text["inter"], h)
        w[p + "mlp.down_proj.weight"] = rand(h, text["inter"])
        w[p + "input_layernorm.weight"] = 1 + rand(h)
        w[p + "post_attention_layernorm.weight"] = 1 + rand(h)
    w["model.norm.weight"] = 1 + rand(h)
    w["lm_head.weight"] = rand(vocab_size, h, scale=0.5)
    w["model.mm_projector.0.weight"] = rand(h, v, scale=0.3)
    w["model.mm_projector.0.bias"] = rand(h)
    w["model.mm_projector.2.weight"] = rand(h, h, scale=0.3)
    w["model.mm_projector.2.bias"] = rand(h)
    w["model.image_newline"] = rand(h)
    t = "model.vision_tower.vision_tower.vision_model."
    n_pos = (IMAGE // PATCH) ** 2 + 1
    w[t + "embeddings.class_embedding"] = rand(v)
    w[t + "embeddings.patch_embedding.weight"] = rand(v, 3, PATCH, PATCH)
    w[t + "embeddings.position_embedding.weight"] = rand(n_pos, v)
    w[t + "embeddings.position_ids"] = torch.arange(n_pos)[None]  # LLaVA-era CLIP saved this buffer
    w[t + "pre_layrnorm.weight"] = 1 + rand(v)
    w[t + "pre_layrnorm.bias"] = rand(v)
    for i in range(VISION["layers"]):
        p = f"{t}encoder.layers.{i}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            w[p + f"self_attn.{proj}.weight"] = rand(v, v, scale=0.2)
            w[p + f"self_attn.{proj}.bias"] = rand(v)
        for norm in ("layer_norm1", "layer_norm2"):
            w[p + f"{norm}.weight"] = 1 + rand(v)
            w[p + f"{norm}.bias"] = rand(v)
        w[p + "mlp.fc1.weight"] = rand(VISION["inter"], v, scale=0.2)
        w[p + "mlp.fc1.bias"] = rand(VISION["inter"])
        w[p + "mlp.fc2.weight"] = rand(v, VISION["inter"], scale=0.2)
        w[p + "mlp.fc2.bias"] = rand(v)
    w[t + "post_layernorm.weight"] = 1 + rand(v)
    w[t + "post_layernorm.bias"] = rand(v)
    return w


def write_original_llava(
    folder: Path, merge: str = "flat", seed: int = 0, tower_inside: bool = True, text: dict = TEXT
) -> Path:
    """Write a two-shard original-LLaVA checkpoint (+ a CLIP tower folder its config names)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    write_tokenizer(folder)
    vocab_size = len(json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"])
    tower = folder.parent / f"{folder.name}-clip-tower"
    tower.mkdir(exist_ok=True)
    (tower / "config.json").write_text(json.dumps(tower_config()))
    weights = original_weights(vocab_size, seed, text)
    tower_keys = [k for k in weights if k.startswith("model.vision_tower.vision_tower.")]
    if not tower_inside:
        tower_weights = {
            k.removeprefix("model.vision_tower.vision_tower."): weights.pop(k) for k in tower_keys
        }
        save_file(tower_weights, str(tower / "model.safetensors"))
    (folder / "config.json").write_text(
        json.dumps(original_config(merge, vocab_size, str(tower), text), indent=2)
    )
    (folder / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))
    names = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for shard, keys in shards.items():
        save_file({k: weights[k].contiguous() for k in keys}, str(folder / shard))
        weight_map.update(dict.fromkeys(keys, shard))
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder


# ---- independent reference: haotian-liu/LLaVA's anyres preprocessing, encode_images and flat merge ----


def llava_select_best_resolution(original_size, possible_resolutions):
    """LLaVA's ``select_best_resolution``: sizes are (width, height)."""
    original_width, original_height = original_size
    best_fit, max_effective, min_wasted = None, 0, float("inf")
    for width, height in possible_resolutions:
        scale = min(width / original_width, height / original_height)
        down_w, down_h = int(original_width * scale), int(original_height * scale)
        effective = min(down_w * down_h, original_width * original_height)
        wasted = width * height - effective
        if effective > max_effective or (effective == max_effective and wasted < min_wasted):
            max_effective, min_wasted, best_fit = effective, wasted, (width, height)
    return best_fit


def llava_anyres_crops(image: Image.Image) -> list[Image.Image]:
    """``process_anyres_image`` up to normalisation: base crop (squashed), then grid crops row by row."""
    best_w, best_h = llava_select_best_resolution(image.size, [(w, h) for h, w in PINPOINTS])
    width, height = image.size
    scale_w, scale_h = best_w / width, best_h / height
    if scale_w < scale_h:
        new_w, new_h = best_w, min(math.ceil(height * scale_w), best_h)
    else:
        new_h, new_w = best_h, min(math.ceil(width * scale_h), best_w)
    padded = Image.new("RGB", (best_w, best_h), (0, 0, 0))
    padded.paste(image.resize((new_w, new_h), Image.BICUBIC), ((best_w - new_w) // 2, (best_h - new_h) // 2))
    grid = [
        padded.crop((j, i, j + IMAGE, i + IMAGE))
        for i in range(0, best_h, IMAGE)
        for j in range(0, best_w, IMAGE)
    ]
    return [image.resize((IMAGE, IMAGE), Image.BICUBIC), *grid]


def clip_normalise(crop: Image.Image) -> torch.Tensor:
    mean = np.array([0.48145466, 0.4578275, 0.40821073])
    std = np.array([0.26862954, 0.26130258, 0.27577711])
    array = (np.asarray(crop, dtype=np.float64) / 255.0 - mean) / std
    return torch.tensor(array.transpose(2, 0, 1), dtype=torch.float32)


class ReferenceLlava:
    """Original LLaVA inference from the original weights (no LLaVA-NeXT code)."""

    def __init__(self, folder: Path):
        from safetensors.torch import load_file
        from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlamaForCausalLM

        weights = {}
        for shard in sorted(folder.glob("model-*.safetensors")):
            weights.update(load_file(str(shard)))
        config = json.loads((folder / "config.json").read_text())
        self.merge = config["mm_patch_merge_type"]
        prefix = "model.vision_tower.vision_tower.vision_model."
        self.tower = CLIPVisionModel(CLIPVisionConfig(**tower_config())).eval()
        tower = {
            k[len(prefix) :]: t
            for k, t in weights.items()
            if k.startswith(prefix) and "position_ids" not in k
        }
        self.tower.load_state_dict(tower, strict=True)
        h = config["hidden_size"]
        self.projector = torch.nn.Sequential(
            torch.nn.Linear(VISION["hidden"], h), torch.nn.GELU(), torch.nn.Linear(h, h)
        )
        self.projector.load_state_dict(
            {k.removeprefix("model.mm_projector."): t for k, t in weights.items() if "mm_projector" in k}
        )
        llama_keys = {
            k: t
            for k, t in weights.items()
            if not k.startswith(("model.vision_tower", "model.mm_projector", "model.image_newline"))
        }
        fields = (
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "max_position_embeddings",
            "rms_norm_eps",
            "rope_theta",
            "vocab_size",
            "tie_word_embeddings",
        )
        self.llm = LlamaForCausalLM(LlamaConfig(**{k: config[k] for k in fields})).eval()
        self.llm.load_state_dict(llama_keys, strict=True)

    @torch.no_grad()
    def image_features(self, crops: torch.Tensor) -> torch.Tensor:
        """``encode_images`` then the flat merge: (1 + N) * tokens_per_crop rows."""
        assert self.merge == "flat", "the reference implements original LLaVA's flat merge"
        hidden = self.tower(crops, output_hidden_states=True).hidden_states[-2][
            :, 1:
        ]  # select_layer -2, 'patch'
        return self.projector(hidden).flatten(0, 1)

    @torch.no_grad()
    def greedy(self, ids: list[int], crops: torch.Tensor | None, max_new_tokens: int) -> list[int]:
        """``prepare_inputs_labels_for_multimodal`` splice at -200, then argmax decoding (no cache)."""
        embed = self.llm.get_input_embeddings()
        parts = []
        for i, chunk in enumerate(_split(ids)):
            if i:
                parts.append(self.image_features(crops))
            if chunk:
                parts.append(embed(torch.tensor(chunk)))
        embeds = torch.cat(parts)[None]
        out = []
        for _ in range(max_new_tokens):
            logits = self.llm(inputs_embeds=embeds).logits[0, -1]
            token = int(logits.argmax())
            out.append(token)
            if token == self.llm.config.eos_token_id:
                break
            embeds = torch.cat([embeds, embed(torch.tensor([[token]]))], dim=1)
        return out


def _split(ids: list[int]) -> list[list[int]]:
    chunks, current = [], []
    for token in ids:
        if token == IMAGE_TOKEN_INDEX:
            chunks.append(current)
            current = []
        else:
            current.append(token)
    return [*chunks, current]


def llava_prompt_ids(tokenizer, prompt: str) -> list[int]:
    """``tokenizer_image_token``: chunks around ``<image>`` tokenized separately, joined by -200."""
    chunks = [tokenizer(chunk, add_special_tokens=False).input_ids for chunk in prompt.split("<image>")]
    ids = list(chunks[0])
    for chunk in chunks[1:]:
        ids += [IMAGE_TOKEN_INDEX, *chunk]
    return ids
