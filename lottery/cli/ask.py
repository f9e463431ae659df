"""``lottery ask``: answer one question."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from lottery.api import solve
from lottery.cli.common import JSON_OPTION, cli_errors, print_json
from lottery.errors import InputError
from lottery.render import problem_tree
from lottery.telemetry import setup_from_env


@cli_errors
def ask(
    question: str = typer.Argument(..., help="The question ('-' reads it from standard input)."),
    trace: bool = typer.Option(False, "--trace", help="Print the problem tree."),
    as_json: bool = JSON_OPTION,
    strategy: str = typer.Option("algorithm1", help="algorithm1, direct or cot."),
    base_url: str | None = typer.Option(None, help="Model server URL [env: LOTTERY_BASE_URL]."),
    model: str | None = typer.Option(None, help="Model name [env: LOTTERY_MODEL]."),
    max_depth: int | None = typer.Option(None, help="Deepest sub-problem level [env: LOTTERY_MAX_DEPTH]."),
    max_calls: int | None = typer.Option(None, help="Budget of model calls [env: LOTTERY_MAX_CALLS]."),
    max_tokens: int | None = typer.Option(None, help="Budget of tokens [env: LOTTERY_MAX_TOKENS]."),
    reuse: bool = typer.Option(True, "--reuse/--no-reuse",
                               help="Answer sub-problems solved before from memory [env: LOTTERY_REUSE]."),
    kb: str | None = typer.Option(None, "--kb", help="Knowledge base name [env: LOTTERY_KNOWLEDGE_BASE]."),
    trace_otel: bool = typer.Option(
        False, "--trace-otel",
        help="Print OpenTelemetry spans to standard error (OTEL_* variables configure export).",
    ),
    context_file: str | None = typer.Option(
        None, "--context", help="UTF-8 file the question is about; long ones are retrieved from."),
) -> None:
    """Answer QUESTION with a small model driven by Algorithm 1."""
    if question == "-":
        raw = sys.stdin.buffer.read()
        try:
            question = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("standard input is not UTF-8 text") from None
    document = _read_context(Path(context_file)) if context_file else None
    telemetry = setup_from_env(console=trace_otel)
    try:
        result = solve(question, strategy=strategy, base_url=base_url, model=model,
                       max_depth=max_depth, max_calls=max_calls, max_tokens=max_tokens,
                       knowledge_base=kb, tracer_provider=telemetry.tracer_provider,
                       meter_provider=telemetry.meter_provider,
                       reuse=None if reuse else False, document=document)
    finally:
        telemetry.shutdown()
    if as_json:
        print_json(result.to_dict())
        return
    out = Console()
    if trace:
        out.print(problem_tree(result.tree))
        u = result.usage
        out.print(f"[dim]{u.calls} model calls, {u.prompt_tokens}+{u.completion_tokens} tokens, "
                  f"{u.wall_time_s:.1f}s[/]")
    if result.best_effort:
        Console(stderr=True).print(
            f"[yellow]best-effort answer: the run stopped early ({result.stop_reason})[/]")
    out.print(result.answer or "", markup=False, highlight=False)


def _read_context(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the context file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"the context file {path} is not UTF-8 text") from None
    if "\x00" in text:
        raise InputError(f"the context file {path} contains NUL bytes: is it binary?")
    return text
