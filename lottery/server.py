"""The graph server process: telemetry from the ``OTEL_*`` variables, then Aegra serving the graphs.

    python -m lottery.server [--host 0.0.0.0] [--port 8000]

Aegra (the ``server`` extra) serves the graphs of ``langgraph.json``
(``AEGRA_CONFIG``) with the LangGraph Platform API that ``langgraph-sdk`` and
Studio speak; threads, runs, checkpoints and the store live in PostgreSQL
(``DATABASE_URL``). The framework's traces and metrics go where the standard
``OTEL_*`` variables say (:mod:`lottery.telemetry`): this start-up code installs
those providers as the process's global ones, which the graphs then use.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import NoReturn


def main(argv: list[str] | None = None) -> None:
    """Run the server until it is stopped; flush telemetry on the way out."""
    parser = argparse.ArgumentParser(prog="python -m lottery.server",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    args = parser.parse_args(argv)
    try:
        import aegra_api  # noqa: F401 - checked here for a clear message
        import uvicorn
    except ImportError:
        raise SystemExit(
            "the graph server needs the server extra: pip install 'lottery-llm[server]'"
        ) from None
    from lottery import auth
    from lottery.errors import LotteryError
    from lottery.telemetry import setup_from_env

    try:
        keys = auth.current_keys()
    except LotteryError as exc:
        _refuse(str(exc))
    if not keys and not auth.dev_mode_meant():
        _refuse(f"no API keys: set {auth.KEYS_ENV}=user:key[,user:key] or {auth.KEYS_FILE_ENV}, "
                f"or {auth.MODE_ENV}=off for a server no one else can reach")
    try:
        telemetry = setup_from_env()
    except LotteryError as exc:
        raise SystemExit(f"error: {exc}") from None
    telemetry.install_global()
    # uvicorn re-raises SIGTERM once it has shut down; with the default handler that ends
    # the process before the finally below, and the buffered spans were lost
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run("aegra_api.main:app", host=args.host, port=args.port, proxy_headers=True)
    finally:
        telemetry.shutdown()


def _exit_on_signal(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


def _refuse(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
