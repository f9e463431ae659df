"""Memory M, checkpoints and the run record against real SQLite and a real PostgreSQL server.

Every test runs once per backend: a SQLite file, and a fresh database on a
PostgreSQL 15 server that the session starts itself (skipped, with how to
install it, where the server binaries are missing).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from lottery import asolve
from lottery.api import aresume
from lottery.errors import InputError, RunConflictError, SchemaVersionError
from lottery.nodes.memory import answer_namespace, problem_namespace
from lottery.stores.sql import (
    MIGRATIONS,
    SCHEMA_VERSION,
    RunStore,
    open_memory,
    runs_table,
    schema_table,
)
from tests.integration.chain import CHAIN_Q, chain_model
from tests.integration.postgres import create_database, postgres_server
from tests.unit.scripted import decision, scripted

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("planner_policy", "reuse_unchecked")]
"""The scripted model server answers planner decisions: runs follow the planner policy."""

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pg_server():
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lottery.db'}"
    return create_database(request.getfixturevalue("pg_server"))


def store_of(url: str) -> RunStore:
    runs = RunStore(url)
    runs.migrate()
    return runs


def calls_of(model) -> list[tuple[str, str]]:
    from tests.unit.scripted import question_of, step_of

    return [(step_of(c["messages"]), question_of(c["messages"])) for c in model.calls]


def comparable(tree: dict) -> dict:
    """A tree without what legitimately differs between two runs of the same script."""
    return {pid: {k: v for k, v in p.items() if k not in ("memorized",)} for pid, p in tree.items()}


# -- the run record -----------------------------------------------------------------------

async def test_a_run_is_recorded_with_its_tree_tokens_timings_and_tool_calls(db_url):
    q = "What is 17 * 23 + 4, and what is the capital of France?"
    plans = {q: decision("divide", subproblems=[{"question": "What is 17 * 23 + 4?"},
                                                {"question": "What is the capital of France?"}]),
             "What is 17 * 23 + 4?": decision("tool", tool="calculator",
                                              tool_input={"expression": "17 * 23 + 4"})}
    result = await asolve(q, chat_model=scripted(plans=plans), database_url=db_url)
    runs = store_of(db_url)
    try:
        stored = runs.export(result.run_id)
    finally:
        runs.close()
    assert stored["status"] == "done" and stored["answer"] == result.answer
    assert stored["question"] == q and stored["strategy"] == "algorithm1"
    assert "api_key" not in stored["settings"]
    assert comparable(stored["tree"]) == comparable(result.tree)
    assert stored["calls"] == result.usage.calls
    stats = stored["problem_stats"]
    assert sum(s["prompt_tokens"] for s in stats.values()) == result.usage.prompt_tokens
    assert sum(s["completion_tokens"] for s in stats.values()) == result.usage.completion_tokens
    assert all(s["started_at"] and s["finished_at"] >= s["started_at"] for s in stats.values())
    [call] = stored["tool_calls"]
    assert call["problem_id"] == "0.1" and call["tool"] == "calculator" and call["ok"]
    assert call["result"]["output"] == "395"


async def test_memory_m_is_a_langgraph_store_shared_by_every_opener(db_url):
    result = await asolve("What is 2 + 2?", chat_model=scripted(), database_url=db_url)
    async with open_memory(db_url) as memory:
        records = await memory.store.asearch(problem_namespace(result.run_id))
        assert {r.key for r in records} == {"0"} and records[0].value["answer"] == "42"
        await memory.store.aput(("notes", "team"), "k", {"v": [1, 2]})
    async with open_memory(db_url) as other:
        item = await other.store.aget(("notes", "team"), "k")
        assert item is not None and item.value == {"v": [1, 2]}
        assert ("notes", "team") in await other.store.alist_namespaces(prefix=("notes",))
        await other.store.adelete(("notes", "team"), "k")
        assert await other.store.aget(("notes", "team"), "k") is None


async def test_a_second_run_sharing_subproblems_makes_fewer_calls_from_the_database(db_url):
    def plans(question: str) -> str:
        if question.startswith("Compare"):
            other = question.split()[-1].rstrip("?")
            return decision("divide", subproblems=[
                {"question": "What is the population of France?"},
                {"question": f"What is the population of {other}?"}])
        return decision("solve")

    first = await asolve("Compare France and Germany?", chat_model=scripted(plans=plans),
                         database_url=db_url)
    second = await asolve("Compare France and Italy?", chat_model=scripted(plans=plans),
                          database_url=db_url)
    assert second.usage.calls == first.usage.calls - 2
    assert (second.usage.reuse_hits, second.usage.saved_calls) == (1, 2)
    runs = store_of(db_url)
    try:
        row = runs.get_run(second.run_id)
    finally:
        runs.close()
    assert (row["reuse_hits"], row["saved_calls"]) == (1, 2)


# -- durability ---------------------------------------------------------------------------

async def test_a_killed_run_resumes_with_the_same_tree_and_no_repeated_calls(db_url, tmp_path):
    reference = await asolve(CHAIN_Q, chat_model=chain_model(), durable=False)
    run_id, log = f"crash-{uuid.uuid4().hex[:8]}", tmp_path / "calls.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen([sys.executable, "-m", "tests.integration.chain", db_url, run_id,
                               str(log)], cwd=REPO, env=env, stderr=subprocess.PIPE)
    runs = store_of(db_url)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and worker.poll() is None:
            try:  # killed between sub-problems: the first is answered, the rest are not
                if runs.problems(run_id).get("0.1", {}).get("status") == "done":
                    break
            except Exception:  # noqa: BLE001 - the worker may still be creating the tables
                pass
            await asyncio.sleep(0.05)
        assert worker.poll() is None, worker.stderr.read().decode()[-3000:] if worker.stderr else ""
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(30) == -signal.SIGKILL
        assert runs.get_run(run_id)["status"] == "running"  # as the kill left it
    finally:
        runs.close()
    before = [tuple(json.loads(line)) for line in log.read_text().splitlines()]
    assert ("solve", "What is seven as a number?") in before and len(before) < 8

    model = chain_model()
    resumed = await aresume(run_id, chat_model=model, database_url=db_url)
    after = calls_of(model)
    assert not set(before) & set(after), "a finished sub-problem was solved again"
    assert sorted(before + after) == sorted(calls_of_reference(reference))
    assert comparable(resumed.tree) == comparable(reference.tree)
    assert resumed.answer == "15" and resumed.usage.calls == reference.usage.calls
    runs = store_of(db_url)
    try:
        row = runs.get_run(run_id)
        assert row["status"] == "done" and row["attempts"] == 2
        assert comparable(runs.problems(run_id)) == comparable(reference.tree)
    finally:
        runs.close()


def calls_of_reference(reference) -> list[tuple[str, str]]:
    """The calls an uninterrupted run makes: each problem's plan and its solve or merge."""
    out = []
    for p in reference.tree.values():
        out.append(("plan", p["question"]))
        out.append(("merge" if p["children"] else "solve", p["question"]))
    return out


