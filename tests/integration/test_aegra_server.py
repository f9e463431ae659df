"""The open self-hosted graph server: Aegra serving langgraph.json on a real PostgreSQL.

The same run as against ``langgraph dev``, then a restart of the server: the
thread's checkpointed state (answer and problem tree) is still there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.integration.graph_server import (
    check_final_state,
    model_server,
    run_and_check_stream,
    serve,
)
from tests.integration.servers import free_port

pytestmark = pytest.mark.integration

ROOT_DIR = Path(__file__).resolve().parents[2]


async def test_aegra_streams_a_run_and_keeps_its_state_across_a_restart(tmp_path: Path):
    pytest.importorskip("aegra_api", reason="Aegra not installed: pip install -e '.[server]'")
    from langgraph_sdk import get_client

    try:  # the throw-away PostgreSQL server of the memory tests
        from tests.integration.postgres import create_database, postgres_server
    except ImportError:
        pytest.skip("tests/integration/postgres.py (the PostgreSQL test server) is not in this tree")

    with postgres_server() as server_url, model_server() as base_url:
        database = create_database(server_url).replace("postgresql+psycopg://", "postgresql://")
        port = free_port()
        env = {**os.environ, "DATABASE_URL": database, "AEGRA_CONFIG": "langgraph.json",
               "AUTH_TYPE": "noop", "LOTTERY_BASE_URL": base_url, "LOTTERY_MODEL": "scripted",
               "LOTTERY_HOME": str(tmp_path / "home"), "OTEL_TARGETS": ""}
        cmd = [sys.executable, "-m", "uvicorn", "aegra_api.main:app", "--host", "127.0.0.1",
               "--port", str(port)]
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "aegra.log"
        with serve(cmd, cwd=ROOT_DIR, env=env, health=f"{url}/health", log=log):
            client = get_client(url=url)
            assert {a["graph_id"] for a in await client.assistants.search()} >= {
                "algorithm1", "direct", "cot"}
            thread_id = await run_and_check_stream(client)
        with serve(cmd, cwd=ROOT_DIR, env=env, health=f"{url}/health", log=log):
            await check_final_state(get_client(url=url), thread_id)
