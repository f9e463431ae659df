"""The SQL memory on a local SQLite file: default durable path, bad URLs, faults, the runs CLI."""

from __future__ import annotations

import json
import socket
import sqlite3

import pytest
from typer.testing import CliRunner

from lottery import asolve
from lottery.cli import app
from lottery.errors import DatabaseUnavailableError, DatabaseURLError
from lottery.stores.sql import RunStore, database_url, open_memory, parse_url
from tests.unit.scripted import decision, scripted

pytestmark = pytest.mark.usefixtures("planner_policy")
"""These tests script the model planner's decisions: runs follow the planner policy."""

Q = "How many people live in France and Germany together?"
PLANS = {Q: decision("divide", subproblems=[{"question": "What is the population of France?"},
                                            {"question": "What is the population of Germany?"}])}


def default_runs() -> RunStore:
    runs = RunStore(database_url())
    runs.migrate()
    return runs


async def test_default_runs_are_durable_and_recorded_under_lottery_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path))
    result = await asolve(Q, chat_model=scripted(plans=PLANS))
    assert (tmp_path / "lottery.db").exists()
    runs = default_runs()
    try:
        row = runs.get_run(result.run_id)
        assert row["status"] == "done" and row["answer"] == "42" and row["calls"] == 6
        assert set(runs.problems(result.run_id)) == {"0", "0.1", "0.2"}
    finally:
        runs.close()
    with sqlite3.connect(tmp_path / "lottery.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_the_run_record_keeps_settings_but_never_a_key(tmp_path, monkeypatch):
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path))
    result = await asolve(Q, chat_model=scripted(plans=PLANS), max_calls=9,
                          api_key="sk-secret-1", delegate_api_key="sk-secret-2")
    runs = default_runs()
    try:
        settings = runs.get_run(result.run_id)["settings"]
    finally:
        runs.close()
    assert settings["max_calls"] == 9 and "api_key" not in settings
    assert "delegate_api_key" not in settings
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("lottery.db*") if p.is_file())
    assert b"sk-secret" not in stored


async def test_durable_false_leaves_no_database(tmp_path, monkeypatch):
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path))
    result = await asolve(Q, chat_model=scripted(plans=PLANS), durable=False)
    assert result.answer == "42" and not (tmp_path / "lottery.db").exists()


@pytest.mark.parametrize("url", ["mysql://u@h/db", "not a url", "sqlite://", "sqlite:///:memory:"])
def test_unusable_database_urls_are_refused_in_one_line(url):
    with pytest.raises(DatabaseURLError) as err:
        parse_url(url)
    assert "\n" not in str(err.value) and "sqlite:///PATH" in str(err.value)  # says what works


def test_postgres_urls_are_driven_by_psycopg_3():
    assert parse_url("postgresql://u:secret@h:5/db").drivername == "postgresql+psycopg"


async def test_an_unreachable_postgres_server_is_a_clear_error_without_the_password():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DatabaseUnavailableError) as err:
        async with open_memory(f"postgresql+psycopg://u:secret@127.0.0.1:{port}/db"):
            pass
    assert "secret" not in str(err.value) and "LOTTERY_DATABASE_URL" in str(err.value)


async def test_a_read_only_database_is_a_clear_error_and_its_runs_are_kept(tmp_path):
    path = tmp_path / "lottery.db"
    first = await asolve(Q, chat_model=scripted(plans=PLANS), database_url=f"sqlite:///{path}")
    with pytest.raises(DatabaseUnavailableError, match="read-only"):
        await asolve("What is 2 + 2?", chat_model=scripted(),
                     database_url=f"sqlite:///{path}?mode=ro")
    runs = RunStore(f"sqlite:///{path}")
    try:
        assert [r["run_id"] for r in runs.list_runs()] == [first.run_id]
    finally:
        runs.close()


async def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatabaseUnavailableError, match="does not exist"):
        async with open_memory(f"sqlite:///{tmp_path / 'nope' / 'lottery.db'}"):
            pass


async def test_runs_cli_lists_shows_and_exports_the_stored_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path))
    result = await asolve(Q, chat_model=scripted(plans=PLANS))
    cli = CliRunner()
    listed = cli.invoke(app, ["runs", "list", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["run_id"] == result.run_id
    shown = cli.invoke(app, ["runs", "show", result.run_id])
    assert shown.exit_code == 0
    assert "What is the population of Germany?" in shown.stdout and "6 model calls" in shown.stdout
    exported = json.loads(cli.invoke(app, ["runs", "export", result.run_id]).stdout)
    assert set(exported["tree"]) == {"0", "0.1", "0.2"} and exported["status"] == "done"
    as_json = json.loads(cli.invoke(app, ["runs", "show", result.run_id, "--json"]).stdout)
    assert as_json["tree"]["0"]["children"] == ["0.1", "0.2"]


def test_runs_cli_says_so_when_a_run_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path))
    out = CliRunner().invoke(app, ["runs", "show", "nope"])
    assert out.exit_code == 1 and "no run 'nope'" in out.stderr
    out = CliRunner().invoke(app, ["resume", "nope"])
    assert out.exit_code == 1 and "no run 'nope'" in out.stderr


