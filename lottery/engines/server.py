"""Start, find, check and stop local model servers of any engine; the embedded default.

The engine (:mod:`lottery.engines`: vLLM, llama.cpp) says how to prepare a model and
start its server; this module owns what is the same for all of them. Each server runs
in its own process group, with its output in ``$LOTTERY_HOME/logs/<engine>-<port>.log``.
A small JSON state file per port in ``$LOTTERY_HOME/servers/`` records its pid, port,
model and engine, so ``lottery serve --status``/``--stop`` and :func:`ensure_server`
find it from any process. A state file whose process is gone is stale and is removed
when seen.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress

from lottery.engines.base import ServeOptions, choose_engine
from lottery.errors import ModelServerError, ServerStartError
from lottery.paths import lottery_home
from lottery.process import pid_exists
from lottery.serve.catalogue import DEFAULT_MODEL, resolve
from lottery.serve.prepare import file_lock
from lottery.serve.ui import add_task, last_line, log_tail, stderr_progress, update
from lottery.serve.venv import logs_dir

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
START_TIMEOUT_S = 1200.0
_TITLES = {"vllm": "vLLM", "llama.cpp": "llama.cpp"}
_PROCESS_NAMES = (b"vllm", b"llama-server")
"""What a server process's command line holds, per engine (pid checks)."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A server this project started (the content of its state file)."""

    pid: int
    port: int
    model: str
    host: str = DEFAULT_HOST
    model_path: str = ""
    log: str = ""
    started_at: float = 0.0
    gpu: bool = False
    engine: str = "vllm"
    settings: dict[str, Any] = field(default_factory=dict)
    """What the engine chose (threads, slots, context, dtype…) and why."""

    @property
    def title(self) -> str:
        """The engine's name as people write it (``vLLM``, ``llama.cpp``)."""
        return _TITLES.get(self.engine, self.engine)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``…/v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the URL."""
        return {**asdict(self), "base_url": self.base_url}


def servers_dir() -> Path:
    """Where the state files of running servers live."""
    path = lottery_home() / "servers"
    path.mkdir(parents=True, exist_ok=True)
    return path


def state_path(port: int) -> Path:
    """The state file of the server on ``port``."""
    return servers_dir() / f"{port}.json"


def read_state(path: Path) -> ServerInfo | None:
    """The server a state file describes; ``None`` for an unreadable file."""
    try:
        data = json.loads(path.read_text())
        return ServerInfo(**{k: data[k] for k in ServerInfo.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_state(info: ServerInfo) -> None:
    """Record a server (atomically, so readers never see half a file)."""
    path = state_path(info.port)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2))
    os.replace(tmp, path)


def known_servers() -> list[ServerInfo]:
    """Servers whose process is alive; stale or unreadable state files are removed."""
    found = []
    for path in sorted(servers_dir().glob("*.json")):
        info = read_state(path)
        if info is None or not pid_alive(info.pid):
            path.unlink(missing_ok=True)
            continue
        found.append(info)
    return found


def pid_alive(pid: int) -> bool:
    """True when ``pid`` is a live (not zombie) model-server process of any engine."""
    _reap(pid)
    if not pid_exists(pid):
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no /proc (macOS): trust the signal check
    try:
        if proc.joinpath("stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
        cmdline = proc.joinpath("cmdline").read_bytes()
        return any(name in cmdline for name in _PROCESS_NAMES)
    except (OSError, IndexError):
        return False


def served_models(base_url: str, timeout: float = 2.0) -> list[str] | None:
    """The model ids a server lists at ``/v1/models``; ``None`` when it does not answer."""
    try:
        reply = httpx.get(f"{base_url.rstrip('/')}/models", timeout=timeout)
        reply.raise_for_status()
        return [str(m.get("id")) for m in reply.json().get("data", [])]
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def engine_of(base_url: str | None) -> str:
    """The engine of the local server at ``base_url`` (``external`` for any other server;
    without a URL, the engine a run would start: ``LOTTERY_ENGINE`` or vLLM)."""
    if not base_url:
        return choose_engine()[0].name
    wanted = base_url.rstrip("/")
    for info in known_servers():
        if info.base_url == wanted or wanted.replace("localhost", DEFAULT_HOST) == info.base_url:
            return info.engine
    return "external"


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_status() -> list[dict[str, Any]]:
    """Every known server with ``status`` ``ready`` or ``starting`` (``lottery serve --status``)."""
    out = []
    for info in known_servers():
        models = served_models(info.base_url)
        out.append({**info.to_dict(), "status": "ready" if models else "starting",
                    "uptime_s": round(time.time() - info.started_at, 1)})
    return out


def start_server(
    model: str = DEFAULT_MODEL, *, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
    progress: Progress | None = None, timeout: float | None = None,
    kv_cache_gib: float | None = None, max_model_len: int = 4096, engine: str | None = None,
) -> ServerInfo:
    """Prepare ``model`` for ``engine`` if needed, start its server and wait until it answers.

    ``engine``: ``vllm``, ``llama.cpp`` or ``auto`` (``LOTTERY_ENGINE`` when ``None``,
    else vLLM). The server keeps running after this returns (stop it with
    :func:`stop_server`).

    Raises:
        ConfigurationError: an unknown engine, or a model the engine cannot serve.
        UnknownModelError: the model name is unknown.
        ModelPrepareError: preparing the model or the engine failed.
        ServerStartError: the port is taken, memory is short, or the server died
            or did not answer in time (its log's tail is in the message).
    """
    chosen, reason = choose_engine(engine)
    ref = resolve(model)
    _check_port(host, port)
    target = chosen.ensure(ref.name, progress)
    _check_port(host, port)  # again: preparing took a while
    launch = chosen.launch(ref.name, target, ServeOptions(
        host=host, port=port, max_model_len=max_model_len, kv_cache_gib=kv_cache_gib))
    log = logs_dir() / f"{chosen.name.replace('.', '')}-{port}.log"
    with log.open("wb") as out:
        out.write(f"# engine {chosen.name} ({reason}); settings {json.dumps(launch.settings)}\n"
                  f"$ {shlex.join(launch.command)}\n".encode())
        out.flush()
        proc = subprocess.Popen(launch.command, stdout=out, stderr=subprocess.STDOUT,
                                env=launch.env, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    info = ServerInfo(pid=proc.pid, port=port, model=ref.name, host=host,
                      model_path=str(target), log=str(log), started_at=time.time(),
                      gpu=launch.gpu, engine=chosen.name,
                      settings={**launch.settings, "engine_reason": reason})
    write_state(info)
    try:
        _wait_ready(info, proc, progress, _start_timeout(timeout))
    except BaseException:
        stop_server(port)
        raise
    return info


def stop_server(port: int | None = None, *, grace_s: float = 30.0) -> list[ServerInfo]:
    """Stop the server on ``port`` (every known server when ``None``); return those stopped."""
    targets = [s for s in known_servers() if port is None or s.port == port]
    if port is not None and not targets:
        # A server that died during start-up still has a state file to clear.
        state_path(port).unlink(missing_ok=True)
    for info in targets:
        _signal_group(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for info in targets:
        while pid_alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(info.pid):
            _signal_group(info.pid, signal.SIGKILL)
            time.sleep(0.5)
            _reap(info.pid)
        state_path(info.port).unlink(missing_ok=True)
    return targets


def find_server(model: str, *, engine: str | None = None,
                progress: Progress | None = None) -> ServerInfo | None:
    """A running server of ``model`` (of ``engine`` when given) from the state files, once
    it answers.

    A live server that does not answer yet (still starting, or too busy to
    answer at once) is waited for rather than duplicated.
    """
    for info in known_servers():
        if info.model != model or engine not in (None, info.engine):
            continue
        if model in (served_models(info.base_url) or []):
            return info
        try:
            _wait_ready(info, None, progress, _start_timeout(None))
        except ServerStartError:
            continue
        return info
    return None


def ensure_server(model: str = DEFAULT_MODEL, *, engine: str | None = None,
                  announce: bool = True) -> str:
    """The base URL of a local server for ``model``: a running one, or one started now.

    This is the embedded default behind ``lottery ask`` and ``solve()`` when no
    ``base_url`` is configured. ``engine`` (else ``LOTTERY_ENGINE``) picks the engine of a
    server it starts; when one is asked for, only a running server of that engine is
    reused. A server it starts keeps running for the next run (``lottery serve --stop``
    stops it). When ``announce`` is set it says so on stderr, with progress bars.
    """
    resolve(model)  # unknown names fail before any lock or download
    asked = engine or os.environ.get("LOTTERY_ENGINE") or None
    chosen, reason = choose_engine(asked)  # an unknown engine fails here, in one line
    console = Console(stderr=True)
    with file_lock(servers_dir() / ".start.lock"):
        found = find_server(model, engine=chosen.name if asked else None)
        if found is not None:
            return found.base_url
        default_url = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/v1"
        if not asked and model in (served_models(default_url, timeout=1.0) or []):
            return default_url
        port = DEFAULT_PORT if port_free(DEFAULT_HOST, DEFAULT_PORT) else free_port()
        title = _TITLES[chosen.name]
        if announce:
            first = ("builds llama.cpp's server once per machine (10-35 min on 2 cores) and "
                     "fetches the model; later starts take seconds"
                     if chosen.name == "llama.cpp" else
                     "sets up the vLLM environment and the model (several minutes); a CPU "
                     "server then needs ~2 min to load and compile")
            console.print(
                f"[bold]No model server configured (LOTTERY_BASE_URL is unset): starting a local "
                f"{title} server for {model} on port {port} ({reason}).[/] The first start "
                f"{first}. It keeps running for later runs; stop it with "
                "`lottery serve --stop`.")
        with stderr_progress() if announce else contextlib.nullcontext() as progress:
            info = start_server(model, port=port, progress=progress, engine=chosen.name)
        if announce:
            console.print(f"{title} server ready at {info.base_url} (log: {info.log})")
        return info.base_url


def wait_foreground(info: ServerInfo) -> int:
    """Block while the server runs (``lottery serve`` without ``--detach``); Ctrl-C stops it."""
    try:
        while pid_alive(info.pid):
            time.sleep(1.0)
    except KeyboardInterrupt:
        stop_server(info.port)
        return 0
    state_path(info.port).unlink(missing_ok=True)
    raise ModelServerError(
        f"the {info.title} server on port {info.port} exited; log tail ({info.log}):\n"
        f"{log_tail(Path(info.log), 10)}")


def _start_timeout(timeout: float | None) -> float:
    return timeout or float(os.environ.get("LOTTERY_SERVER_START_TIMEOUT") or START_TIMEOUT_S)


def _wait_ready(info: ServerInfo, proc: subprocess.Popen[bytes] | None,
                progress: Progress | None, timeout: float) -> None:
    """Wait until the server lists its model; ``proc`` is ours, else watch the pid."""
    task = add_task(progress, f"starting {info.title} server for {info.model}", None)
    deadline = time.monotonic() + timeout
    log = Path(info.log)
    while True:
        if proc is not None:
            code = proc.poll()
        else:
            code = None if pid_alive(info.pid) else "unknown"
        if code is not None:
            raise ServerStartError(
                f"the {info.title} server for {info.model} exited with status {code} while "
                f"starting; "
                f"log tail ({log}):\n{log_tail(log, 12)}")
        if info.model in (served_models(info.base_url, timeout=2.0) or []):
            update(progress, task, description=f"{info.title} server ready at {info.base_url}",
                   total=1, completed=1)
            return
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"the {info.title} server for {info.model} did not answer within {timeout:.0f} s "
                f"(raise LOTTERY_SERVER_START_TIMEOUT); log tail ({log}):\n{log_tail(log, 8)}")
        update(progress, task, description=f"{info.title}: {last_line(log, 60) or 'starting'}")
        time.sleep(1.0)


def _check_port(host: str, port: int) -> None:
    if port_free(host, port):
        return
    mine = next((s for s in known_servers() if s.port == port), None)
    if mine is not None:
        raise ServerStartError(
            f"port {port} is already used by a lottery server for {mine.model} "
            f"(pid {mine.pid}); stop it with `lottery serve --stop --port {port}` or choose "
            "another --port")
    raise ServerStartError(
        f"port {port} on {host} is taken by another program; choose another with --port")


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the server leads its own group: its engine processes go too
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own exited child (else it lingers as a zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)

