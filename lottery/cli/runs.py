"""``lottery runs list|show|export`` and ``lottery resume``: the runs recorded in memory M."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from lottery.cli.common import JSON_OPTION, cli_errors, print_json
from lottery.errors import InputError
from lottery.render import problem_tree
from lottery.stores.sql import RUN_STATUSES, RunStore, database_url

app = typer.Typer(help="Runs recorded in the memory database: list, show, export.",
                  no_args_is_help=True)

DB_OPTION = typer.Option(None, "--db", help="Database URL (env: LOTTERY_DATABASE_URL).")


def _open(db: str | None) -> RunStore:
    runs = RunStore(database_url(db))
    runs.migrate()
    return runs


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
@cli_errors
def list_runs(
    limit: int = typer.Option(20, min=1, help="How many runs, newest first."),
    status: str | None = typer.Option(None, help="Only runs with this status (running, done, "
                                                  "failed, interrupted)."),
    as_json: bool = JSON_OPTION,
    db: str | None = DB_OPTION,
) -> None:
    """List the latest runs."""
    if status is not None and status not in RUN_STATUSES:
        raise InputError(f"unknown run status {status!r}: choose one of {', '.join(RUN_STATUSES)}")
    runs = _open(db)
    try:
        rows = runs.list_runs(limit=limit, status=status)
    finally:
        runs.close()
    if as_json:
        print_json(rows)
        return
    table = Table("run id", "status", "started", "calls", "reused", "question")
    for r in rows:
        reused = f"{r['reuse_hits']} (-{r['saved_calls']} calls)" if r["reuse_hits"] else ""
        table.add_row(r["run_id"], r["status"], _when(r["created_at"]), str(r["calls"]), reused,
                      r["question"][:70])
    Console().print(table)


@app.command("show")
@cli_errors
def show(
    run_id: str = typer.Argument(..., help="Id of the run (see `lottery runs list`)."),
    as_json: bool = JSON_OPTION,
    db: str | None = DB_OPTION,
) -> None:
    """Show a run: its problem tree, answer and usage."""
    data = _export(run_id, db)
    if as_json:
        print_json(data)
        return
    out = Console()
    out.print(f"[bold]{data['run_id']}[/] {data['status']}  {_when(data['created_at'])}  "
              f"{data['strategy']} / {data['model']}")
    if data["tree"]:
        out.print(problem_tree(data["tree"]))
    out.print(f"[dim]{data['calls']} model calls, {data['prompt_tokens']}+"
              f"{data['completion_tokens']} tokens, {data['reuse_hits']} reused sub-problems "
              f"({data['saved_calls']} calls saved)[/]")
    if data.get("error"):
        Console(stderr=True).print(f"[red]{data['error']}[/]", markup=False)
    if data.get("answer") is not None:
        out.print(data["answer"], markup=False, highlight=False)


@app.command("export")
@cli_errors
def export(
    run_id: str = typer.Argument(..., help="Id of the run."),
    db: str | None = DB_OPTION,
) -> None:
    """Print everything stored about a run as JSON (tree, timings, tokens, tool calls)."""
    print_json(_export(run_id, db))


def _export(run_id: str, db: str | None) -> dict[str, Any]:
    runs = _open(db)
    try:
        return runs.export(run_id)
    finally:
        runs.close()


@cli_errors
def resume(
    run_id: str = typer.Argument(..., help="Id of the interrupted run (see `lottery runs list`)."),
    trace: bool = typer.Option(False, "--trace", help="Print the problem tree."),
    as_json: bool = JSON_OPTION,
    base_url: str | None = typer.Option(None, help="Model server URL (env: LOTTERY_BASE_URL)."),
    db: str | None = DB_OPTION,
) -> None:
    """Finish an interrupted run from its last checkpoint, without redoing finished sub-problems."""
    from lottery.api import aresume

    result = asyncio.run(aresume(run_id, database_url=db,
                                 **({"base_url": base_url} if base_url else {})))
    if as_json:
        print_json(result.to_dict())
        return
    out = Console()
    if trace:
        out.print(problem_tree(result.tree))
    out.print(result.answer or "", markup=False, highlight=False)
