"""A fake Anthropic Messages API on 127.0.0.1, for driving Claude Code offline.

Answers come from a queue: each is a list of content blocks, {"text": ...} or
{"tool": name, "input": {...}}; an answer [{"wait": seconds}] keeps the client waiting. Requests that are not the main conversation (Claude
Code also asks for short things, such as a title, with a small model) get a short
text reply without using the queue. Streaming and non-streaming requests are both
served; every request is recorded.
"""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from typing import Any


class FakeAnthropic:
    def __init__(self, answers: list[list[dict[str, Any]]], main_marker: str = "") -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []
        self.main_marker = main_marker  # text that only the main conversation's system prompt has
        self.closing = threading.Event()  # ends a wait when the server stops
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append({"path": self.path, "body": body})
                if "count_tokens" in self.path:
                    return self._json({"input_tokens": 100})
                blocks = fake._next(body)
                if blocks and "wait" in blocks[0]:
                    fake.closing.wait(blocks[0]["wait"])
                    blocks = [{"text": "Sorry, that took long."}]
                if body.get("stream"):
                    return self._stream(body, blocks)
                self._json(fake._message(body, blocks))

            def do_GET(self) -> None:
                fake.requests.append({"path": self.path, "body": None})
                self._json({})

            def _json(self, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict, blocks: list[dict]) -> None:
                message = fake._message(body, blocks)
                events = [("message_start", {"type": "message_start", "message": {**message, "content": [],
                                                                                   "stop_reason": None}})]  # fmt: skip
                for index, block in enumerate(message["content"]):
                    if block["type"] == "text":
                        start, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
                    else:
                        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
                    events += [
                        ("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}),
                        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}),
                        ("content_block_stop", {"type": "content_block_stop", "index": index}),
                    ]
                events += [
                    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": message["stop_reason"],
                                       "stop_sequence": None}, "usage": {"output_tokens": 20}}),
                    ("message_stop", {"type": "message_stop"}),
                ]  # fmt: skip
                payload = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _is_main(self, body: dict) -> bool:
        system = body.get("system") or ""
        text = system if isinstance(system, str) else json.dumps(system)
        return bool(body.get("tools")) and (not self.main_marker or self.main_marker in text)

    def _next(self, body: dict) -> list[dict]:
        if not self._is_main(body):
            return [{"text": "Ok."}]
        return self.answers.pop(0) if self.answers else [{"text": "I have nothing more to do."}]

    def _message(self, body: dict, blocks: list[dict]) -> dict:
        content = []
        for block in blocks:
            if "tool" in block:
                content.append({"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:12]}",
                                "name": block["tool"], "input": block["input"]})  # fmt: skip
            else:
                content.append({"type": "text", "text": block["text"]})
        return {
            "id": f"msg_{uuid.uuid4().hex[:12]}", "type": "message", "role": "assistant",
            "model": body.get("model", "claude-fake"), "content": content,
            "stop_reason": "tool_use" if any(c["type"] == "tool_use" for c in content) else "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 1000, "output_tokens": 20},
        }  # fmt: skip

    def __enter__(self) -> FakeAnthropic:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.closing.set()
        self.server.shutdown()
