"""``lottery serve``: start, stop and list local model servers (vLLM, llama.cpp)."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from lottery.cli.common import JSON_OPTION, cli_errors, print_json
from lottery.engines.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    server_status,
    start_server,
    stop_server,
    wait_foreground,
)
from lottery.errors import ConfigurationError
from lottery.serve.catalogue import DEFAULT_MODEL
from lottery.serve.ui import stderr_progress


@cli_errors
def serve(
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m",
                              help="Catalogue name, Hugging Face id or checkpoint directory."),
    port: int | None = typer.Option(None, "--port", "-p",
                                    help=f"Port to listen on (default {DEFAULT_PORT})."),
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on."),
    detach: bool = typer.Option(False, "--detach", "-d",
                                help="Return once the server answers; leave it running."),
    stop: bool = typer.Option(False, "--stop", help="Stop the server on --port (all if none)."),
    status: bool = typer.Option(False, "--status", help="List the running servers."),
    kv_cache_gib: float | None = typer.Option(
        None, "--kv-cache-gib", help="CPU KV cache GiB (env VLLM_CPU_KVCACHE_SPACE, default 4)."),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds to wait (env LOTTERY_SERVER_START_TIMEOUT)."),
    engine: str | None = typer.Option(
        None, "--engine", "-e",
        help="vllm (default), llama.cpp or auto (env LOTTERY_ENGINE); see docs/engines.md."),
    max_model_len: int = typer.Option(
        4096, "--max-model-len", help="Tokens one request may hold, prompt and answer."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Start an OpenAI-compatible server for MODEL and print its base URL.

    The model is prepared first if needed (see `lottery models prepare`): vLLM gets its
    environment and a converted checkpoint, llama.cpp its server (built once per machine)
    and the GGUF as it is. Clients pass the same MODEL name.
    """
    if stop and status:
        raise ConfigurationError("choose one of --stop and --status")
    if status:
        _print_status(as_json)
        return
    if stop:
        stopped = stop_server(port)
        if as_json:
            print_json([s.to_dict() for s in stopped])
        elif stopped:
            for s in stopped:
                print(f"stopped the server for {s.model} on port {s.port} (pid {s.pid})")
        else:
            print("no server was running" + (f" on port {port}" if port else ""))
        return
    with stderr_progress() as progress:
        info = start_server(model, port=port or DEFAULT_PORT, host=host, progress=progress,
                            timeout=timeout, kv_cache_gib=kv_cache_gib, engine=engine,
                            max_model_len=max_model_len)
    if as_json:
        print_json(info.to_dict())
    else:
        print(info.base_url, flush=True)
    if detach:
        return
    Console(stderr=True).print(
        f"[dim]{info.title} serving {info.model}; Ctrl-C stops it (log: {info.log})[/]")
    wait_foreground(info)


def _print_status(as_json: bool) -> None:
    servers = server_status()
    if as_json:
        print_json(servers)
        return
    if not servers:
        print("no server is running")
        return
    table = Table("port", "engine", "model", "status", "pid", "up", "base URL")
    for s in servers:
        table.add_row(str(s["port"]), s["engine"], s["model"], s["status"], str(s["pid"]),
                      time.strftime("%H:%M:%S", time.gmtime(s["uptime_s"])), s["base_url"])
    Console().print(table)
