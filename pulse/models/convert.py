"""Convert an original-LLaVA checkpoint (PULSE-7B, liuhaotian llava-v1.6) to a Hugging Face LLaVA-NeXT folder.

  pulse convert PULSE-ECG/PULSE-7B /models/pulse-7b
  pulse convert s3://bucket/ckpt/pulse-7b /models/pulse-7b --name pulse-7b
  pulse convert ./my-llava ./my-llava-hf --vision-tower ./clip-vit-large-patch14-336

SOURCE is a local folder, an ``s3://`` prefix or a hub id (downloaded with
``huggingface_hub.snapshot_download``). The output folder holds: the weights under the installed
transformers' LLaVA-NeXT names (safetensors), a config recording the patch merge
(``pulse_patch_merge: flat|spatial_unpad``) and the model's identity (``pulse_identity``), a
processor with CLIP preprocessing built in (no hub access at load), the llava_v1 chat template,
and ``<image>`` appended as the last token (text token ids unchanged; embeddings resized; the
new row is suppressed in generation so greedy output equals original LLaVA's). ``pulse serve``,
``pulse train`` and ``pulse ecgbench`` load it; see docs/convert.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from pulse import io
from pulse.models.checkpoint_info import IDENTITY_FIELD, KNOWN_CHECKPOINTS
from pulse.models.convert_source import (
    fetch_source,
    load_tokenizer,
    read_weights,
    resolve_vision_tower,
    weight_files,
)
from pulse.models.original_llava import (
    ConvertError,
    check_original,
    llava_next_config_dict,
    target_name,
)


def build_processor(tokenizer, vision: dict[str, Any], config):
    """LLaVA-NeXT processor with CLIP preprocessing (mean/std, bicubic, ``image_size`` crops) built in."""
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
    from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil

    from pulse.models.chat_template import LLAVA_V1_TEMPLATE
    from pulse.models.flat_merge import processor_class_for

    side = vision["image_size"]
    image_processor = LlavaNextImageProcessorPil(
        size={"shortest_edge": side},
        crop_size={"height": side, "width": side},
        image_grid_pinpoints=config.image_grid_pinpoints,
        image_mean=list(OPENAI_CLIP_MEAN),
        image_std=list(OPENAI_CLIP_STD),
    )
    tokenizer.chat_template = LLAVA_V1_TEMPLATE
    return processor_class_for(config)(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=vision["patch_size"],
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        num_additional_image_tokens=1,  # CLIP's CLS
        chat_template=LLAVA_V1_TEMPLATE,
    )


def remap(weights: dict[str, Any], tower: dict[str, Any], target_keys: set[str]) -> dict[str, Any]:
    """Original-LLaVA tensors under HF names; every target parameter must be filled exactly once."""
    out: dict[str, Any] = {}
    for source_weights, from_folder in ((weights, False), (tower, True)):
        for key, tensor in source_weights.items():
            name = target_name(key, target_keys, from_tower_folder=from_folder)
            if name is not None:
                out[name] = tensor
    unexpected = sorted(set(out) - target_keys)
    if unexpected:
        raise ConvertError(f"weights with no place in LLaVA-NeXT: {unexpected[:5]}")
    if "model.image_newline" in target_keys and "model.image_newline" not in out:
        out["model.image_newline"] = _zeros_like_row(out["model.language_model.embed_tokens.weight"])
    missing = sorted(target_keys - set(out))
    if missing:
        raise ConvertError(f"the checkpoint lacks {len(missing)} LLaVA-NeXT weights, e.g. {missing[:5]}")
    return out


def _zeros_like_row(matrix):
    return matrix.new_zeros(matrix.shape[1])  # flat merge never reads image_newline


def grow_vocab(tensors: dict[str, Any], vocab_size: int) -> None:
    """Append mean rows so embeddings and lm_head have ``vocab_size`` rows (old rows untouched)."""
    import torch

    for key in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
        matrix = tensors[key]
        extra = vocab_size - matrix.shape[0]
        if extra > 0:
            mean = matrix.float().mean(dim=0, keepdim=True).to(matrix.dtype)
            tensors[key] = torch.cat([matrix, mean.expand(extra, -1)], dim=0)


def convert(
    source: str,
    output: str,
    vision_tower: str | None = None,
    name: str | None = None,
    revision: str | None = None,
    storage: io.StorageOptions | None = None,
) -> dict[str, Any]:
    """Write the HF LLaVA-NeXT folder for ``source`` to ``output`` (local or ``s3://``); returns a summary."""
    import torch
    from transformers import GenerationConfig, LlavaNextConfig

    from pulse.models.flat_merge import model_class_for

    with tempfile.TemporaryDirectory(prefix="pulse-convert-") as workdir:
        folder = fetch_source(source, workdir, revision, storage)
        if not (folder / "config.json").exists():
            raise ConvertError(f"{source}: no config.json")
        original = json.loads((folder / "config.json").read_text())
        check_original(original)
        files = weight_files(folder)  # fails on missing shards before anything heavy is read
        tokenizer = load_tokenizer(folder)
        image_token_index = tokenizer.convert_tokens_to_ids("<image>")
        vocab_size = max(int(original["vocab_size"]), image_token_index + 1)
        weights = read_weights(files)
        vision, tower = resolve_vision_tower(original, weights, vision_tower, workdir)
        config = LlavaNextConfig(**llava_next_config_dict(original, vision, vocab_size, image_token_index))
        identity = name or KNOWN_CHECKPOINTS.get(source) or Path(source.rstrip("/")).name.lower()
        setattr(config, IDENTITY_FIELD, {"name": identity, "source": source, "source_format": "llava_llama"})
        model_class = model_class_for(config)
        with torch.device("meta"):
            model = model_class(config)
        target_keys = set(model.state_dict())
        tensors = remap(weights, tower, target_keys)
        grow_vocab(tensors, vocab_size)
        model.load_state_dict(tensors, strict=True, assign=True)
        dtype = tensors["lm_head.weight"].dtype
        model.config.dtype = dtype
        model.generation_config = _generation_config(GenerationConfig, folder, tokenizer, image_token_index)
        processor = build_processor(tokenizer, vision, config)
        with tempfile.TemporaryDirectory(prefix="pulse-convert-out-") as staged:
            model.save_pretrained(staged, safe_serialization=True)
            processor.save_pretrained(staged)
            _publish(Path(staged), output, storage)
    return {
        "output": output,
        "name": identity,
        "patch_merge": config.pulse_patch_merge,
        "architecture": model_class.__name__,
        "image_token_index": image_token_index,
        "vocab_size": vocab_size,
        "dtype": str(dtype).removeprefix("torch."),
    }


def _generation_config(generation_config_class, folder: Path, tokenizer, image_token_index: int):
    if (folder / "generation_config.json").exists():
        generation = generation_config_class.from_pretrained(str(folder))
    else:
        generation = generation_config_class(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
        )
    generation.pad_token_id = tokenizer.pad_token_id
    # The appended <image> row must never be generated: original LLaVA's vocabulary has no such token.
    generation.suppress_tokens = sorted(set(generation.suppress_tokens or []) | {image_token_index})
    return generation


def _publish(staged: Path, output: str, storage) -> None:
    if not io.is_remote(output):
        Path(output).mkdir(parents=True, exist_ok=True)
    for file in sorted(staged.rglob("*")):
        if file.is_file():
            target = io.join(output, str(file.relative_to(staged)))
            if io.is_remote(output):
                io.write_bytes(target, file.read_bytes(), storage)
            else:
                shutil.move(str(file), target)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__
    parser.add_argument(
        "source", help="original-LLaVA folder, s3:// prefix or hub id (e.g. PULSE-ECG/PULSE-7B)"
    )
    parser.add_argument(
        "output", help="output folder (local or s3://) for the Hugging Face LLaVA-NeXT checkpoint"
    )
    parser.add_argument(
        "--vision-tower", help="CLIP folder or hub id, when the tower is not inside the weights"
    )
    parser.add_argument("--name", help="identity recorded in config.json (default: known id or folder name)")
    parser.add_argument("--revision", help="hub revision (branch, tag or commit)")


def main(args: argparse.Namespace) -> int:
    try:
        summary = convert(args.source, args.output, args.vision_tower, args.name, args.revision)
    except (ConvertError, FileNotFoundError) as exc:
        print(f"pulse convert: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0