def test_ask_no_reuse_turns_reuse_off(monkeypatch):
    seen = {}

    def fake_solve(question, **kwargs):
        seen.update(kwargs)
        raise DatabaseURLError("stop here")

    monkeypatch.setattr("lottery.cli.ask.solve", fake_solve)
    out = CliRunner().invoke(app, ["ask", "What?", "--no-reuse"])
    assert out.exit_code == 2 and seen["reuse"] is False
    CliRunner().invoke(app, ["ask", "What?"])
    assert seen["reuse"] is None  # the default: the setting (LOTTERY_REUSE, else on)


async def _failed_run(tmp_path, **settings):
    """A run whose model dies (HTTP 400, not retried) after the planner's decision."""
    import httpx
    import openai

    from lottery.testing import ScriptedChatModel

    def respond(messages):  # type: ignore[no-untyped-def]
        if "Split the question" in str(messages[0].content) or "You plan" in str(
                messages[0].content):
            return PLANS[Q]
        response = httpx.Response(400, request=httpx.Request("POST", "http://x/v1"))
        raise openai.BadRequestError("HTTP 400", response=response, body=None)

    with pytest.raises(Exception):  # noqa: B017 - the run fails; its record stays
        await asolve(Q, chat_model=ScriptedChatModel(respond=respond), thread_id="broken",
                     **settings)
    return "broken"


async def test_runs_list_filters_by_status(tmp_path, monkeypatch):
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path))
    done = await asolve(Q, chat_model=scripted(plans=PLANS))
    broken = await _failed_run(tmp_path)
    cli = CliRunner()

    def listed(status: str) -> list[str]:
        out = cli.invoke(app, ["runs", "list", "--status", status, "--json"])
        assert out.exit_code == 0, out.output
        return [r["run_id"] for r in json.loads(out.stdout)]

    assert listed("done") == [done.run_id]
    assert listed("failed") + listed("interrupted") == [broken]
    bad = cli.invoke(app, ["runs", "list", "--status", "finished"])
    assert bad.exit_code == 2 and "status" in bad.output and "Traceback" not in bad.output


async def test_resume_finishes_a_failed_run_with_its_stored_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path))
    broken = await _failed_run(tmp_path, max_calls=9, max_depth=1)
    from lottery.api import aresume
    from tests.unit.scripted import question_of, step_of

    model = scripted(plans=PLANS)
    result = await aresume(broken, chat_model=model)  # no settings given: the stored ones
    assert result.run_id == broken and result.answer == "42" and result.root["status"] == "done"
    stored = default_runs().get_run(broken)
    assert stored["status"] == "done" and stored["settings"]["max_calls"] == 9
    # The root's decision was made before the failure: it is not asked for again.
    assert not [c for c in model.calls if step_of(c) == "plan" and question_of(c["messages"]) == Q]
    assert len(model.calls) <= 9


def test_every_problem_field_has_a_home_in_the_problems_table():
    """Problem (lottery/core/state.py) is the one definition of the record: each required field is a
    column of lottery_problems, any other field lands in its ``extra`` JSON column, and no
    column stores something Problem does not define (besides the bookkeeping ones)."""
    from typing import NotRequired, get_origin, get_type_hints

    from lottery.core.state import Problem
    from lottery.stores.sql import _PROBLEM_FIELDS, problems_table

    hints = get_type_hints(Problem, include_extras=True)  # (the module's annotations are strings)
    required = {k for k, t in hints.items() if get_origin(t) is not NotRequired and k != "id"}
    assert set(_PROBLEM_FIELDS) == required, "a required Problem field needs a column and a migration"
    bookkeeping = {"run_id", "problem_id", "prompt_tokens", "completion_tokens", "reused_from",
                   "extra", "started_at", "finished_at"}
    assert {c.name for c in problems_table.columns} == required | bookkeeping
    assert get_origin(hints["reused_from"]) is NotRequired


def test_the_run_usage_a_caller_gets_has_every_counter_of_the_state_and_no_other():
    """Usage (lottery/core/state.py) is the one definition of a run's counters: a counter
    added there reaches SolveResult.usage without a second edit."""
    from dataclasses import fields

    from lottery.api import RunUsage
    from lottery.core.state import Usage

    assert {f.name for f in fields(RunUsage)} - {"wall_time_s"} == set(Usage.__annotations__)
