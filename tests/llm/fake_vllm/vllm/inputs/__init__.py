"""``vllm.inputs`` of the test-only stand-in (see ``vllm/__init__.py``): prompts are plain dicts."""


def TextPrompt(**fields):
    return dict(fields)


def TokensPrompt(**fields):
    return dict(fields)
