"""``lottery ask``: answer one question."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from lottery.api import solve
from lottery.cli.common import JSON_OPTION, cli_errors, print_json, stderr
from lottery.core.state import SURE_CONFIDENCE
from lottery.errors import InputError
from lottery.render import problem_tree
from lottery.telemetry import setup_from_env

BEST_EFFORT_EXIT = 3
"""Exit status of ``lottery ask`` when it printed a best-effort answer (scripts: treat the
answer as unchecked)."""


@cli_errors
def ask(
    question: str = typer.Argument(..., help="The question ('-' reads it from standard input)."),
    trace: bool = typer.Option(False, "--trace", help="Print the problem tree."),
    as_json: bool = JSON_OPTION,
    strategy: str = typer.Option("algorithm1", help="algorithm1, direct, cot or pal."),
    policy: str | None = typer.Option(
        None, help="How Algorithm 1 answers: auto (default), math, deduction, "
        "ordering, logic, knowledge, general or planner (env: LOTTERY_POLICY)."),
    delegate_model: str | None = typer.Option(
        None, help="Larger model that doubtful problems are delegated to "
        "(env: LOTTERY_DELEGATE_MODEL)."),
    delegate_base_url: str | None = typer.Option(
        None, help="Its server's URL, …/v1 (env: LOTTERY_DELEGATE_BASE_URL)."),
    base_url: str | None = typer.Option(None, help="Model server URL (env: LOTTERY_BASE_URL)."),
    model: str | None = typer.Option(None, help="Model name (env: LOTTERY_MODEL)."),
    engine: str | None = typer.Option(
        None, help="Engine of the local server started when no --base-url is given: vllm "
        "(default), llama.cpp or auto (env: LOTTERY_ENGINE)."),
    max_depth: int | None = typer.Option(None, help="Deepest sub-problem level (env: LOTTERY_MAX_DEPTH)."),
    max_calls: int | None = typer.Option(None, help="Budget of model calls (env: LOTTERY_MAX_CALLS)."),
    max_tokens: int | None = typer.Option(None, help="Budget of tokens (env: LOTTERY_MAX_TOKENS)."),
    reuse: bool = typer.Option(True, "--reuse/--no-reuse",
                               help="Answer sub-problems solved before from memory (env: LOTTERY_REUSE)."),
    kb: str | None = typer.Option(None, "--kb", help="Knowledge base name (env: LOTTERY_KNOWLEDGE_BASE)."),
    trace_otel: bool = typer.Option(
        False, "--trace-otel",
        help="Print OpenTelemetry spans to standard error (OTEL_* variables configure export).",
    ),
    context_file: str | None = typer.Option(
        None, "--context", help="UTF-8 file the question is about; long ones are retrieved from."),
) -> None:
    """Answer QUESTION with a small model driven by Algorithm 1.

    Exit status 3: an answer was printed, but it is a best-effort one (it failed its check
    on every rung, or the budget ran out); standard error says why. An accepted answer below
    confidence 0.8 exits 0 with an "unsure answer" note on standard error.
    """
    if question == "-":
        raw = sys.stdin.buffer.read()
        try:
            question = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("standard input is not UTF-8 text") from None
    document = _read_context(Path(context_file)) if context_file else None
    if kb is not None and not _kb_exists(kb):  # a typo would silently answer without it
        stderr().print(f"[yellow]warning:[/] knowledge base {kb!r} does not exist (add files "
                       f"with `lottery kb add --kb {kb}`); answering without it")
    telemetry = setup_from_env(console=trace_otel)
    try:
        result = solve(question, strategy=strategy, base_url=base_url, model=model,
                       max_depth=max_depth, max_calls=max_calls, max_tokens=max_tokens,
                       knowledge_base=kb, tracer_provider=telemetry.tracer_provider,
                       meter_provider=telemetry.meter_provider,
                       reuse=None if reuse else False, document=document, policy=policy,
                       delegate_model=delegate_model, delegate_base_url=delegate_base_url,
                       engine=engine)
    finally:
        telemetry.shutdown()
    if as_json:
        print_json(result.to_dict())
        if result.best_effort:
            raise typer.Exit(BEST_EFFORT_EXIT)
        return
    out = Console()
    if trace:
        out.print(problem_tree(result.tree))
        u = result.usage
        reused = (f", {u.reuse_hits} sub-problems from memory ({u.saved_calls} calls saved)"
                  if u.reuse_hits else "")
        out.print(f"[dim]{u.calls} model calls, {u.prompt_tokens}+{u.completion_tokens} tokens, "
                  f"{u.wall_time_s:.1f}s{reused}; run {result.run_id}[/]")
    if result.best_effort:
        why = (f"the run stopped early ({result.stop_reason})" if result.stop_reason
               else "it did not pass its check")
        sure = f", confidence {result.confidence:.2f}" if result.confidence is not None else ""
        stderr().print(f"[yellow]best-effort answer: {why}{sure}[/]")
    elif result.confidence is not None and result.confidence < SURE_CONFIDENCE:
        stderr().print(
            f"[yellow]unsure answer: accepted at confidence {result.confidence:.2f} "
            f"(sure from {SURE_CONFIDENCE:.2f})[/]")
    out.print(result.answer or "", markup=False, highlight=False)
    if result.best_effort:
        raise typer.Exit(BEST_EFFORT_EXIT)


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


def _kb_exists(name: str) -> bool:
    import asyncio

    from lottery.stores.factory import open_knowledge_base

    async def check() -> bool:
        async with open_knowledge_base(name) as store:
            return await store.aexists()

    return asyncio.run(check())
