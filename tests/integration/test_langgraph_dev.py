"""The graphs served by a real ``langgraph dev`` server, driven through ``langgraph-sdk``.

The model is a scripted OpenAI-compatible server on 127.0.0.1 that the dev
server reaches through ``LOTTERY_BASE_URL``, exactly as it would reach vLLM.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.graph_server import Q, free_port, model_server, run_and_check_stream, serve

pytestmark = pytest.mark.integration

ROOT_DIR = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).parent / "langgraph"


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``langgraph dev --no-browser`` on a free port, run from the repository root as a user would.

    (It keeps its in-memory state under ``.langgraph_api/`` there, which git ignores.)
    """
    if not LANGGRAPH.exists():
        pytest.skip("langgraph CLI not installed: pip install -e '.[studio]'")
    pytest.importorskip("langgraph_sdk")
    workdir = tmp_path_factory.mktemp("langgraph-dev")
    port = free_port()
    with model_server(ROOT_DIR, workdir / "model.log") as base_url:
        env = {**os.environ, "LOTTERY_BASE_URL": base_url, "LOTTERY_MODEL": "scripted",
               "LOTTERY_HOME": str(workdir / "home"), "LANGSMITH_TRACING": "false",
               "LANGGRAPH_CLI_NO_ANALYTICS": "1"}
        cmd = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
               "--port", str(port)]
        with serve(cmd, cwd=ROOT_DIR, env=env, health=f"http://127.0.0.1:{port}/ok",
                   log=workdir / "server.log"):
            yield f"http://127.0.0.1:{port}"


async def test_runs_algorithm1_on_a_thread_streaming_decisions_and_answers(dev_server: str):
    from langgraph_sdk import get_client

    await run_and_check_stream(get_client(url=dev_server))


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
    # the assistant's context (Studio's settings panel): no sub-problems, one direct answer
    shallow = await client.runs.wait(None, "algorithm1", input={"question": Q},
                                     context={"max_depth": 0})
    assert shallow["problems"]["0"]["reason"].startswith("depth limit")
    assert shallow["answer"] == f"ans({Q})" and shallow["usage"]["calls"] == 1
    # the input form's limits: a budget of two calls ends the run early
    tight = await client.runs.wait(None, "algorithm1", input={"question": Q, "max_calls": 2})
    assert tight["best_effort"] and tight["stop_reason"] == "budget"
    assert tight["usage"]["calls"] <= 2
