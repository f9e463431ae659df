"""The open self-hosted graph server (``python -m lottery.server``: Aegra) on a real PostgreSQL.

The same run as against ``langgraph dev``, then a restart of the server: the
thread's checkpointed state (answer and problem tree) is still there. The run's
traces reach an OTLP/HTTP endpoint configured with the standard variables.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.graph_server import (
    check_final_state,
    model_server,
    run_and_check_stream,
    serve,
)
from tests.integration.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("planner_policy")]
"""The scripted model server answers planner decisions: runs follow the planner policy."""

ROOT_DIR = Path(__file__).resolve().parents[2]


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, list[str]]]:
    """An OTLP/HTTP endpoint on 127.0.0.1 that accepts everything; yields its URL and the paths posted."""
    posted: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("content-length", 0)))
            posted.append(self.path)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", posted
    finally:
        server.shutdown()
        server.server_close()


async def test_aegra_streams_a_run_and_keeps_its_state_across_a_restart(tmp_path: Path):
    pytest.importorskip("aegra_api", reason="Aegra not installed: pip install -e '.[server]'")
    from langgraph_sdk import get_client

    try:  # the throw-away PostgreSQL server of the memory tests
        from tests.integration.postgres import create_database, postgres_server
    except ImportError:
        pytest.skip("tests/integration/postgres.py (the PostgreSQL test server) is not in this tree")

    with postgres_server() as server_url, model_server() as base_url, otlp_receiver() as otlp:
        database = create_database(server_url).replace("postgresql+psycopg://", "postgresql://")
        port = free_port()
        env = {**os.environ, "DATABASE_URL": database, "AEGRA_CONFIG": "langgraph.json",
               "AUTH_TYPE": "noop", "LOTTERY_AUTH": "off",  # dev mode: no API keys here
               "LOTTERY_BASE_URL": base_url, "LOTTERY_MODEL": "scripted",
               "LOTTERY_POLICY": "planner",
               "LOTTERY_HOME": str(tmp_path / "home"), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp[0],
               "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none"}
        cmd = [sys.executable, "-m", "lottery.server", "--host", "127.0.0.1", "--port", str(port)]
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "aegra.log"
        with serve(cmd, cwd=ROOT_DIR, env=env, health=f"{url}/health", log=log):
            client = get_client(url=url)
            assert {a["graph_id"] for a in await client.assistants.search()} >= {
                "algorithm1", "direct", "cot"}
            thread_id = await run_and_check_stream(client)
        exported = "/v1/traces" in otlp[1]
        with serve(cmd, cwd=ROOT_DIR, env=env, health=f"{url}/health", log=log):
            await check_final_state(get_client(url=url), thread_id)
    # flushed when the server stops (SIGTERM): uvicorn re-raises the signal after its own
    # shutdown, which used to end the process before the telemetry was flushed
    assert exported, "spans of runs served by Aegra did not reach the OTLP endpoint on shutdown"
