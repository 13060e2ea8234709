"""Ray Serve endpoint: OpenAI-compatible chat completions over ECG images (see ``pulse.serve.job``)."""
