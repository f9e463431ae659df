"""A scripted OpenAI-compatible chat server on 127.0.0.1, for driving a real graph server.

``langgraph dev`` runs the graphs in its own process, so a test cannot inject a
chat model object there; it points ``LOTTERY_BASE_URL`` at this server instead.
``respond(system, user)`` returns the reply text; usage is counted in words.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Respond = Callable[[str, str], str]


class OpenAIStub:
    """``with OpenAIStub(respond) as stub:`` serves ``stub.base_url`` (…/v1) until the block ends."""

    def __init__(self, respond: Respond, model: str = "scripted") -> None:
        self.respond = respond
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": stub.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                stub.requests.append(body)
                messages = body.get("messages", [])
                system = next((m["content"] for m in messages if m["role"] == "system"), "")
                user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
                text = stub.respond(str(system), str(user))
                prompt = sum(len(str(m.get("content", "")).split()) for m in messages)
                self._send(200, {
                    "id": f"chatcmpl-{len(stub.requests)}", "object": "chat.completion",
                    "created": int(time.time()), "model": body.get("model", stub.model),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": len(text.split()),
                              "total_tokens": prompt + len(text.split())},
                })

        return Handler
