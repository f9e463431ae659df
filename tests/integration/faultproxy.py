"""A fault-injecting HTTP proxy for an OpenAI-compatible model server.

It forwards every request to ``--upstream`` unless a fault is armed. Faults are
armed over HTTP on the proxy itself, so a test can change them during a run::

    POST /_fault {"mode": "error", "status": 500, "times": 2, "match": "Question: gamma"}
    POST /_fault {"mode": "pass"}          # disarm everything
    GET  /_fault/stats                     # what happened so far

Modes: ``error`` (answer ``status`` without asking upstream), ``slow`` (wait
``delay`` seconds, then forward), ``cut`` (forward, then send the headers and
half the body and close the connection), ``reset`` (close the connection
without any answer). ``times`` is how many matching requests get the fault
(-1: all of them); ``match`` is a regular expression the request body must
contain. Each response closes its connection, so clients never reuse a
half-dead one. Upstream unreachable: ``502``.

``stats["delivered"]`` lists ``{"step", "question"}`` of every completion that
reached the client in full: the tests use it to prove that no sub-problem was
answered twice.

Run it as a process: ``python -m tests.integration.faultproxy --port 8124
--upstream http://127.0.0.1:8123``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.integration.openai_stub import reply_for

_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive",
        "content-encoding", "accept-encoding"}


@dataclass
class Fault:
    mode: str
    times: int = -1
    status: int = 500
    delay: float = 0.0
    match: str | None = None


@dataclass
class Proxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    stats: dict[str, Any] = field(
        default_factory=lambda: {"requests": 0, "faults": {}, "delivered": []})
    client: httpx.AsyncClient | None = None

    def pick(self, body: bytes) -> Fault | None:
        text = body.decode("utf-8", "replace")
        for fault in self.faults:
            if fault.times == 0 or (fault.match and not re.search(fault.match, text)):
                continue
            if fault.times > 0:
                fault.times -= 1
            return fault
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, headers, body = await _read_request(reader)
        except (asyncio.IncompleteReadError, ValueError, ConnectionError):
            writer.close()
            return
        try:
            if path.startswith("/_fault"):
                await self.control(method, path, body, writer)
            else:
                await self.forward(method, path, headers, body, reader, writer)
        except ConnectionError:
            pass  # the client went away: nothing to answer
        finally:
            if not writer.is_closing():
                writer.close()

    async def control(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> None:
        if method == "POST":
            spec = json.loads(body or b"{}")
            if spec.get("mode", "pass") == "pass":
                self.faults.clear()
            else:
                self.faults.append(Fault(**spec))
        if path.endswith("/reset-stats"):
            self.stats = {"requests": 0, "faults": {}, "delivered": []}
        await _respond(writer, 200, json.dumps(self.stats).encode(), "application/json")

    async def forward(self, method: str, path: str, headers: dict[str, str], body: bytes,
                      reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats["requests"] += 1
        fault = self.pick(body)
        if fault is not None:
            self.stats["faults"][fault.mode] = self.stats["faults"].get(fault.mode, 0) + 1
            if fault.mode == "reset":
                writer.transport.abort()
                return
            if fault.mode == "error":
                payload = json.dumps({"error": {"message": "injected fault", "code": fault.status}})
                await _respond(writer, fault.status, payload.encode(), "application/json")
                return
            if fault.mode == "slow":
                await asyncio.sleep(fault.delay)
                if reader.at_eof():  # the client gave up: do not load the upstream for nothing
                    return
        assert self.client is not None
        try:
            upstream = await self.client.request(
                method, path, content=body,
                headers={k: v for k, v in headers.items() if k not in _HOP})
        except httpx.HTTPError as exc:
            await _respond(writer, 502, f"upstream failed: {type(exc).__name__}".encode(), "text/plain")
            return
        content = upstream.content
        ctype = upstream.headers.get("content-type", "application/json")
        if fault is not None and fault.mode == "cut":
            head = _head(upstream.status_code, len(content), ctype)
            writer.write(head + content[: len(content) // 2])
            await writer.drain()
            writer.transport.abort()
            return
        await _respond(writer, upstream.status_code, content, ctype)
        if upstream.status_code == 200 and path.endswith("/chat/completions"):
            step, question, _ = reply_for(json.loads(body).get("messages") or [])
            self.stats["delivered"].append({"step": step, "question": question})


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, path, headers, body


def _head(status: int, length: int, ctype: str) -> bytes:
    return (f"HTTP/1.1 {status} X\r\ncontent-type: {ctype}\r\ncontent-length: {length}\r\n"
            "connection: close\r\n\r\n").encode()


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str) -> None:
    writer.write(_head(status, len(body), ctype) + body)
    await writer.drain()


async def serve(port: int, upstream: str) -> None:
    """Serve until cancelled."""
    proxy = Proxy(upstream)
    async with httpx.AsyncClient(base_url=upstream, timeout=None) as client:
        proxy.client = client
        server = await asyncio.start_server(proxy.handle, "127.0.0.1", port, limit=16 * 1024 * 1024)
        async with server:
            await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the real server (no /v1)")
    args = parser.parse_args()
    if not re.match(r"^http://(127\.0\.0\.1|localhost)(:\d+)?/?$", args.upstream):
        parser.error("the upstream must be on 127.0.0.1")
    asyncio.run(serve(args.port, args.upstream.rstrip("/")))


if __name__ == "__main__":
    main()
