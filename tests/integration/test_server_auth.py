"""Authentication and ownership on the real graph servers: ``langgraph dev`` and Aegra.

Both load ``lottery/auth.py`` and ``lottery/http_app.py`` from ``langgraph.json``. Two
users with API keys: a request without a key or with a wrong one is refused, a user
never sees another's threads, runs or store items (404 or 403, and absent from
searches), an oversized body is refused with 413 and nothing of it is stored. Without
keys the dev server runs in a dev mode that says so, and the production server
refuses to start.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.graph_server import model_server, serve
from tests.integration.servers import free_port

pytestmark = pytest.mark.integration

ROOT_DIR = Path(__file__).resolve().parents[2]
LANGGRAPH = Path(sys.executable).parent / "langgraph"
KEYS = {"alice": "alice-key-0123456789abcdef", "bob": "bob-key-0123456789abcdef00"}


def _base_env(home: Path, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LOTTERY_API_KEYS", "LOTTERY_API_KEYS_FILE", "LOTTERY_AUTH")}
    return {**env, "LOTTERY_BASE_URL": base_url, "LOTTERY_MODEL": "scripted",
            "LOTTERY_POLICY": "planner", "LOTTERY_HOME": str(home),
            "LANGSMITH_TRACING": "false", "LANGGRAPH_CLI_NO_ANALYTICS": "1"}


@contextlib.contextmanager
def langgraph_dev(tmp: Path, env: dict[str, str]) -> Iterator[str]:
    if not LANGGRAPH.exists():
        pytest.skip("langgraph CLI not installed: pip install -e '.[studio]'")
    port = free_port()
    cmd = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
           "--port", str(port)]
    with serve(cmd, cwd=ROOT_DIR, env=env, health=f"http://127.0.0.1:{port}/ok",
               log=tmp / "langgraph-dev.log"):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def aegra(tmp: Path, env: dict[str, str]) -> Iterator[str]:
    pytest.importorskip("aegra_api", reason="Aegra not installed: pip install -e '.[server]'")
    from tests.integration.postgres import create_database, postgres_server

    with postgres_server() as server_url:
        database = create_database(server_url).replace("postgresql+psycopg://", "postgresql://")
        port = free_port()
        cmd = [sys.executable, "-m", "lottery.server", "--host", "127.0.0.1", "--port", str(port)]
        with serve(cmd, cwd=ROOT_DIR, env={**env, "DATABASE_URL": database,
                                           "AEGRA_CONFIG": "langgraph.json"},
                   health=f"http://127.0.0.1:{port}/health", log=tmp / "aegra.log"):
            yield f"http://127.0.0.1:{port}"


SERVERS = {"langgraph-dev": langgraph_dev, "aegra": aegra}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A graph server with two users' keys; yields its URL."""
    tmp = tmp_path_factory.mktemp(request.param)
    with model_server() as base_url:
        env = {**_base_env(tmp / "home", base_url),
               "LOTTERY_API_KEYS": ",".join(f"{u}:{k}" for u, k in KEYS.items()),
               "LOTTERY_MAX_BODY_BYTES": str(256 * 1024)}
        with SERVERS[request.param](tmp, env) as url:
            yield url


