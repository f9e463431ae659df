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
    from lottery.core.context import Context
    from lottery.resources import Resources

    res = Resources(settings=Context(web_search=web_search) if web_search else Context())
    # Outside a graph the memory tools get a fresh in-memory store of their own.
    return default_registry(knowledge=res.kb, store=InMemoryStore(), web_search=web_search)


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


@app.command("doctor")
@cli_errors
def doctor(as_json: bool = JSON_OPTION) -> None:
    """Show what confines model-written programs here: the kernel's layers and a real run's.

    Exit status 1 when the sandbox is strict and a required layer is missing (no program
    would run); 0 otherwise.
    """
    from lottery.tools.sandbox import REQUIRED_LAYERS
    from lottery.tools.sandbox import doctor as sandbox_doctor

    report = asyncio.run(sandbox_doctor())
    if as_json:
        print_json(report)
    else:
        table = Table("layer", "kernel offers", "a program got",
                      title=f"sandbox: {report['mode']} mode, {report['user']}, "
                      f"Linux {report['kernel']}")
        offered = {
            "landlock_fs": f"ABI {report['landlock_abi']}" if report["landlock"] else "no",
            "landlock_net": "yes" if report["landlock_net"] else "no (ABI < 4)",
            "landlock_scope": "yes" if report["landlock_scope"] else "no (ABI < 6)",
            "seccomp": "yes" if report["seccomp"] else "no",
        }
        for layer in ("rlimits", "process_group", "clean_env", "no_new_privs", *offered,
                      "uid", "netns"):
            applied = layer in report["layers"]
            style = "green" if applied else ("red" if layer in REQUIRED_LAYERS else "dim")
            table.add_row(layer, offered.get(layer, "-"),
                          f"[{style}]{'yes' if applied else 'no'}[/]")
        out = Console()
        out.print(table)
        for problem in report["problems"] + ([report["run_error"]] if report["run_error"] else []):
            out.print(f"[red]{problem}[/]", markup=True, highlight=False)
        out.print("[green]ready: programs run confined[/]" if report["ready"] else
                  "[red]not ready: programs will not run (strict mode)[/]"
                  if report["mode"] == "strict" else
                  "[yellow]permissive: programs run WITHOUT the missing layers[/]")
    if not report["ready"] and report["mode"] == "strict":
        raise typer.Exit(1)
