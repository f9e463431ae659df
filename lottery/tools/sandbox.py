"""Run model-written Python in a separate, confined process.

Model-written code is hostile input. Each program runs in a fresh child process
(:mod:`lottery.tools.sandbox_child`) under independent layers, so that one failing
does not open the machine. The kernel layers need no root:

- **Landlock**: the child reads only the Python installation and system libraries,
  writes only its own temporary directory, cannot bind or connect TCP sockets, and
  cannot signal or reach abstract unix sockets outside itself (:mod:`.confine`).
- **seccomp**: no socket but a unix socket pair, no fork, thread or exec, no ptrace,
  no signal or limit change for another process, no namespaces, mounts, BPF, io_uring.
- **OS limits**: CPU seconds, address space, file size, open files, no core dumps,
  no new process (``RLIMIT_NPROC``); its own process group, killed as a whole; a clean
  environment; a fresh working directory, removed afterwards.
- As root also a fresh unused uid and, with CAP_SYS_ADMIN, an empty network namespace.
- **An in-process guard** (audit hook and import allow-list), defence in depth only:
  CPython cannot contain its own code, so the kernel layers are the boundary.

Strict by default (``LOTTERY_SANDBOX=strict``): where the kernel lacks Landlock or
seccomp, no program runs (:class:`~lottery.errors.SandboxUnavailableError`).
``LOTTERY_SANDBOX=permissive`` runs programs anyway, under whatever layers exist, with
a warning on standard error. ``lottery tools doctor`` shows the layers.

The answer is what the program printed last, or else what the function it defined
(whatever its name) returned, or else a variable named ``answer``, ``result`` or ``ans``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from lottery.errors import ConfigurationError, SandboxError, SandboxUnavailableError, ToolError
from lottery.tools import confine

DEFAULT_IMPORTS: frozenset[str] = frozenset({
    "math", "cmath", "fractions", "decimal", "statistics", "itertools", "functools",
    "collections", "heapq", "bisect", "re", "string", "datetime", "calendar", "random",
    "operator", "typing", "dataclasses", "copy", "enum", "numbers", "z3", "sympy", "numpy",
})
"""Modules a program may import itself (the modules they import internally are not limited)."""

SandboxMode = Literal["strict", "permissive"]
MODES: tuple[str, ...] = ("strict", "permissive")
REQUIRED_LAYERS: tuple[str, ...] = ("landlock_fs", "seccomp")
"""Kernel layers without which strict mode runs no program."""

_CHILD = str(Path(__file__).with_name("sandbox_child.py"))
_RESULT_LIMIT = 1 << 20


def configured_mode() -> SandboxMode:
    """The mode ``LOTTERY_SANDBOX`` asks for (``strict`` when unset).

    Raises:
        ConfigurationError: any other value.
    """
    value = os.environ.get("LOTTERY_SANDBOX", "strict").strip().lower() or "strict"
    if value not in MODES:
        raise ConfigurationError(
            f"LOTTERY_SANDBOX={value!r} is not a sandbox mode; use strict or permissive")
    return value  # type: ignore[return-value]


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """Limits of one sandboxed run."""

    cpu_s: int = 5
    """CPU seconds before the kernel stops the program."""
    wall_s: float = 10.0
    """Wall-clock seconds before the program's process group is killed."""
    memory_mb: int = 1024
    """Address-space limit in MiB."""
    output_chars: int = 64_000
    """Most characters the program may print."""
    file_bytes: int = 1_000_000
    """Largest file the program may write (in its temporary directory)."""
    imports: frozenset[str] = field(default=DEFAULT_IMPORTS)
    """Modules the program may import."""
    mode: SandboxMode = field(default_factory=configured_mode)
    """``strict``: no program runs without the required kernel layers; ``permissive``:
    programs run under whatever layers exist (``LOTTERY_SANDBOX``)."""
    in_process_guard: bool = True
    """``False`` leaves out the audit hook and the import allow-list, so only the kernel
    layers and limits hold (the hostile-program suite shows that they hold alone)."""


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """What a program produced."""

    answer: str
    """What it printed last, or what its function returned."""
    stdout: str
    """Everything it printed (capped)."""
    duration_s: float
    layers: tuple[str, ...] = ()
    """The layers the program ran under (see :func:`doctor`)."""


