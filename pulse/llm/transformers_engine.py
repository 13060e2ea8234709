"""The in-process engine: Hugging Face ``generate`` with real batching, for Ray Data and Serve.

``TransformersEngine`` loads a model once (``pulse.models.loader``) and turns a list of
``ChatRequest`` into ``ChatResult``, in order, never raising for a bad request. Greedy
requests are batched together whatever their ``max_tokens`` or stop strings: one
``RowStopper`` finishes each row on its own. Sampled requests are batched by (temperature,
top_p); one with a seed runs alone, so its text does not depend on its neighbours. Rows are
sorted by length and run ``batch_size`` at a time with left padding; a batch that fails is
retried row by row, so one bad row never takes its neighbours down.

Before any prefill a request is checked: rendered with the chat template (``template_error``),
measured against the context (``context_length_exceeded``: prompt > ``max_input_tokens``, or
prompt + ``max_tokens`` > the model's context, image tokens included), and against its deadline
and cancel event (``timeout``/``cancelled``, also checked after image preprocessing and after
every token). Vision-language folders take ``image_url`` parts (``data:`` URLs, decoded by the
endpoint's checked decoder) and ``image`` placeholders for pre-decoded images.
``TransformersBatchUDF`` is the Ray Data actor around it; ``pulse.serve.server`` the Serve one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from pulse.llm.base import (
    CONTEXT_LENGTH_EXCEEDED,
    ChatRequest,
    ChatResult,
    run_table,
    short,
    truncate_at_stop,
)
from pulse.llm.config import TransformersEngineConfig
from pulse.llm.streaming import RowStopper
from pulse.models.loader import context_length, load_model


def decode_image_url(url: str):
    """An RGB PIL image from a base64 ``data:`` URL, through the endpoint's checked decoder."""
    from pulse.serve.config import LimitsConfig
    from pulse.serve.images import decode_data_url, open_image
    from pulse.serve.protocol import APIError

    limits = LimitsConfig()
    try:
        return open_image(decode_data_url(url, limits, "image_url"), limits, "image_url")
    except APIError as err:
        raise ValueError(err.message) from None


def split_content(
    messages: list[dict], vision: bool, images: tuple | list = ()
) -> tuple[list[dict], list[Any]]:
    """Messages the chat template can render, plus the images in order (decoded or given)."""
    rendered, out_images = [], []
    given = iter(images)
    for message in messages:
        content = message["content"]
        if content is None or isinstance(content, str):
            rendered.append({"role": message["role"], "content": content or ""})
            continue
        parts, texts = [], []
        for part in content:
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": part.get("text") or ""})
                texts.append(part.get("text") or "")
            elif kind in {"image_url", "image"}:
                if not vision:
                    raise ValueError("this model is text-only and takes no image_url parts")
                if kind == "image_url":
                    out_images.append(decode_image_url(part["image_url"]["url"]))
                else:
                    image = next(given, None)
                    if image is None:
                        raise ValueError("more image parts than images")
                    out_images.append(image)
                parts.append({"type": "image"})
            else:
                raise ValueError(f"unknown content part type {kind!r}")
        rendered.append({"role": message["role"], "content": parts if vision else "\n".join(texts)})
    return rendered, out_images


def batching_key(request: ChatRequest) -> tuple:
    """Requests with one key may share a ``generate`` call (seeded sampling never shares)."""
    params = request.params
    if params.temperature == 0:
        return ("greedy",)
    if params.seed is not None:
        return ("seeded", id(request))
    return ("sampled", params.temperature, params.top_p or 1.0)


