"""A scripted OpenAI-compatible endpoint on 127.0.0.1 for the LLM-stage build tests.

A fake on purpose, and said so: no model that runs on this CPU follows the synthesis and judge
instructions well enough to test the pipeline's behaviour (SmolLM2-135M answers "What a
fascinating topic!"), and the tests need a judge that is malformed on demand. The HTTP, the
pulse http engine, Ray Data and every build stage are real. The system message picks the role:

- translation: ``English: <fixed translation>``;
- synthesis: a well-formed task per requested type (close-ended answers claim atrial fibrillation,
  which the faithfulness rules must catch on sinus-rhythm records), or a 2-exchange dialogue;
- judge: scores 4 (fill-in-the-blank rows 2, below threshold), ``"consistent": false`` for
  dialogues; a prompt's first judge call is malformed, open-ended rows are always malformed.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TRANSLATION = "Sinus rhythm, normal axis, otherwise normal ECG (translated)."
VERDICT = (
    '{{"relevance": {{"score": {s}, "reason": "on topic"}}, "clarity": {{"score": {s}, "reason": "clear"}}, '
    '"answerability": {{"score": {s}, "reason": "visible"}}, "consistent": {c}}}'
)
SINGLE = {
    "close-ended": "Task: Is atrial fibrillation present on this ECG?\nResponse: Yes, atrial fibrillation is present.",
    "open-ended": "Task: Describe the T waves in the precordial leads.\nResponse: They are flattened in V3 and V4.",
    "fill-in-the-blank": "Task: The dominant rhythm on this tracing is ____.\nResponse: sinus rhythm",
    "multiple-choice": (
        "Task: Which rhythm does this ECG show?\nA. Sinus rhythm\nB. Atrial flutter\nC. Ventricular tachycardia\n"
        "Response: Regular P waves precede every QRS complex.\nAnswer: A"
    ),
}
DIALOGUE = (
    "Human: What is the rhythm?\nAssistant: A regular sinus rhythm.\n"
    "Human: Are the T waves normal?\nAssistant: They are flattened in V3 and V4."
)


class ScriptedLLM:
    """Start with ``with ScriptedLLM() as llm: llm.base_url``; ``llm.prompts`` records every user message."""

    def __init__(self):
        self.prompts: list[tuple[str, str]] = []
        self.judge_calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = server.reply(body["messages"])
                payload = {
                    "id": "x",
                    "object": "chat.completion",
                    "model": body.get("model", "scripted"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                }
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reply(self, messages: list[dict]) -> str:
        system, user = messages[0]["content"], messages[-1]["content"]
        with self._lock:
            role = "translate" if "translate" in system else "judge" if "reviewer" in system else "synthesis"
            self.prompts.append((role, user))
            if role == "translate":
                return "English: " + TRANSLATION
            if role == "synthesis":
                if "dialogue" in user:
                    return DIALOGUE
                return next(text for kind, text in SINGLE.items() if f"Question type: {kind}." in user)
            key = hashlib.sha1(user.encode()).hexdigest()
            self.judge_calls[key] += 1
            if (
                self.judge_calls[key] == 1
                or "Describe the T waves in the precordial leads." in user.split("Conversation:")[-1]
            ):
                return "The pair looks fine to me. Score: 4"
            if "Are the T waves normal?" in user:
                return VERDICT.format(s=4, c="false")
            return VERDICT.format(s=2 if "____" in user else 4, c="true")

    def __enter__(self) -> ScriptedLLM:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