async def test_a_finished_run_is_returned_as_is_and_a_thread_keeps_its_question(db_url):
    first = await asolve("What is 2 + 2?", chat_model=scripted(), thread_id="t-1",
                         database_url=db_url)
    model = scripted()
    again = await asolve("What is 2 + 2?", chat_model=model, thread_id="t-1", database_url=db_url)
    assert not model.calls and again.answer == first.answer and again.tree == first.tree
    with pytest.raises(InputError, match="another question"):
        await asolve("What is 3 + 3?", chat_model=model, thread_id="t-1", database_url=db_url)


async def test_a_run_written_by_a_live_process_is_refused_and_left_intact(db_url):
    first = await asolve("What is 2 + 2?", chat_model=scripted(), thread_id="busy",
                         database_url=db_url)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    runs = store_of(db_url)
    try:
        import socket

        with runs.engine.begin() as conn:  # another process is (still) writing the run
            conn.execute(runs_table.update().where(runs_table.c.run_id == "busy").values(
                status="running", owner=f"{socket.gethostname()}:{holder.pid}:x"))
        with pytest.raises(RunConflictError, match="another process"):
            await aresume("busy", chat_model=scripted(), database_url=db_url)
        assert runs.get_run("busy")["answer"] == first.answer
        holder.kill()
        holder.wait()
        resumed = await aresume("busy", chat_model=scripted(), database_url=db_url)
        assert resumed.answer == first.answer
        assert runs.get_run("busy")["status"] == "done"
    finally:
        holder.kill()
        runs.close()


