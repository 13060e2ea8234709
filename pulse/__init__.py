"""pulse: teach multimodal LLMs to read ECG images, on Ray."""

__version__ = "0.1.0"
