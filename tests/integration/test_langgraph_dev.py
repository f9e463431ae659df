"""The graphs served by a real ``langgraph dev`` server, driven through ``langgraph-sdk``.

The model is a scripted OpenAI-compatible server on 127.0.0.1 that the dev
server reaches through ``LOTTERY_BASE_URL``, exactly as it would reach vLLM.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.graph_server import Q, model_server, run_and_check_stream, serve
from tests.integration.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("planner_policy")]
"""The scripted model server answers planner decisions: runs follow the planner policy."""

ROOT_DIR = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).parent / "langgraph"


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``langgraph dev --no-browser`` on a free port, run from the repository root as a user would.

    Yields the server's URL and the scripted model server's base URL.

    (It keeps its in-memory state under ``.langgraph_api/`` there, which git ignores.)
    """
    if not LANGGRAPH.exists():
        pytest.skip("langgraph CLI not installed: pip install -e '.[studio]'")
    pytest.importorskip("langgraph_sdk")
    workdir = tmp_path_factory.mktemp("langgraph-dev")
    port = free_port()
    with model_server() as base_url:
        env = {**os.environ, "LOTTERY_BASE_URL": base_url, "LOTTERY_MODEL": "scripted",
               "LOTTERY_POLICY": "planner",
               "LOTTERY_HOME": str(workdir / "home"), "LANGSMITH_TRACING": "false",
               "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
        cmd = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
               "--port", str(port)]
        with serve(cmd, cwd=ROOT_DIR, env=env, health=f"http://127.0.0.1:{port}/ok",
                   log=workdir / "server.log"):
            yield f"http://127.0.0.1:{port}", base_url


async def test_runs_algorithm1_on_a_thread_streaming_decisions_and_answers(dev_server: tuple[str, str]):
    from langgraph_sdk import get_client

    await run_and_check_stream(get_client(url=dev_server[0]))


async def test_serves_the_input_form_and_settings_studio_renders(dev_server: tuple[str, str]):
    from langgraph_sdk import get_client

    client = get_client(url=dev_server[0])
    assistants = {a["graph_id"]: a for a in await client.assistants.search()}
    assert set(assistants) >= {"algorithm1", "direct", "cot"}
    schemas = await client.assistants.get_schemas(assistants["algorithm1"]["assistant_id"])
    assert schemas["input_schema"]["required"] == ["question"]
    assert {"max_depth", "max_calls", "knowledge_base"} <= set(schemas["input_schema"]["properties"])
    settings = schemas["context_schema"]["properties"]
    assert "base_url" in settings and "chat_model" not in settings
    assert "problems" in schemas["state_schema"]["properties"]


async def test_context_and_input_overrides_reach_the_run(dev_server: tuple[str, str]):
    from langgraph_sdk import get_client

    client = get_client(url=dev_server[0])
    # the assistant's context (Studio's settings panel): no sub-problems, one direct answer
    shallow = await client.runs.wait(None, "algorithm1", input={"question": Q},
                                     context={"max_depth": 0})
    assert shallow["problems"]["0"]["reason"].startswith("depth limit")
    assert shallow["answer"] == f"ans({Q})" and shallow["usage"]["calls"] == 1
    # the input form's limits: a budget of two calls ends the run early
    tight = await client.runs.wait(None, "algorithm1", input={"question": Q, "max_calls": 2})
    assert tight["best_effort"] and tight["stop_reason"] == "budget"
    assert tight["usage"]["calls"] <= 2


BAD_INPUTS = {
    "empty": ({"question": "  "}, "the question is empty"),
    "1 MB": ({"question": "x" * 1_000_000}, "over the limit of 20000"),
    "binary": ({"question": "PK\x03\x04\x00\x00"}, "NUL bytes"),
    "not text": ({"question": 42}, "must be text"),
    "missing": ({}, "must be text"),
    "bad limit": ({"question": "ok?", "max_calls": 0}, "max_calls must be an integer"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
async def test_the_server_rejects_bad_input_with_a_one_line_error_and_no_model_call(
    dev_server: tuple[str, str], name: str
):
    from langgraph_sdk import get_client

    url, model_url = dev_server
    client = get_client(url=url)
    served = len(httpx.get(model_url.replace("/v1", "/_log")).json())
    payload, message = BAD_INPUTS[name]
    thread = await client.threads.create()
    with pytest.raises(Exception, match=message) as caught:
        await client.runs.wait(thread["thread_id"], "algorithm1", input=payload)
    assert str(caught.value).startswith("InputError: ") and "\n" not in str(caught.value)
    assert len(httpx.get(model_url.replace("/v1", "/_log")).json()) == served, "no model call"


async def test_the_server_rejects_a_body_that_is_not_utf8(dev_server: tuple[str, str]):
    from langgraph_sdk import get_client

    url, _ = dev_server
    thread = await get_client(url=url).threads.create()
    reply = httpx.post(f"{url}/threads/{thread['thread_id']}/runs/wait", timeout=60,
                       headers={"content-type": "application/json"},
                       content=b'{"assistant_id": "algorithm1", "input": {"question": "\xff\xfe"}}')
    assert reply.status_code == 422 and "Invalid JSON" in reply.text
