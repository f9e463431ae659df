"""Shared by the graph server tests: start a server process, and the run every server must pass."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lottery.testing import server_process
from tests.integration.servers import stub_server

# The scripted model server (openai_stub.py) divides a top-level question at each ``|``,
# answers a part with ``ans(<part>)`` and merges with ``+``.
PARTS = ["How tall is tower A?", "How tall is tower B?"]
Q = "Which of the towers A and B is taller? | " + " | ".join(PARTS)
MERGED = "+".join(f"ans({p})" for p in PARTS)


@contextlib.contextmanager
def model_server() -> Iterator[str]:
    """The scripted OpenAI-compatible server as a process on 127.0.0.1; yields its base URL."""
    server = stub_server().start()
    try:
        yield f"{server.url}/v1"
    finally:
        server.stop()


@contextlib.contextmanager
def serve(cmd: list[str], *, cwd: Path, env: dict[str, str], health: str, log: Path,
          timeout_s: float = 120) -> Iterator[None]:
    """Run ``cmd`` until ``health`` answers 200; stop its whole process group afterwards."""
    with server_process(cmd, cwd=cwd, env=env, health=health, log=log, timeout_s=timeout_s):
        yield


async def run_and_check_stream(client: Any) -> str:
    """Run Algorithm 1 on a new thread, streaming; check the events and the tree; the thread id."""
    thread = await client.threads.create()
    custom, tree_updates, errors = [], [], []
    async for part in client.runs.stream(thread["thread_id"], "algorithm1", input={"question": Q},
                                         stream_mode=["updates", "custom"]):
        if part.event == "custom":
            custom.append(part.data)
        elif part.event == "updates":
            tree_updates += [u for u in part.data.values() if isinstance(u, dict) and "problems" in u]
        elif part.event == "error":
            errors.append(part.data)
    assert not errors, errors

    kinds = [(e["event"], e["problem"]) for e in custom]
    assert kinds[0] == ("decision", "0") and custom[0]["decision"] == "divide"
    assert [c["question"] for c in custom[0]["children"]] == PARTS
    for pid in ("0.1", "0.2"):
        assert kinds.index(("decision", pid)) < kinds.index(("answer", pid)) < kinds.index(
            ("answer", "0"))
    assert custom[-1] == {**custom[-1], "event": "answer", "problem": "0", "answer": MERGED,
                          "step": "merge"}
    assert len(tree_updates) >= 4, "the tree grows step by step, visible in the updates"
    await check_final_state(client, thread["thread_id"])
    return thread["thread_id"]


async def check_final_state(client: Any, thread_id: str) -> None:
    """The thread's state holds the answer and the whole problem tree."""
    values = (await client.threads.get_state(thread_id))["values"]
    assert values["answer"] == MERGED and not values["best_effort"]
    tree = values["problems"]
    assert tree["0"]["children"] == ["0.1", "0.2"]
    assert [tree[c]["answer"] for c in tree["0"]["children"]] == [f"ans({p})" for p in PARTS]
    assert values["usage"]["calls"] == 6  # 3 plans, 2 solves, 1 merge
