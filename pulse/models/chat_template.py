"""The llava_v1 (Vicuna) conversation format PULSE trained and evaluated with.

``{system} USER: <image>\\n{q} ASSISTANT: {a}</s>USER: {q2} ASSISTANT:``
"""

LLAVA_V1_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)

# Content may be a plain string or a list of OpenAI/HF parts; images always come first in a turn.
LLAVA_V1_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] if messages[0]['content'] is string "
    "else messages[0]['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join(' ') -%}"
    "{%- set messages = messages[1:] -%}"
    "{%- else -%}{%- set system = '" + LLAVA_V1_SYSTEM.replace("'", "\\'") + "' -%}{%- endif -%}"
    "{{- system + ' ' -}}"
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}{%- set text = message['content'] -%}{%- set n_images = 0 -%}"
    "{%- else -%}"
    "{%- set text = message['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('\\n') -%}"
    "{%- set n_images = message['content'] | selectattr('type', 'in', ['image', 'image_url']) | list | length -%}"
    "{%- endif -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- 'USER: ' + ('<image>\\n' * n_images) + text + ' ' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- 'ASSISTANT: ' + text + eos_token -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- 'ASSISTANT:' -}}{%- endif -%}"
)
