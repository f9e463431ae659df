"""The HTTP app both graph servers wrap around their API (``langgraph.json``'s ``http.app``).

It adds no routes; its middleware applies to every request of the server:

- a request body over ``LOTTERY_MAX_BODY_BYTES`` (default 2 MiB) is refused with 413
  before anything reads or stores it;
- with authentication off (:mod:`lottery.auth`, dev mode) every response says so in an
  ``X-Lottery-Auth: off`` header, and the server's log says so at start.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from fastapi import FastAPI

from lottery import auth

MAX_BODY_ENV = "LOTTERY_MAX_BODY_BYTES"
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024

logger = logging.getLogger("lottery.auth")


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, by its Content-Length, or counted
    as it arrives when none is declared (such a body is read before the app sees it)."""

    def __init__(self, app: Any, max_bytes: int, dev_mode: bool = False) -> None:
        self.app, self.max_bytes, self.dev_mode = app, max_bytes, dev_mode

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and self.dev_mode:
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-lottery-auth", b"off")]}
            await send(message)

        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:  # the HTTP server holds the body to its declared length
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._refuse(send_marked)
                return
            await self.app(scope, receive, send_marked)
            return
        # No length declared (chunked): read it here, up to the limit, then hand it on.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send_marked)
                return
            if not message.get("more_body"):
                break
        body, handed = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_marked)

    async def _refuse(self, send: Any) -> None:
        body = (f'{{"detail": "request body over {self.max_bytes} bytes '
                f'({MAX_BODY_ENV})"}}').encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def max_body_bytes() -> int:
    raw = os.environ.get(MAX_BODY_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BODY_BYTES
    if not raw.isdigit() or int(raw) < 1024:
        raise SystemExit(f"error: {MAX_BODY_ENV} must be a whole number of bytes >= 1024, not {raw!r}")
    return int(raw)


def create_app() -> FastAPI:
    """The app, with the body limit; warns on standard error when authentication is off."""
    dev = auth.dev_mode()
    if dev:
        logger.warning(auth.DEV_WARNING)
        print(f"WARNING: {auth.DEV_WARNING}", file=sys.stderr, flush=True)
    app = FastAPI(title="lottery-llm graph server")
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes(), dev_mode=dev)
    return app


app = create_app()
