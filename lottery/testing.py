"""A scripted chat model for testing graphs without a server (like pydantic-ai's FunctionModel).

``ScriptedChatModel(respond)`` calls ``respond(messages)`` for every model call
and returns its text as the reply, with token usage counted from word counts.
The function sees the whole prompt, so parallel branches get the right reply
whatever order they run in.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field, PrivateAttr

Responder = Callable[..., str]
"""``respond(messages)`` or ``respond(messages, step)``; see :func:`step_of_run`."""

NODE_STEPS = {"planner": "plan", "merge": "merge", "solve": "solve", "tool": "args",
              "answer": "solve"}
"""The step a model call serves, by the graph node that made it."""


def step_of_run(run_manager: Any) -> str | None:
    """What a call is for, from its tags and metadata (not from its prompt's words): a
    ``lottery:<step>`` tag (``program``), else the LangGraph node that made the call
    (``plan``, ``solve``, ``merge``, ``args``); ``None`` outside a graph."""
    tags = getattr(run_manager, "tags", None) or []
    tagged = [t.split(":", 1)[1] for t in tags if t.startswith("lottery:")]
    if tagged:
        return tagged[-1]
    node = (getattr(run_manager, "metadata", None) or {}).get("langgraph_node")
    return NODE_STEPS.get(node, node)


class ScriptedChatModel(GenericFakeChatModel):
    """A fake chat model whose replies come from a function of the prompt."""

    respond: Responder = Field(exclude=True)
    messages: Any = Field(default_factory=lambda: iter(()), exclude=True)
    delay_s: float = 0.0
    """Seconds each call takes (to show that parallel calls overlap)."""
    _log: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _in_flight: int = PrivateAttr(default=0)
    _max_in_flight: int = PrivateAttr(default=0)
    _takes_step: bool | None = PrivateAttr(default=None)

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every call so far: its messages, its keyword arguments and the reply."""
        return list(self._log)

    @property
    def max_concurrency(self) -> int:
        """The most calls that were in flight at once."""
        return self._max_in_flight

    def _reply(self, messages: list[BaseMessage], kwargs: dict[str, Any],
               run_manager: Any = None) -> ChatResult:
        # ``n`` completions per request, as an OpenAI-compatible server gives; usage is the
        # request's total, carried by the first one (as langchain-openai reports it).
        step = step_of_run(run_manager)
        texts = [self._respond(messages, step) for _ in range(int(kwargs.get("n") or 1))]
        with self._lock:
            self._log.append({"messages": messages, "kwargs": kwargs, "reply": texts[0],
                              "replies": texts, "step": step})
        prompt_tokens = sum(len(str(m.content).split()) for m in messages)
        output_tokens = sum(len(t.split()) for t in texts)
        usage = {"input_tokens": prompt_tokens, "output_tokens": output_tokens,
                 "total_tokens": prompt_tokens + output_tokens}
        messages_out = [AIMessage(content=t, usage_metadata=usage if i == 0 else None)
                        for i, t in enumerate(texts)]
        return ChatResult(generations=[ChatGeneration(message=m) for m in messages_out])

    def _respond(self, messages: list[BaseMessage], step: str | None) -> str:
        """``respond(messages, step)`` when it takes the step, else ``respond(messages)``."""
        if self._takes_step is None:
            params = inspect.signature(self.respond).parameters
            self._takes_step = len(params) >= 2
        return self.respond(messages, step) if self._takes_step else self.respond(messages)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return self._reply(messages, kwargs, run_manager)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return self._reply(messages, kwargs, run_manager)
        finally:
            with self._lock:
                self._in_flight -= 1

    @property
    def _llm_type(self) -> str:
        return "scripted"


# -- an embeddings server: OpenAI's /v1/embeddings on 127.0.0.1, vectors from letter counts ----

def letter_counts(text: str) -> list[float]:
    """A text's vector: how often each letter a-z occurs in it (26 dimensions)."""
    lowered = text.lower()
    return [float(lowered.count(c)) for c in "abcdefghijklmnopqrstuvwxyz"]


@contextlib.contextmanager
def letter_embeddings_server(seen: list[dict[str, Any]] | None = None) -> Iterator[str]:
    """Serve ``/v1/embeddings`` on a free 127.0.0.1 port, embedding each text as its
    :func:`letter_counts` (a deterministic stand-in for an embedding model, so vector search
    has something to rank); yields the base URL (``…/v1``). Request bodies are appended to
    ``seen`` when given."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if seen is not None:
                seen.append(body)
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = [{"object": "embedding", "index": i, "embedding": letter_counts(t)}
                    for i, t in enumerate(texts)]
            raw = json.dumps({"object": "list", "model": body.get("model", "letters"),
                              "data": data, "usage": {"prompt_tokens": 0, "total_tokens": 0}})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw.encode())))
            self.end_headers()
            self.wfile.write(raw.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


# -- a server process for tests and benchmarks -------------------------------------------------

@contextlib.contextmanager
def server_process(cmd: list[str], *, health: str, log: Path, cwd: Path | None = None,
                   env: dict[str, str] | None = None,
                   timeout_s: float = 120) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` in its own process group, output appended to ``log``, until ``health``
    answers 200; yield the process, and stop its whole group afterwards (SIGTERM, then
    SIGKILL after 20 s). Raises ``RuntimeError`` with the log's tail when the process exits
    or does not answer within ``timeout_s``."""
    import httpx

    with log.open("a") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}:\n"
                                   f"{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(health, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{health} did not answer within {timeout_s} s:\n"
                                   f"{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# -- the peak memory of a child process ---------------------------------------------------------

def wait_peak_rss_mib(proc: subprocess.Popen[Any], *, interval_s: float = 0.02) -> int:
    """Wait for ``proc`` to exit and return the most memory it held (MiB), from
    ``/proc/<pid>/status`` ``VmHWM`` read until it exits.

    Not ``wait4``'s ``ru_maxrss``: on Linux a child's ``ru_maxrss`` also counts the high-water
    mark of the memory it was forked with, so a ``lottery kb add`` started from a 1 GB pytest
    process reported 1 GB whatever it used itself (the kernel keeps the larger of the two
    across ``exec``). ``VmHWM`` belongs to the process's own address space, made new at exec."""
    peak = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        with contextlib.suppress(OSError, ValueError):  # gone, or a zombie (no VmHWM line)
            found = [x for x in status.read_text().splitlines() if x.startswith("VmHWM:")]
            peak = max(peak, int(found[0].split()[1])) if found else peak
        time.sleep(interval_s)
    return round(peak / 1024)
