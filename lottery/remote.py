"""Running a graph on a deployed graph server, surviving the death of the worker that runs it.

The graph server (Aegra, ``python -m lottery.server``) runs a run inside the worker
that received it; all state (threads, checkpoints) is in the shared PostgreSQL. It
does not take over the runs of a worker that died: they stay ``running`` for ever.
The client therefore retries, as :func:`arun_on_server` does:

1. start the run and wait for it on one worker (``runs.wait``);
2. if the connection breaks or the worker answers 5xx, read the thread's state from
   another worker: a checkpoint with next steps -> a new run that continues from it (a
   command re-writing the input's values); a step's checkpoint with nothing left ->
   its values; no checkpoint yet (or only the input's) -> the same input again;
3. up to ``attempts`` times, each on the next URL (a load balancer in front gives one).

``durability="sync"`` (the default here) writes each step's checkpoint before the next
step starts, so a continued run repeats at most the step that was under way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from lottery.errors import RemoteRunError

How = Literal["first try", "continued from checkpoint", "restarted from input", "finished"]


@dataclass
class RemoteRun:
    """The end of a run on a graph server."""

    thread_id: str
    values: dict[str, Any]
    attempts: int
    how: How
    errors: list[str] = field(default_factory=list)
    """What broke, attempt by attempt (empty on a first-try success)."""


def _broken(exc: BaseException) -> bool:
    """A failure that a worker's death causes: the connection, or a 5xx from a proxy."""
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500


async def arun_on_server(
    urls: Sequence[str], graph: str, input: dict[str, Any], *, api_key: str | None = None,
    thread_id: str | None = None, attempts: int = 3, timeout_s: float = 600,
    durability: str = "sync", context: dict[str, Any] | None = None,
) -> RemoteRun:
    """Run ``graph`` on ``input`` on a thread, trying the next of ``urls`` when a worker dies."""
    from langgraph_sdk import get_client

    if not urls:
        raise ValueError("no server URL")
    clients = [get_client(url=u, api_key=api_key, timeout=timeout_s) for u in urls]
    if thread_id is None:
        thread_id = await _first(clients, lambda c: c.threads.create())
        thread_id = thread_id["thread_id"]
    errors: list[str] = []
    how: How = "first try"
    pending: dict[str, Any] | None = input
    for attempt in range(attempts):
        client = clients[attempt % len(clients)]
        try:
            if attempt:  # where did the broken run get to?
                state = await client.threads.get_state(thread_id)
                source = (state.get("metadata") or {}).get("source")
                if state.get("next"):
                    pending, how = None, "continued from checkpoint"
                elif source == "loop":  # a step's checkpoint with nothing left to run
                    return RemoteRun(thread_id, state["values"], attempt + 1, "finished", errors)
                else:  # no checkpoint, or only the input's
                    pending, how = input, "restarted from input"
            # A command continues from the checkpoint (any Command resumes in LangGraph;
            # Aegra refuses a run with neither input nor command). It re-writes the input's
            # values: an empty update fails in LangGraph 1.2 (UnboundLocalError).
            values = await client.runs.wait(
                thread_id, graph, input=pending,
                command=None if pending is not None else {"update": input},
                context=context, durability=durability, raise_error=True)
            return RemoteRun(thread_id, values if isinstance(values, dict) else {},
                             attempt + 1, how, errors)
        except Exception as exc:  # noqa: BLE001 - classified: only a dead worker is retried
            if not _broken(exc):
                raise
            errors.append(f"{urls[attempt % len(urls)]}: {type(exc).__name__}: {exc}"[:300])
    raise RemoteRunError(f"run on thread {thread_id} failed on {attempts} attempts: {errors[-1]}")


async def _first(clients: Sequence[Any], call: Any) -> Any:
    """``call(client)`` on the first client whose worker answers."""
    last: BaseException | None = None
    for client in clients:
        try:
            return await call(client)
        except Exception as exc:  # noqa: BLE001
            if not _broken(exc):
                raise
            last = exc
    raise RemoteRunError(f"no worker answered: {last}")