@functools.cache
def kernel_layers() -> dict[str, Any]:
    """What this kernel offers an unprivileged process (cached; nothing is applied)."""
    return confine.probe()


def ensure_available(mode: SandboxMode | None = None) -> None:
    """Refuse now, before any model call, when programs could not run confined.

    Raises:
        SandboxUnavailableError: strict mode on a kernel without Landlock or seccomp.
        ConfigurationError: ``LOTTERY_SANDBOX`` holds an unknown mode.
    """
    mode = mode or configured_mode()
    layers = kernel_layers()
    missing = tuple(layers["problems"])
    if not missing:
        return
    if mode == "strict":
        raise SandboxUnavailableError(
            "model-written programs cannot be confined here: " + "; ".join(missing)
            + ". Run on Linux 5.13+ with Landlock and seccomp (see `lottery tools doctor`), "
            "or set LOTTERY_SANDBOX=permissive to run them anyway (unsafe)")
    _warn_permissive(missing)


@functools.cache
def _warn_permissive(missing: tuple[str, ...]) -> None:
    print(f"WARNING: LOTTERY_SANDBOX=permissive: model-written programs run WITHOUT kernel "
          f"confinement ({'; '.join(missing)}); they can read your files and reach the network",
          file=sys.stderr)


async def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` in a fresh sandboxed process and return its answer.

    Raises:
        SandboxUnavailableError: strict mode and the kernel cannot confine the program;
            nothing ran.
        SandboxError: the program broke a limit or a rule (time, memory, output,
            forbidden operation or import); the message says which.
        ToolError: the program itself failed (syntax error, exception, no answer).
    """
    limits = limits or SandboxLimits()
    if not isinstance(code, str) or not code.strip():
        raise ToolError("the program is empty")
    if "\x00" in code:
        raise ToolError("the program contains NUL bytes")
    ensure_available(limits.mode)
    start = time.perf_counter()
    try:
        workdir = tempfile.mkdtemp(prefix="lottery-sandbox-")
    except OSError as exc:
        raise SandboxError(f"cannot create the sandbox's directory: {exc.strerror or exc}") from None
    try:
        with open(os.path.join(workdir, "program.py"), "w", encoding="utf-8") as fh:
            fh.write(code)
        uid = _sandbox_uid()
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chown(os.path.join(workdir, "program.py"), uid, uid)
        payload = await _spawn(workdir, limits, uid)
    except OSError as exc:
        raise SandboxError(f"the sandbox could not start the program: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    duration = time.perf_counter() - start
    return _interpret(payload, limits, duration)


async def _spawn(workdir: str, limits: SandboxLimits, uid: int | None) -> dict:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir,
           # native libraries must not start threads before the kernel layers apply
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    config = {"workdir": workdir, "imports": sorted(limits.imports), "mode": limits.mode,
              "output_chars": limits.output_chars, "uid": uid if uid is not None else -1,
              "cpu_s": limits.cpu_s, "memory": limits.memory_mb * 1024 * 1024,
              "file_bytes": limits.file_bytes, "guard": limits.in_process_guard}
    # The child sets its own limits first thing (no preexec_fn: unsafe with threads).
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-B", _CHILD, json.dumps(config),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=workdir, env=env, start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(_read(proc), timeout=limits.wall_s)
    except TimeoutError:
        raise SandboxError(
            f"the program ran longer than the wall-clock limit of {limits.wall_s:g}s "
            "(an endless loop or waiting?); write a program that finishes quickly"
        ) from None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group, stragglers included
        await proc.wait()
    return {"returncode": proc.returncode, "out": out, "err": err}


async def _read(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    async def capped(stream: asyncio.StreamReader | None, limit: int) -> bytes:
        buf = b""
        while stream is not None and len(buf) <= limit:
            chunk = await stream.read(65536)
            if not chunk:
                break
            buf += chunk
        return buf[: limit + 1]

    out, err = await asyncio.gather(capped(proc.stdout, _RESULT_LIMIT), capped(proc.stderr, 4096))
    await proc.wait()
    return out, err


# -- the child's report: a schema, because the program can write to the channel too ---------

class _Ok(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["ok"]
    answer: Annotated[str, Field(max_length=1000)]
    stdout: Annotated[str, Field(max_length=4000)] = ""
    layers: Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=20)] = []


class _Failed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Literal["error", "forbidden", "memory", "output", "recursion", "unavailable"]
    error: Annotated[str, Field(max_length=2000)]
    layers: Annotated[list[Annotated[str, Field(max_length=40)]], Field(max_length=20)] = []


_REPORT: TypeAdapter[_Ok | _Failed] = TypeAdapter(
    Annotated[_Ok | _Failed, Field(discriminator="kind")])


def _report(out: bytes) -> _Ok | _Failed | None:
    """The last line of the child's stdout that is a valid report; a malformed or forged
    one (wrong types, extra keys, nested too deep, too long) is no report at all."""
    for line in reversed(out.splitlines()):
        if line.startswith(b"{"):
            try:
                return _REPORT.validate_json(line)
            except (ValidationError, ValueError, RecursionError):
                raise SandboxError("the sandbox's report was malformed (forged by the program?)") from None
    return None


def _interpret(payload: dict, limits: SandboxLimits, duration: float) -> SandboxResult:
    rc, out, err = payload["returncode"], payload["out"], payload["err"]
    result = _report(out)
    if result is None:
        if rc is not None and rc < 0:
            sig = -rc
            if sig in (signal.SIGXCPU, signal.SIGKILL) and duration >= limits.cpu_s * 0.8:
                raise SandboxError(
                    f"the program used more than the CPU limit of {limits.cpu_s}s; "
                    "write a program that finishes quickly"
                )
            if sig == signal.SIGXFSZ:
                raise SandboxError(
                    f"the program wrote more than {limits.file_bytes} bytes; print less"
                )
            if sig == signal.SIGSYS:
                raise SandboxError("the program made a system call of another architecture "
                                   "(killed by the seccomp filter)")
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else sig
            raise SandboxError(
                f"the program was killed by signal {name} "
                f"(memory limit {limits.memory_mb} MiB or another limit)"
            )
        detail = err.decode("utf-8", "replace").strip().splitlines()
        raise SandboxError(
            "the sandbox produced no result"
            + (f": {detail[-1][:300]}" if detail else f" (exit status {rc})")
        )
    if isinstance(result, _Ok):
        return SandboxResult(result.answer, result.stdout, duration, tuple(result.layers))
    if result.kind == "unavailable":
        raise SandboxUnavailableError(
            result.error + "; set LOTTERY_SANDBOX=permissive to run programs anyway (unsafe)")
    if result.kind in ("forbidden", "memory", "output", "recursion"):
        raise SandboxError(result.error)
    raise ToolError(result.error)


def _sandbox_uid() -> int | None:
    """An unused uid for the child when we are root (so the kernel guards private files)."""
    if os.geteuid() != 0:
        return None
    return 200_000 + secrets.randbelow(60_000)


async def doctor(mode: SandboxMode | None = None) -> dict[str, Any]:
    """What confines a program here: the kernel's offer and the layers a real run got.

    Runs one trivial program (in permissive mode, so the report comes back even where
    strict mode would refuse). ``ready`` says whether strict mode runs programs.
    """
    mode = mode or configured_mode()
    offer = kernel_layers()
    report: dict[str, Any] = {"mode": mode, "user": _user(), "kernel": os.uname().release,
                              **offer}
    try:
        run = await run_python("print(1)", SandboxLimits(mode="permissive", wall_s=30))
        report["layers"] = list(run.layers)
        report["run_error"] = None
    except ToolError as exc:
        report["layers"], report["run_error"] = [], str(exc)
    report["missing"] = [layer for layer in REQUIRED_LAYERS if layer not in report["layers"]]
    report["ready"] = not report["missing"] and not offer["problems"]
    return report


def _user() -> str:
    uid = os.geteuid()
    if uid != 0:
        return f"uid {uid} (not root)"
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            caps = next((ln.split()[1] for ln in fh if ln.startswith("CapEff:")), "0")
    except OSError:
        return "root"
    return "root" if int(caps, 16) & (1 << 21) else "root without CAP_SYS_ADMIN"
