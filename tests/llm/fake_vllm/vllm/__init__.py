"""A test-only stand-in for the ``vllm`` package: just the surface ``ray.data.llm``'s vLLM stage uses.

vLLM needs a CUDA GPU and cannot be installed on the CPU machines that run pulse's tests. This
package lets Ray's *real* ``build_processor`` pipeline (chat template, tokenize, engine stage on a
GPU placement group, detokenize) run end to end on CPU, so pulse's ``apply_vllm`` wiring and row
contract are exercised against the rows Ray really produces. The "engine" is a real small causal LM
run with transformers (greedy/sampled ``generate`` on the prompt token ids), and it rejects a prompt
that does not fit ``max_model_len`` the way vLLM does. Never put this directory on a real
``PYTHONPATH``.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

# Importing the submodules also makes them attributes of the package: ray reads vllm.outputs.* etc.
from vllm.outputs import CompletionOutput, PoolingRequestOutput, RequestOutput  # noqa: F401
from vllm.sampling_params import SamplingParams, StructuredOutputsParams  # noqa: F401

__version__ = "0.0.0+pulse.test.fake"
__all__ = ["AsyncEngineArgs", "AsyncLLMEngine", "PoolingParams", "SamplingParams"]


class PoolingParams(dict):
    """Unused by generation; present because ray imports the name."""


class AsyncEngineArgs:
    def __init__(self, model: str, max_model_len: int | None = None, max_num_seqs: int = 8, **kwargs):
        self.model = model
        self.max_model_len = max_model_len
        self.max_num_seqs = max_num_seqs
        self.kwargs = kwargs

    def create_engine_config(self):
        return SimpleNamespace(
            scheduler_config=SimpleNamespace(max_num_seqs=self.max_num_seqs),
            parallel_config=SimpleNamespace(
                pipeline_parallel_size=self.kwargs.get("pipeline_parallel_size", 1),
                tensor_parallel_size=self.kwargs.get("tensor_parallel_size", 1),
            ),
        )


class AsyncLLMEngine:
    """Generates with a transformers model, one request at a time behind a lock."""

    def __init__(self, args: AsyncEngineArgs):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(args.model)
        self.model = AutoModelForCausalLM.from_pretrained(args.model).eval()
        self.max_model_len = args.max_model_len or self.model.config.max_position_embeddings
        self.lock = asyncio.Lock()

    @classmethod
    def from_engine_args(cls, engine_args: AsyncEngineArgs, stat_loggers=None) -> AsyncLLMEngine:
        return cls(engine_args)

    def _generate(self, token_ids: list[int], params: SamplingParams) -> list[int]:
        import torch

        with torch.no_grad():
            out = self.model.generate(
                torch.tensor([token_ids]),
                max_new_tokens=params.max_tokens,
                do_sample=params.temperature > 0,
                temperature=params.temperature or None,
                top_p=params.top_p if params.temperature > 0 else None,
                pad_token_id=self.tokenizer.eos_token_id,
            )
        return out[0, len(token_ids) :].tolist()

    async def generate(self, request_id: str, prompt: dict, sampling_params: SamplingParams, **_):
        token_ids = prompt.get("prompt_token_ids") or self.tokenizer(prompt["prompt"])["input_ids"]
        if len(token_ids) + sampling_params.max_tokens > self.max_model_len:
            raise ValueError(
                f"This model's maximum context length is {self.max_model_len} tokens. However, you "
                f"requested {len(token_ids) + sampling_params.max_tokens} tokens"
            )
        async with self.lock:
            generated = await asyncio.to_thread(self._generate, list(token_ids), sampling_params)
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        for stop in sampling_params.stop or []:
            text = text.split(stop)[0]
        yield RequestOutput(
            request_id=request_id,
            prompt=prompt.get("prompt"),
            prompt_token_ids=list(token_ids),
            outputs=[CompletionOutput(index=0, text=text, token_ids=generated)],
            finished=True,
        )

    async def do_log_stats(self) -> None:
        return None

    def shutdown(self) -> None:
        return None
