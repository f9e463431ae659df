"""``lottery abilities``: probe a model for the five abilities of a lottery LLM."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lottery.cli.common import JSON_OPTION, cli_errors, print_json


@cli_errors
def abilities(
    model: str | None = typer.Option(None, help="Model name (env LOTTERY_MODEL)."),
    base_url: str | None = typer.Option(None, help="Model server URL (env LOTTERY_BASE_URL)."),
    concurrency: int = typer.Option(8, help="Checks in flight at once."),
    only: Annotated[list[str] | None, typer.Option(help="Run only this ability (repeatable).")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Score a model on the five abilities Algorithm 1 relies on, with a verdict."""
    from lottery.api import make_resources
    from lottery.bench.abilities import ABILITIES
    from lottery.errors import ConfigurationError

    only = only or []
    bad = [o for o in only if o not in ABILITIES]
    if bad:
        raise ConfigurationError(f"unknown ability {bad[0]!r} (choose from {', '.join(ABILITIES)})")
    res = make_resources(model=model, base_url=base_url)
    res.llm  # noqa: B018 - fail fast without a server setting
    with Console(stderr=True).status(f"probing {res.settings.model} ..."):
        report = asyncio.run(_run(res, concurrency, tuple(only)))
    if as_json:
        print_json(report)
        return
    table = Table(title=f"Abilities of {report['model']}")
    for col in ("ability", "score", "checks", "pass"):
        table.add_column(col)
    for name, a in report["abilities"].items():
        table.add_row(name, f"{100 * a['score']:.0f}%", str(a["checks"]),
                      "[green]yes[/]" if a["passed"] else "[red]no[/]")
    out = Console()
    out.print(table)
    u = report["usage"]
    out.print(f"verdict: {report['verdict']}  ({u['calls']} calls, "
              f"{u['prompt_tokens'] + u['completion_tokens']} tokens, {u['wall_time_s']}s)")


async def _run(res: Any, concurrency: int, only: tuple[str, ...]) -> dict[str, Any]:
    from lottery.bench.abilities import run_abilities

    return await run_abilities(res, concurrency=concurrency, only=only)
