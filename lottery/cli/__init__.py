"""The ``lottery`` command line. Each command group lives in its own module."""

from __future__ import annotations

import typer

from lottery.cli import ask, kb, models, runs, serve, tools

app = typer.Typer(
    name="lottery",
    help="Answer questions with a small model driven by Algorithm 1 (Lottery LLM hypothesis).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("ask")(ask.ask)
app.command("resume")(runs.resume)
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.command("serve")(serve.serve)
app.add_typer(tools.app, name="tools")
app.add_typer(kb.app, name="kb")


@app.callback()
def _root() -> None:
    """Answer questions with a small model driven by Algorithm 1 (Lottery LLM hypothesis)."""


def main() -> None:
    """Entry point of the ``lottery`` script."""
    app()