def client(url: str, user: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {KEYS[user]}"} if user else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def test_without_a_key_or_with_a_wrong_one_nothing_is_served(server: str):
    with client(server, None) as anonymous:
        assert anonymous.post("/threads", json={}).status_code in (401, 403)
        assert anonymous.post("/threads/search", json={}).status_code in (401, 403)
        wrong = {"Authorization": "Bearer not-a-key-of-anyone-at-all"}
        assert anonymous.post("/threads/search", json={}, headers=wrong).status_code in (401, 403)
        assert anonymous.post("/threads", json={}, headers={"X-Api-Key": "x" * 30}).status_code in (401, 403)
    with client(server, "alice") as alice:
        assert alice.post("/threads/search", json={}).status_code == 200
        assert "x-lottery-auth" not in alice.post("/threads/search", json={}).headers


def test_a_user_never_sees_another_users_thread_or_its_runs(server: str):
    with client(server, "alice") as alice, client(server, "bob") as bob:
        thread = alice.post("/threads", json={"metadata": {"topic": "towers"}})
        assert thread.status_code == 200, thread.text
        tid = thread.json()["thread_id"]
        run = alice.post(f"/threads/{tid}/runs/wait",
                         json={"assistant_id": "cot", "input": {"question": "How tall is tower A?"}})
        assert run.status_code == 200, run.text
        assert alice.get(f"/threads/{tid}").status_code == 200
        assert tid in [t["thread_id"] for t in alice.post("/threads/search", json={}).json()]

        assert bob.get(f"/threads/{tid}").status_code == 404
        assert bob.get(f"/threads/{tid}/state").status_code in (403, 404)
        runs = bob.get(f"/threads/{tid}/runs")  # Aegra answers an empty list: none are bob's
        assert runs.status_code in (403, 404) or runs.json() == [], runs.text
        assert alice.get(f"/threads/{tid}/runs").json()  # while alice's run is there
        assert tid not in [t["thread_id"] for t in bob.post("/threads/search", json={}).json()]
        assert tid not in [t["thread_id"] for t in bob.post(
            "/threads/search", json={"metadata": {"topic": "towers"}}).json()]
        assert bob.patch(f"/threads/{tid}", json={"metadata": {"x": 1}}).status_code in (403, 404)
        assert bob.post(f"/threads/{tid}/runs", json={"assistant_id": "cot", "input": {
            "question": "q"}}).status_code in (403, 404)
        assert bob.delete(f"/threads/{tid}").status_code in (403, 404)

        after = alice.get(f"/threads/{tid}")  # untouched by bob's tries
        assert after.status_code == 200 and "x" not in (after.json().get("metadata") or {})


def test_store_items_belong_to_the_user_whose_namespace_they_are_in(server: str):
    with client(server, "alice") as alice, client(server, "bob") as bob:
        item = {"namespace": ["alice", "notes"], "key": "k1", "value": {"secret": 7}}
        assert alice.put("/store/items", json=item).status_code in (200, 204)
        got = alice.get("/store/items", params={"namespace": "alice.notes", "key": "k1"})
        assert got.status_code == 200 and got.json()["value"] == {"secret": 7}

        assert bob.get("/store/items", params={"namespace": "alice.notes", "key": "k1"}
                       ).status_code in (403, 404)
        assert bob.post("/store/items/search", json={"namespace_prefix": ["alice"]}
                        ).status_code in (403, 404)
        assert bob.put("/store/items", json={**item, "value": {"secret": 0}}).status_code in (403, 404)
        assert bob.request("DELETE", "/store/items", json={"namespace": ["alice", "notes"],
                                                           "key": "k1"}).status_code in (403, 404)
        assert alice.get("/store/items", params={"namespace": "alice.notes", "key": "k1"}
                         ).json()["value"] == {"secret": 7}


def test_an_oversized_body_is_refused_with_413_and_nothing_is_stored(server: str):
    with client(server, "alice") as alice:
        before = len(alice.post("/threads/search", json={"limit": 1000}).json())
        big = {"metadata": {"blob": "x" * (300 * 1024)}}
        assert alice.post("/threads", json=big).status_code == 413
        chunked = alice.post("/threads", content=iter([b'{"metadata": {"blob": "',
                                                        b"x" * (300 * 1024), b'"}}']),
                             headers={"content-type": "application/json"})
        assert chunked.status_code == 413  # no Content-Length: counted as it streams
        assert len(alice.post("/threads/search", json={"limit": 1000}).json()) == before
        assert alice.post("/threads", json={"metadata": {"blob": "x" * 1000}}).status_code == 200


def test_without_keys_the_dev_server_serves_everyone_as_dev_and_says_so(tmp_path: Path):
    with model_server() as base_url, langgraph_dev(tmp_path, _base_env(tmp_path / "h", base_url)) as url:
        with client(url, None) as anyone:
            reply = anyone.post("/threads", json={})
            assert reply.status_code == 200 and reply.headers["x-lottery-auth"] == "off"
            assert reply.json()["metadata"]["owner"] == "dev"
    assert "AUTHENTICATION IS OFF" in (tmp_path / "langgraph-dev.log").read_text()


@pytest.mark.parametrize(("extra", "message"), [
    ({}, "no API keys: set LOTTERY_API_KEYS"),
    ({"LOTTERY_API_KEYS": "alice:short"}, "shorter than 16 characters"),
    ({"LOTTERY_API_KEYS_FILE": "/nonexistent/keys"}, "cannot read /nonexistent/keys"),
])
def test_the_production_server_refuses_to_start_without_usable_keys(extra: dict[str, str],
                                                                   message: str, tmp_path: Path):
    pytest.importorskip("aegra_api", reason="Aegra not installed: pip install -e '.[server]'")
    env = {**_base_env(tmp_path, "http://127.0.0.1:9/v1"), **extra}
    done = subprocess.run([sys.executable, "-m", "lottery.server", "--port", str(free_port())],
                          cwd=ROOT_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
