"""``pulse convert`` on tiny original-LLaVA checkpoints written with PULSE-7B's key names and config fields."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pulse import io
from pulse.cli import main as cli_main
from pulse.models.chat_template import LLAVA_V1_TEMPLATE
from pulse.models.convert import ConvertError, convert, fetch_source
from pulse.models.flat_merge import (
    PulseFlatLlavaNextForConditionalGeneration,
    PulseFlatLlavaNextProcessor,
    load_llava_next,
)
from tests.models.original_llava_testlib import original_weights, write_original_llava


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """{merge: (original folder, converted folder)}; the flat one goes through the ``pulse convert`` CLI."""
    root = tmp_path_factory.mktemp("convert")
    out = {}
    for merge in ("flat", "spatial_unpad"):
        src = write_original_llava(root / f"orig-{merge}", merge)
        dst = root / f"hf-{merge}"
        if merge == "flat":
            assert cli_main(["convert", str(src), str(dst), "--name", "tiny-pulse"]) == 0
        else:
            convert(str(src), str(dst))
        out[merge] = (src, dst)
    return out


def _converted_tensors(folder: Path) -> dict[str, torch.Tensor]:
    model, _ = load_llava_next(str(folder))
    return model.state_dict()


@pytest.mark.parametrize("merge", ["flat", "spatial_unpad"])
def test_round_trip_keeps_every_weight_and_records_the_merge(converted, merge):
    src, dst = converted[merge]
    config = json.loads((dst / "config.json").read_text())
    assert config["model_type"] == "llava_next"
    assert config["pulse_patch_merge"] == merge
    assert config["image_token_index"] == 512 and config["text_config"]["vocab_size"] == 513
    assert config["vision_feature_layer"] == -2 and config["vision_feature_select_strategy"] == "default"
    assert config["image_grid_pinpoints"] == [[56, 112], [112, 56], [112, 112]]
    assert config["pulse_identity"]["source"] == str(src)
    assert config["pulse_identity"]["name"] == ("tiny-pulse" if merge == "flat" else "orig-spatial_unpad")
    original = original_weights(512, seed=0)
    got = _converted_tensors(dst)
    mapping = {
        "model.embed_tokens.weight": "model.language_model.embed_tokens.weight",
        "model.layers.1.mlp.down_proj.weight": "model.language_model.layers.1.mlp.down_proj.weight",
        "model.norm.weight": "model.language_model.norm.weight",
        "model.mm_projector.0.weight": "model.multi_modal_projector.linear_1.weight",
        "model.mm_projector.2.bias": "model.multi_modal_projector.linear_2.bias",
        "model.image_newline": "model.image_newline",
        "lm_head.weight": "lm_head.weight",
    }
    tower = "model.vision_tower.vision_tower.vision_model."
    for key in [k for k in original if k.startswith(tower) and "position_ids" not in k]:
        inner = key[len(tower) :]
        mapping[key] = next(
            k for k in got if k.endswith("vision_tower." + inner) or k.endswith("vision_model." + inner)
        )
    n_original = sum(1 for k in original if "position_ids" not in k)
    assert len([k for k in got if "position_ids" not in k]) == n_original
    for source, target in mapping.items():
        expected, actual = original[source], got[target]
        if source in ("model.embed_tokens.weight", "lm_head.weight"):  # text rows unchanged, <image> appended
            assert actual.shape[0] == expected.shape[0] + 1
            assert torch.equal(actual[:-1], expected)
            assert torch.allclose(actual[-1], expected.mean(0), atol=1e-6)
        else:
            assert torch.equal(actual, expected), source


@pytest.mark.parametrize("merge", ["flat", "spatial_unpad"])
def test_tokenizer_processor_and_template(converted, merge):
    from transformers import AutoTokenizer

    src, dst = converted[merge]
    model, processor = load_llava_next(str(dst))
    flat = merge == "flat"
    assert isinstance(model, PulseFlatLlavaNextForConditionalGeneration) == flat
    assert isinstance(processor, PulseFlatLlavaNextProcessor) == flat
    assert json.loads((dst / "config.json").read_text())["architectures"] == [type(model).__name__]
    text = "USER: Is this normal sinus rhythm? Answer: NORM; AF ASSISTANT:"
    before = AutoTokenizer.from_pretrained(str(src))(text, add_special_tokens=False).input_ids
    assert processor.tokenizer(text, add_special_tokens=False).input_ids == before
    assert processor.tokenizer.convert_tokens_to_ids("<image>") == 512
    assert processor.chat_template == LLAVA_V1_TEMPLATE
    ip = processor.image_processor
    assert ip.image_mean == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    assert ip.image_std == pytest.approx([0.26862954, 0.26130258, 0.27577711])
    assert ip.crop_size["height"] == 56 and ip.image_grid_pinpoints == [[56, 112], [112, 56], [112, 112]]
    assert model.generation_config.suppress_tokens == [512]
    assert json.loads((dst / "processor_config.json").read_text()).get("processor_class") in (
        None,
        "LlavaNextProcessor",
    )


def test_vision_tower_from_a_separate_folder(tmp_path):
    src = write_original_llava(tmp_path / "orig", "flat", tower_inside=False)
    assert not any("vision_tower" in k for k in load_file(str(next(src.glob("model-*.safetensors")))))
    summary = convert(str(src), str(tmp_path / "hf"))  # mm_vision_tower names the tower folder
    assert summary["patch_merge"] == "flat"
    shutil.rmtree(tmp_path / "orig-clip-tower")
    with pytest.raises(ConvertError, match=r"neither inside the weights .* nor given"):
        convert(str(src), str(tmp_path / "hf2"))


def test_errors_name_what_is_wrong(tmp_path, capsys):
    src = write_original_llava(tmp_path / "orig", "flat")
    config = json.loads((src / "config.json").read_text())
    for field, value, message in [
        ("mm_projector_type", "linear", "unknown projector type mm_projector_type='linear'"),
        ("mm_patch_merge_type", "spatial", "mm_patch_merge_type='spatial' is not supported"),
        ("image_aspect_ratio", "pad", "only 'anyres'"),
    ]:
        (src / "config.json").write_text(json.dumps({**config, field: value}))
        with pytest.raises(ConvertError, match=message):
            convert(str(src), str(tmp_path / "out"))
    (src / "config.json").write_text(json.dumps(config))
    (src / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(ConvertError, match=r"missing shards \['model-00002-of-00002.safetensors'\]"):
        convert(str(src), str(tmp_path / "out"))
    assert cli_main(["convert", str(src), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pulse convert: ") and "missing shards" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_hub_id_goes_through_snapshot_download(tmp_path, monkeypatch):
    # No hub is reachable here; offline mode makes snapshot_download fail fast, and the error names the repo.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with pytest.raises(ConvertError, match="cannot download 'PULSE-ECG/PULSE-7B' from the Hugging Face hub"):
        fetch_source("PULSE-ECG/PULSE-7B", str(tmp_path))


def test_s3_source_and_output(tmp_path, s3_bucket):
    src = write_original_llava(tmp_path / "orig", "spatial_unpad", tower_inside=True)
    for file in src.iterdir():
        io.write_bytes(f"{s3_bucket}/orig/{file.name}", file.read_bytes())
    summary = convert(f"{s3_bucket}/orig", f"{s3_bucket}/hf", name="tiny-llava")
    assert summary["name"] == "tiny-llava" and summary["patch_merge"] == "spatial_unpad"
    names = {Path(p).name for p in io.list_files(f"{s3_bucket}/hf")}
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json"} <= names