# -- concurrency ----------------------------------------------------------------------------

async def test_twenty_concurrent_runs_all_finish_with_complete_trees_and_memory(db_url):
    def plans(question: str) -> str:
        if question.startswith("Task"):
            n = question.split()[1].rstrip(":")
            return decision("divide", subproblems=[{"question": f"Part {i} of task {n}?"}
                                                   for i in range(1, 4)])
        return decision("solve")

    questions = [f"Task {n}: combine three parts." for n in range(20)]
    model = scripted(plans=plans, delay_s=0.02)
    results = await asyncio.gather(*(asolve(q, chat_model=model, database_url=db_url)
                                     for q in questions))
    runs = store_of(db_url)
    try:
        async with open_memory(db_url) as memory:
            for q, result in zip(questions, results, strict=True):
                assert result.question == q and result.root["status"] == "done"
                assert len(result.tree) == 4
                assert runs.get_run(result.run_id)["status"] == "done"
                assert comparable(runs.problems(result.run_id)) == comparable(result.tree)
                remembered = await memory.store.asearch(problem_namespace(result.run_id), limit=50)
                assert {r.key for r in remembered} == set(result.tree)
            answers = await memory.store.asearch(
                answer_namespace("qwen2.5-coder-0.5b-instruct", "default"), limit=200)
            assert len(answers) == 20 * 4
    finally:
        runs.close()


# -- schema versions --------------------------------------------------------------------------

def test_an_older_schema_is_upgraded_in_place_without_losing_runs(db_url):
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # a database as version 1 left it, with one run in it
        MIGRATIONS[0](conn)
        conn.execute(schema_table.insert().values(version=1, applied_at=time.time()))
        conn.execute(sa.text(
            "INSERT INTO lottery_runs (run_id, question, strategy, model, knowledge_base, "
            "settings, status, best_effort, calls, prompt_tokens, completion_tokens, attempts, "
            "created_at, updated_at) VALUES ('old', 'Old question?', 'algorithm1', 'm', 'default', "
            "'{}', 'done', false, 3, 10, 5, 1, 1.0, 1.0)"))
    engine.dispose()
    runs = RunStore(db_url)
    try:
        assert runs.schema_version() == 1
        assert runs.migrate() == SCHEMA_VERSION == runs.schema_version()
        old = runs.get_run("old")
        assert old["question"] == "Old question?" and old["calls"] == 3
        assert old["reuse_hits"] == 0 and old["saved_calls"] == 0
        assert runs.migrate() == SCHEMA_VERSION  # idempotent
    finally:
        runs.close()


async def test_a_newer_schema_is_refused_with_a_clear_error_and_left_alone(db_url):
    runs = store_of(db_url)
    try:
        with runs.engine.begin() as conn:
            conn.execute(schema_table.insert().values(version=SCHEMA_VERSION + 1,
                                                      applied_at=time.time()))
        with pytest.raises(SchemaVersionError, match="newer than this lottery-llm"):
            await asolve("What is 2 + 2?", chat_model=scripted(), database_url=db_url)
        assert runs.schema_version() == SCHEMA_VERSION + 1
        assert runs.list_runs() == []
    finally:
        runs.close()


