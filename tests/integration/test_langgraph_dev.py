"""The graphs served by a real ``langgraph dev`` server, driven through ``langgraph-sdk``.

The model is a scripted OpenAI-compatible server on 127.0.0.1 that the dev
server reaches through ``LOTTERY_BASE_URL``, exactly as it would reach vLLM.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.openai_stub import OpenAIStub

pytestmark = pytest.mark.integration

ROOT_DIR = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).parent / "langgraph"
Q = "Which of the towers A and B is taller?"
HEIGHTS = {"How tall is tower A?": "100 m", "How tall is tower B?": "300 m"}


def respond(system: str, user: str) -> str:
    """Divide the main question in two, answer each part, merge."""
    question = re.findall(r"(?:Main question|Question): (.*)", user)[-1].strip()
    if system.startswith("You plan"):
        if question == Q:
            subs = ", ".join(f'{{"question": "{s}"}}' for s in HEIGHTS)
            return f'{{"action": "divide", "reason": "compare two heights", "subproblems": [{subs}]}}'
        return '{"action": "solve", "reason": "a lookup"}'
    if system.startswith("Combine the answers"):
        return "300 m beats 100 m.\nAnswer: B"
    return "Answer: " + HEIGHTS.get(question, "unknown")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_server() -> Iterator[OpenAIStub]:
    with OpenAIStub(respond) as stub:
        yield stub


@pytest.fixture(scope="module")
def dev_server(model_server: OpenAIStub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``langgraph dev --no-browser`` on a free port, run from the repository root as a user would.

    (It keeps its in-memory state under ``.langgraph_api/`` there, which git ignores.)
    """
    if not LANGGRAPH.exists():
        pytest.skip("langgraph CLI not installed: pip install -e '.[studio]'")
    pytest.importorskip("langgraph_sdk")
    port = free_port()
    workdir = tmp_path_factory.mktemp("langgraph-dev")
    env = {**os.environ, "LOTTERY_BASE_URL": model_server.base_url, "LOTTERY_MODEL": "scripted",
           "LOTTERY_HOME": str(workdir / "home"), "LANGSMITH_TRACING": "false",
           "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
    log = (workdir / "server.log").open("w")
    proc = subprocess.Popen(
        [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n"
                            + (workdir / "server.log").read_text()[-3000:])
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("langgraph dev did not answer /ok within 120 s:\n"
                            + (workdir / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


async def test_runs_algorithm1_on_a_thread_streaming_decisions_and_answers(dev_server: str):
    from langgraph_sdk import get_client

    client = get_client(url=dev_server)
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
    assert [c["question"] for c in custom[0]["children"]] == list(HEIGHTS)
    for pid in ("0.1", "0.2"):
        assert kinds.index(("decision", pid)) < kinds.index(("answer", pid)) < kinds.index(
            ("answer", "0"))
    assert custom[-1] == {**custom[-1], "event": "answer", "problem": "0", "answer": "B",
                          "step": "merge"}
    assert len(tree_updates) >= 4, "the tree grows step by step, visible in the updates"

    state = await client.threads.get_state(thread["thread_id"])
    values = state["values"]
    assert values["answer"] == "B" and not values["best_effort"]
    tree = values["problems"]
    assert tree["0"]["children"] == ["0.1", "0.2"]
    assert [tree[c]["answer"] for c in tree["0"]["children"]] == ["100 m", "300 m"]
    assert values["usage"]["calls"] == 6  # 3 plans, 2 solves, 1 merge


async def test_serves_the_input_form_and_settings_studio_renders(dev_server: str):
    from langgraph_sdk import get_client

    client = get_client(url=dev_server)
    assistants = {a["graph_id"]: a for a in await client.assistants.search()}
    assert set(assistants) >= {"algorithm1", "direct", "cot"}
    schemas = await client.assistants.get_schemas(assistants["algorithm1"]["assistant_id"])
    assert schemas["input_schema"]["required"] == ["question"]
    assert {"max_depth", "max_calls", "knowledge_base"} <= set(schemas["input_schema"]["properties"])
    settings = schemas["context_schema"]["properties"]
    assert "base_url" in settings and "chat_model" not in settings
    assert "problems" in schemas["state_schema"]["properties"]


async def test_context_and_input_overrides_reach_the_run(dev_server: str):
    from langgraph_sdk import get_client

    client = get_client(url=dev_server)
    result = await client.runs.wait(None, "algorithm1", input={"question": Q, "max_depth": 0},
                                    context={"max_calls": 3})
    assert result["answer"] == "unknown"  # root solved directly: the stub knows no such height
    assert result["problems"]["0"]["reason"].startswith("depth limit")
    assert result["usage"]["calls"] == 1
