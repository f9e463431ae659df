"""``lottery bench``: run a suite, resumably; ``lottery bench report``: compare runs."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from lottery.cli.common import JSON_OPTION, cli_errors, print_json
from lottery.errors import ConfigurationError

app = typer.Typer(help="Benchmark a model and strategy on a suite; compare results.",
                  invoke_without_command=True, no_args_is_help=False)


def _parse_settings(raw: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigurationError(f"--set expects NAME=VALUE, got {item!r}")
        for cast in (int, float):
            try:
                out[key.strip()] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key.strip()] = value
    return out


@app.callback()
@cli_errors
def bench(
    ctx: typer.Context,
    suite: Annotated[str | None, typer.Option(help="Suite: gsm8k, svamp, proofwriter, hotpot, ...")] = None,
    data: Annotated[Path | None, typer.Option(help="Datasets folder (env LOTTERY_DATA).")] = None,
    strategy: Annotated[str, typer.Option(
        help="direct, cot, pal (one executed Python program) or algorithm1.")] = "algorithm1",
    ablate: Annotated[list[str] | None, typer.Option(
        help="Switch off: tools, retrieval, divide or memory (repeatable).")] = None,
    policy: Annotated[str | None, typer.Option(
        help="Algorithm 1 policy: auto (default, as `lottery ask` runs), math, deduction, "
        "ordering, logic, knowledge, general or planner.")] = None,
    delegate_model: Annotated[str | None, typer.Option(
        help="Larger model that doubtful problems are delegated to.")] = None,
    delegate_base_url: Annotated[str | None, typer.Option(
        help="Its server's URL (…/v1).")] = None,
    rag: Annotated[bool, typer.Option(
        "--rag", help="Baselines: one retrieval, passages in the prompt.")] = False,
    model: Annotated[str | None, typer.Option(help="Model name (env LOTTERY_MODEL).")] = None,
    base_url: Annotated[str | None, typer.Option(help="Model server URL (env LOTTERY_BASE_URL).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N items.")] = None,
    skip: Annotated[int, typer.Option(
        help="Leave out the first N items (before --limit): held-out rows.")] = 0,
    concurrency: Annotated[int, typer.Option(help="Items in flight at once.")] = 8,
    out: Annotated[Path | None, typer.Option(help="Results folder (resumed when it exists).")] = None,
    params: Annotated[float | None, typer.Option(
        help="Model parameters, for compute (default: from the catalogue).")] = None,
    settings: Annotated[list[str] | None, typer.Option(
        "--set", help="Extra run setting NAME=VALUE, e.g. max_calls=12 (repeatable).")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run SUITE with a model and strategy; a stopped bench resumes from its --out folder."""
    if ctx.invoked_subcommand is not None:
        return
    from lottery.bench.runner import BenchConfig, run_bench
    from lottery.core.context import Context
    from lottery.engines.server import engine_of

    if not suite or out is None:
        raise ConfigurationError("lottery bench needs --suite and --out (see lottery bench --help)")
    config = BenchConfig(
        suite=suite, strategy=strategy, model=model or Context().model, out=str(out),
        data=str(data) if data else None, ablate=tuple(ablate or ()), base_url=base_url, limit=limit,
        skip=skip, concurrency=concurrency, rag=rag, params=params, settings=_parse_settings(settings or []),
        policy=policy, delegate_model=delegate_model, delegate_base_url=delegate_base_url,
        engine=engine_of(base_url),
    )
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("acc {task.fields[acc]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console,
    )
    state = {"n": 0, "ok": 0, "task": None}

    def on_start(todo: int, skipped: int) -> None:
        if skipped:
            console.print(f"resuming {out}: {skipped} items already done, {todo} to go")
        state["task"] = progress.add_task(f"{suite} {config.label}", total=todo, acc="-")

    def on_row(row: dict[str, Any]) -> None:
        state["n"] += 1
        state["ok"] += bool(row.get("correct"))
        progress.update(state["task"], advance=1, acc=f"{100 * state['ok'] / state['n']:.0f}%")
        if not console.is_terminal:  # a log file: one line per item instead of a live bar
            console.print(f"{state['n']} {row['id']} correct={row['correct']} "
                          f"calls={row.get('calls')} {row['wall_time_s']}s", markup=False)

    with progress:
        result = asyncio.run(run_bench(config, on_start=on_start, on_row=on_row))
    s = result.summary
    if as_json:
        print_json(s)
        return
    acc = "n/a" if s["accuracy"] is None else f"{100 * s['accuracy']:.1f}%"
    Console().print(
        f"{s['suite']} {s['model']} {s['label']}: accuracy {acc} on {s['items']} items "
        f"({s['errors']} errors), {s.get('calls_per_item', 0)} calls and "
        f"{s.get('tokens_per_item', 0)} tokens per item; results in {out}"
    )


@app.command("report")
@cli_errors
def report(
    dirs: Annotated[list[Path], typer.Argument(help="Bench folders, or folders holding them.")],
    out: Annotated[Path | None, typer.Option(
        help="Where report.md and the PNGs go (default: the first DIR).")] = None,
    params: Annotated[list[str] | None, typer.Option(
        help="MODEL=PARAMS override for compute (repeatable).")] = None,
    as_json: bool = JSON_OPTION,
) -> None:
    """Markdown comparison table and PNG plots of bench results."""
    from lottery.bench.report import write_report

    overrides = {k: float(v) for k, v in _parse_settings(params or []).items()}
    written = write_report(dirs, out or dirs[0], params=overrides)
    if as_json:
        print_json({"results": written["results"], "files": written["files"]})
        return
    sys.stdout.write(written["table"])
    Console(stderr=True).print("wrote " + ", ".join(written["files"]))