class TransformersEngine:
    """A loaded Hugging Face model that answers batches of chat requests."""

    def __init__(self, cfg: TransformersEngineConfig):
        import torch

        self.cfg = cfg
        torch.set_num_threads(cfg.torch_threads or max(1, math.ceil(cfg.num_cpus)))
        loaded = load_model(cfg.model_source, cfg.dtype, cfg.cache_dir, cfg.seed)
        self.tokenizer, self.processor, self.model = loaded.tokenizer, loaded.processor, loaded.model
        device = cfg.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model.to(self.device)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self.eos_ids = {int(e) for e in [*eos, self.tokenizer.eos_token_id] if e is not None}
        self.max_model_len = cfg.max_model_len or context_length(self.model)

    @property
    def vision(self) -> bool:
        return self.processor is not None

    def render(self, request: ChatRequest) -> tuple[str, list[Any], int]:
        """(prompt text, images, prompt token count without image expansion) for one request."""
        messages, images = split_content(request.messages, self.vision, request.images)
        templater = self.processor or self.tokenizer
        prompt = templater.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        n_tokens = len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        return prompt, images, n_tokens

    def context_error(self, prompt_tokens: int, max_tokens: int) -> ChatResult | None:
        """``context_length_exceeded`` if the prompt (plus the completion) does not fit."""
        if prompt_tokens > self.cfg.max_input_tokens:
            detail = f"{prompt_tokens} prompt tokens > max_input_tokens={self.cfg.max_input_tokens}"
            return ChatResult.failed(CONTEXT_LENGTH_EXCEEDED, detail)
        if self.max_model_len and prompt_tokens + max_tokens > self.max_model_len:
            detail = (
                f"this model's maximum context length is {self.max_model_len} tokens, but "
                f"{prompt_tokens + max_tokens} were requested ({prompt_tokens} in the messages, "
                f"{max_tokens} in the completion)"
            )
            return ChatResult.failed(CONTEXT_LENGTH_EXCEEDED, detail)
        return None

    def generate(self, requests: list[ChatRequest], streamer=None) -> list[ChatResult]:
        """One result per request, in order; never raises for a bad request.

        ``streamer`` (one request only) receives the tokens; it is ended even when the request
        never reaches the model.
        """
        results: list[ChatResult | None] = [None] * len(requests)
        rendered: dict[int, tuple[str, list[Any], int]] = {}
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, request in enumerate(requests):
            if reason := request.stop_reason():
                results[i] = ChatResult.stopped(reason)
                continue
            try:
                rendered[i] = self.render(request)
            except Exception as exc:
                results[i] = ChatResult.failed("template_error", short(exc))
                continue
            results[i] = self.context_error(rendered[i][2], request.params.max_tokens)
            if results[i] is None:
                groups[batching_key(request)].append(i)
        try:
            for indices in groups.values():
                indices.sort(key=lambda i: rendered[i][2])
                for start in range(0, len(indices), self.cfg.batch_size):
                    chunk = indices[start : start + self.cfg.batch_size]
                    rows = [(requests[i], rendered[i]) for i in chunk]
                    for i, res in zip(chunk, self._generate_isolated(rows, streamer), strict=True):
                        results[i] = res
        finally:
            if streamer is not None:
                streamer.end()
        return [r if r is not None else ChatResult.failed("internal", "no result") for r in results]

    def _generate_isolated(self, rows: list[tuple[ChatRequest, tuple]], streamer) -> list[ChatResult]:
        try:
            return self._generate_batch(rows, streamer)
        except Exception as exc:
            if len(rows) == 1:
                return [ChatResult.failed("generation_error", short(repr(exc)))]
            return [self._generate_isolated([row], streamer)[0] for row in rows]

    def _encode(self, items: list[tuple[str, list[Any], int]]):
        prompts = [p for p, _, _ in items]
        # The chat template already renders the BOS token; don't let the tokenizer add a second.
        if self.vision:
            images = [img for _, imgs, _ in items for img in imgs]
            inputs = self.processor(
                images=images or None,
                text=prompts,
                padding=True,
                add_special_tokens=False,
                return_tensors="pt",
            )
        else:
            inputs = self.tokenizer(prompts, add_special_tokens=False, padding=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in inputs.items()}

    def _generate_batch(self, rows: list[tuple[ChatRequest, tuple]], streamer) -> list[ChatResult]:
        """Encode (image tokens included), re-check context and deadline, then one ``generate``."""
        import torch

        out: list[ChatResult | None] = [None] * len(rows)
        live = list(range(len(rows)))
        inputs = None
        while live:
            inputs = self._encode([rows[i][1] for i in live])
            lengths = inputs["attention_mask"].sum(dim=1).tolist()
            failed = []
            for k, i in enumerate(live):
                request = rows[i][0]
                out[i] = self.context_error(int(lengths[k]), request.params.max_tokens)
                if out[i] is None and (reason := request.stop_reason()):  # image preprocessing took time
                    out[i] = ChatResult.stopped(reason)
                if out[i] is not None:
                    failed.append(i)
            if not failed:
                break
            live = [i for i in live if i not in failed]
        if not live:
            return [r for r in out if r is not None]
        requests = [rows[i][0] for i in live]
        params = requests[0].params
        stopper = RowStopper(inputs["input_ids"].shape[1], requests, self.eos_ids, self._decode)
        gen: dict[str, Any] = {
            "max_new_tokens": max(r.params.max_tokens for r in requests),
            "stopping_criteria": [stopper],
            "pad_token_id": self.tokenizer.pad_token_id,
            "streamer": streamer,
        }
        if params.temperature > 0:
            gen.update(do_sample=True, temperature=params.temperature, top_p=params.top_p or 1.0, top_k=0)
            if params.seed is not None:
                torch.manual_seed(params.seed)
        else:
            gen.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **gen)
        prompt_len = inputs["input_ids"].shape[1]
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        for k, i in enumerate(live):
            request = requests[k]
            new = output[k, prompt_len:]
            end = stopper.finished_at[k] if stopper.finished_at[k] is not None else new.shape[0]
            reason = stopper.reasons[k] or ("length" if end >= request.params.max_tokens else "stop")
            kept = [t for t in new[:end].tolist() if t not in self.eos_ids]
            text, hit = truncate_at_stop(self._decode(kept), request.params.stop)
            out[i] = ChatResult(text, None, int(prompt_tokens[k]), int(end), "stop" if hit else reason)
        return [r if r is not None else ChatResult.failed("internal", "no result") for r in out]

    def _decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)


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
