"""``lottery tools``: list the tools, run one directly (same sandbox, limits and errors)."""

from __future__ import annotations

import asyncio
import json
import sys

import typer
from langgraph.store.memory import InMemoryStore
from rich.console import Console
from rich.table import Table

from lottery.cli.common import JSON_OPTION, cli_errors, print_json
from lottery.errors import ToolArgumentsError
from lottery.tools import ToolRegistry, default_registry

app = typer.Typer(help="List the tools of C, or run one outside any graph.", no_args_is_help=True)


def _registry(web_search: bool) -> ToolRegistry:
    from lottery.graphs.context import Context

    ctx = Context(web_search=web_search) if web_search else Context()
    # Outside a graph the memory tools get a fresh in-memory store of their own.
    return default_registry(knowledge=ctx.kb, store=InMemoryStore(), web_search=ctx.web_search)


@app.command("list")
@cli_errors
def list_tools(
    as_json: bool = JSON_OPTION,
    web_search: bool = typer.Option(False, "--web-search", help="Include web_search."),
) -> None:
    """List every tool with its description and argument schema."""
    registry = _registry(web_search)
    rows = [{"name": n, "description": registry.get(n).description,
             "args_schema": registry.args_schema(n)} for n in registry.names()]
    if as_json:
        print_json(rows)
        return
    table = Table("tool", "arguments", "description")
    for row in rows:
        props = row["args_schema"].get("properties", {})
        table.add_row(row["name"], ", ".join(props), row["description"])
    Console().print(table)


@app.command("run")
@cli_errors
def run_tool(
    name: str = typer.Argument(..., help="The tool to run (see `lottery tools list`)."),
    args: str = typer.Option(..., "--args", help='Arguments as a JSON object, e.g. {"expression": "2+2"}.'),
    as_json: bool = JSON_OPTION,
    web_search: bool = typer.Option(False, "--web-search", help="Allow web_search."),
) -> None:
    """Run tool NAME once with --args; exit status 2 for an unknown tool or bad arguments."""
    try:
        parsed = json.loads(args)
    except json.JSONDecodeError as exc:
        raise ToolArgumentsError(f"--args is not valid JSON: {exc.msg} (column {exc.colno})") from None
    registry = _registry(web_search)
    registry.validate(name, parsed)  # unknown tool or bad arguments: exit 2, nothing ran
    result = asyncio.run(registry.arun(name, parsed))
    if as_json:
        print_json(result.as_dict())
    elif result.ok:
        Console().print(result.output, markup=False, highlight=False)
    if not result.ok:
        if not as_json:
            print(f"error: {result.error}", file=sys.stderr)
        raise typer.Exit(1)
