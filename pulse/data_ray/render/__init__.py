"""Paper-ECG rendering: layouts, grid, traces, header, distortions, exact pixel coordinates.

``Renderer(RenderParams(...)).render(record, seed)`` draws one page; ``RenderStage`` applies it
with Ray Data ``map_batches``; ``pulse render`` (``job.run``) runs the whole stage.
"""

from pulse.data_ray.render.renderer import RenderedImage, Renderer, RenderParams

__all__ = ["RenderParams", "RenderedImage", "Renderer"]
