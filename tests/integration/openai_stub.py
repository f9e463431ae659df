"""A scripted OpenAI-compatible model server: real HTTP, deterministic replies, token usage.

It stands in for vLLM in the fault and load tests, so CI needs no model. The
replies follow the prompts of ``nodes/prompts.py``:

- planner: ``divide`` when the question lists parts separated by ``|`` (at the top
  level only), else ``solve``;
- solve: ``Answer: ans(<question>)``;
- merge: ``Answer: `` followed by the sub-answers joined with ``+``.

Run it as a process: ``python -m tests.integration.openai_stub --port 8123
[--delay 0.05]``. ``GET /_log`` lists the completions it served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from typing import Any

from aiohttp import web

_QUESTION = re.compile(r"(?:Main question|Question): (.*)")


def reply_for(messages: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(step, question, reply text) for a chat request."""
    system = str(messages[0].get("content", "")) if messages else ""
    user = str(messages[-1].get("content", "")) if messages else ""
    found = _QUESTION.findall(user)
    question = found[-1].strip() if found else user.strip()
    if system.startswith("You plan"):
        top_level = "(Part of the larger question" not in user
        parts = [p.strip() for p in question.split("|")[1:] if p.strip()] if top_level else []
        if len(parts) >= 2:
            decision = {"action": "divide", "reason": "parts",
                        "subproblems": [{"question": p} for p in parts]}
        else:
            decision = {"action": "solve", "reason": "simple"}
        return "plan", question, json.dumps(decision)
    if system.startswith("Combine the answers"):
        answers = re.findall(r"-> (.*)", user)
        return "merge", question, "Answer: " + "+".join(a.strip() for a in answers)
    return "solve", question, f"Answer: ans({question})"


def make_app(delay_s: float = 0.0) -> web.Application:
    """The aiohttp application; ``delay_s`` is the time each completion takes."""
    log: list[dict[str, Any]] = []

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        step, question, text = reply_for(body.get("messages") or [])
        if delay_s:
            await asyncio.sleep(delay_s)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        completion_tokens = len(text.split())
        log.append({"step": step, "question": question, "t": time.time()})
        return web.json_response({
            "id": f"chatcmpl-{len(log)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    async def show_log(request: web.Request) -> web.Response:
        return web.json_response(log)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/_log", show_log)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per completion")
    args = parser.parse_args()
    web.run_app(make_app(args.delay), host="127.0.0.1", port=args.port, print=None,
                access_log=None)


if __name__ == "__main__":
    main()
