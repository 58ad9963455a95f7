"""A fake OpenAI-compatible chat server on 127.0.0.1 that answers from a queue.

Each queued answer is an HTTP status (429, 500, ...), a status and its error message
((400, "maximum context length ..."), a reply body as is ({"raw": {...}}, e.g. empty
`choices`), "hang" (never answers), or an assistant message (dict with `content` and
optional `tool_calls`). Every request is recorded, and its Authorization header.
"""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from typing import Any


class FakeOpenAI:
    def __init__(self, answers: list[int | dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []
        self.keys: list[str | None] = []
        self.released = threading.Event()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.keys.append(self.headers.get("Authorization"))
                answer = fake.answers.pop(0) if fake.answers else {"content": "(no more answers)"}
                if answer == "hang":
                    fake.released.wait()
                    return
                if isinstance(answer, int):
                    answer = (answer, "slow down")
                if isinstance(answer, tuple):
                    payload = json.dumps({"error": {"message": answer[1], "type": "error", "code": answer[0]}})
                    self._send(answer[0], payload)
                    return
                if "raw" in answer:
                    self._send(200, json.dumps(answer["raw"]))
                    return
                calls = [
                    {"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                     "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                    for c in answer.get("tool_calls", [])
                ]  # fmt: skip
                message = {"role": "assistant", "content": answer.get("content"), **({"tool_calls": calls} if calls else {})}
                self._send(200, json.dumps({
                    "id": "chatcmpl-fake", "object": "chat.completion", "created": 0,
                    "model": body.get("model"),
                    "choices": [{"index": 0, "message": message,
                                 "finish_reason": "tool_calls" if calls else "stop"}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                }))  # fmt: skip

            def _send(self, status: int, payload: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.released.set()  # a hanging answer ends
        self.server.shutdown()
        self.server.server_close()