async def test_hostile_model_text_is_stored_on_every_backend(db_url):
    from lottery.testing import ScriptedChatModel

    replies = ['{"action": "solve", "reason": "\\ud800 \\u0000"}', "Answer: a\x00b\ud800c"]
    model = ScriptedChatModel(respond=lambda messages: replies[min(len(model.calls), 1)])
    result = await asolve("What is hostile?", chat_model=model, database_url=db_url)
    assert result.answer == "a\ufffdb?c"
    runs = store_of(db_url)
    try:
        assert runs.get_run(result.run_id)["answer"] == result.answer
        assert runs.problems(result.run_id)["0"]["reason"] == "? \ufffd"
    finally:
        runs.close()


# -- the settings that choose and share the database ------------------------------------------

async def test_generate_store_serves_memory_m_of_lottery_database_url(db_url, monkeypatch):
    from lottery.stores.sql import generate_store

    monkeypatch.setenv("LOTTERY_DATABASE_URL", db_url)
    result = await asolve("What is 2 + 2?", chat_model=scripted())  # no database_url: the env's
    async with generate_store() as store:  # what a LangGraph server's "store" path opens
        records = await store.asearch(problem_namespace(result.run_id))
        assert [r.value["answer"] for r in records] == ["42"]
        await store.aput(("notes",), "shared", {"by": "server"})
    async with open_memory(db_url) as memory:
        assert (await memory.store.aget(("notes",), "shared")).value == {"by": "server"}


def test_the_cli_keeps_its_runs_in_the_database_lottery_database_url_names(db_url, tmp_path):
    from tests.integration.servers import stub_server

    stub = stub_server().start()
    env = {**os.environ, "LOTTERY_DATABASE_URL": db_url, "LOTTERY_HOME": str(tmp_path / "home"),
           "LOTTERY_BASE_URL": f"{stub.url}/v1", "LOTTERY_MODEL": "stub"}
    lottery = [sys.executable, "-m", "lottery.cli"]
    try:
        asked = subprocess.run([*lottery, "ask", "How tall is tower A?", "--json"], env=env,
                               capture_output=True, text=True, timeout=120)
    finally:
        stub.stop()
    assert asked.returncode == 0, asked.stderr
    run_id = json.loads(asked.stdout)["run_id"]
    listed = subprocess.run([*lottery, "runs", "list", "--json"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert [r["run_id"] for r in json.loads(listed.stdout)] == [run_id]
    assert store_of(db_url).get_run(run_id)["status"] == "done"
    if db_url.startswith("postgresql"):  # nothing went to the default SQLite file
        assert not (tmp_path / "home" / "lottery.db").exists()


def _hold_write_lock(path: Path, *, seconds: float) -> subprocess.Popen:
    """Another process that holds the SQLite write lock of ``path`` for ``seconds`` (started
    once it holds it)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, time\n"
         f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
         f"c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep({seconds})\n"
         "c.execute('COMMIT')"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


async def test_a_writer_waits_out_another_process_lock_within_the_busy_timeout(tmp_path, monkeypatch):
    import lottery.stores.sql as sql

    url = f"sqlite:///{tmp_path / 'lottery.db'}"
    await asolve("What is 1 + 1?", chat_model=scripted(), database_url=url)  # creates the file
    holder = _hold_write_lock(tmp_path / "lottery.db", seconds=2)  # another process
    try:
        start = time.monotonic()
        result = await asolve("What is 2 + 2?", chat_model=scripted(), database_url=url)
        assert result.answer == "42" and time.monotonic() - start >= 1.0  # it waited
    finally:
        holder.wait(timeout=10)
    assert store_of(url).get_run(result.run_id)["status"] == "done"

    monkeypatch.setattr(sql, "BUSY_TIMEOUT_S", 0.05)  # without the wait, the same lock fails
    holder = _hold_write_lock(tmp_path / "lottery.db", seconds=2)
    try:
        with pytest.raises(Exception, match="locked"):
            await asolve("What is 3 + 3?", chat_model=scripted(), database_url=url)
    finally:
        holder.wait(timeout=10)
