"""vLLM model for flat-merge LLaVA-NeXT checkpoints; imported only by vLLM (see ``pulse.models.vllm_flat``).

GPU-only and written against vLLM's ``llava_next.py`` (``LlavaNextProcessingInfo``,
``LlavaNextMultiModalProcessor``, ``_merge_image_patch_embeddings``). It changes what the flat
merge changes and nothing else:
- the prompt's image-token count is ``(1 + N crops) * tokens_per_crop``;
- features are the crops flattened in order, with no unpad and no newline;
- the HF processor vLLM runs is ``PulseFlatLlavaNextProcessor``, so its expansion agrees.
Weights load through the parent's loader. A vision key saved without ``vision_model.`` (transformers
5.x CLIP) gets the prefix vLLM's CLIP expects.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from transformers.models.llava_next.modeling_llava_next import get_anyres_image_grid_shape
from vllm.model_executor.models.llava import LlavaDummyInputsBuilder
from vllm.model_executor.models.llava_next import (
    LlavaNextForConditionalGeneration,
    LlavaNextMultiModalProcessor,
    LlavaNextProcessingInfo,
)
from vllm.multimodal import MULTIMODAL_REGISTRY

from pulse.models.flat_merge import flat_processor_from


class FlatProcessingInfo(LlavaNextProcessingInfo):
    def get_hf_processor(self, **kwargs):
        return flat_processor_from(super().get_hf_processor(**kwargs))

    def get_num_image_tokens(self, *, image_width: int, image_height: int, **kwargs) -> int:
        config = self.get_hf_config()
        encoder = self.get_vision_encoder_info()
        per_crop = self._apply_feature_select_strategy(
            config.vision_feature_select_strategy,
            encoder.get_num_image_tokens(image_width=image_width, image_height=image_height),
        )
        rows, cols = get_anyres_image_grid_shape(
            image_size=(image_height, image_width),
            grid_pinpoints=config.image_grid_pinpoints,
            patch_size=encoder.get_image_size(),
        )
        return (1 + rows * cols) * per_crop


@MULTIMODAL_REGISTRY.register_processor(
    LlavaNextMultiModalProcessor, info=FlatProcessingInfo, dummy_inputs=LlavaDummyInputsBuilder
)
class PulseFlatLlavaNextForVLLM(LlavaNextForConditionalGeneration):
    def _merge_image_patch_embeddings(self, image_size, patch_embeddings, *, strategy: str):
        rows, cols = get_anyres_image_grid_shape(
            tuple(image_size.tolist()), self.config.image_grid_pinpoints, self.config.vision_config.image_size
        )
        # crops may be padded for batching: keep the base crop and this image's own grid
        return patch_embeddings[: 1 + rows * cols].flatten(0, 1)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]):
        def renamed():
            for name, tensor in weights:
                if name.startswith("vision_tower.") and not name.startswith("vision_tower.vision_model."):
                    name = "vision_tower.vision_model." + name[len("vision_tower.") :]
                yield name, tensor

        return super().load_weights(renamed())
