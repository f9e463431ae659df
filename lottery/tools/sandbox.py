"""Run model-written Python in a separate, locked-down process.

Model-written code is hostile input. Each program runs in a fresh child
process with several independent layers, so that one failing does not open
the machine:

- **OS limits** (``setrlimit`` in the child before ``exec``): CPU seconds,
  address space (memory), file size, open files, no core dumps, and
  ``RLIMIT_NPROC`` so the child cannot fork or start threads.
- **A throw-away user** when the parent runs as root: the child drops to an
  unused uid/gid (no home directory, no group memberships), so the kernel
  itself refuses the user's home and other private files.
- **No network**: as root the child moves into a new, empty network
  namespace (``unshare(CLONE_NEWNET)``) before dropping privileges.
- **A guard inside the interpreter** (``sys.addaudithook``): blocks sockets,
  subprocesses, ``os.system``, ``fork``/``exec``, signals, file-system
  changes, opening files outside the temporary directory (reads of the Python
  installation excepted), loading native libraries and raw memory access; an
  import allow-list applies to the program's own imports.
- **Wall-clock limit**: the parent kills the child's whole process group.
- **Output limit**: the program's prints are capped; anything written to the
  raw file descriptors lands in a size-limited file that is thrown away.
- **A fresh working directory**, removed afterwards.

The answer is what the program printed last, or else what the function it
defined (whatever its name) returned, or else a variable named ``answer``,
``result`` or ``ans``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field

from lottery.errors import SandboxError, ToolError

DEFAULT_IMPORTS: frozenset[str] = frozenset({
    "math", "cmath", "fractions", "decimal", "statistics", "itertools", "functools",
    "collections", "heapq", "bisect", "re", "string", "datetime", "calendar", "random",
    "operator", "typing", "dataclasses", "copy", "enum", "numbers", "z3", "sympy", "numpy",
})
"""Modules a program may import itself (the modules they import internally are not limited)."""

_RESULT_LIMIT = 1 << 20


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


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """What a program produced."""

    answer: str
    """What it printed last, or what its function returned."""
    stdout: str
    """Everything it printed (capped)."""
    duration_s: float


async def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` in a fresh sandboxed process and return its answer.

    Raises:
        SandboxError: the program broke a limit or a rule (time, memory, output,
            forbidden operation or import); the message says which.
        ToolError: the program itself failed (syntax error, exception, no answer).
    """
    limits = limits or SandboxLimits()
    if not isinstance(code, str) or not code.strip():
        raise ToolError("the program is empty")
    if "\x00" in code:
        raise ToolError("the program contains NUL bytes")
    start = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="lottery-sandbox-")
    try:
        with open(os.path.join(workdir, "program.py"), "w", encoding="utf-8") as fh:
            fh.write(code)
        uid = _sandbox_uid()
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chown(os.path.join(workdir, "program.py"), uid, uid)
        payload = await _spawn(workdir, limits, uid)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    duration = time.perf_counter() - start
    return _interpret(payload, limits, duration)


async def _spawn(workdir: str, limits: SandboxLimits, uid: int | None) -> dict:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}
    # The child sets its own limits first thing (no preexec_fn: unsafe with threads).
    args = [sys.executable, "-I", "-B", "-c", _BOOT, workdir, ",".join(sorted(limits.imports)),
            str(limits.output_chars), str(uid if uid is not None else -1), str(limits.cpu_s),
            str(limits.memory_mb * 1024 * 1024), str(limits.file_bytes)]
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
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


def _interpret(payload: dict, limits: SandboxLimits, duration: float) -> SandboxResult:
    rc, out, err = payload["returncode"], payload["out"], payload["err"]
    result = None
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                result = json.loads(line)
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
            raise SandboxError(
                f"the program was killed by signal {signal.Signals(sig).name} "
                f"(memory limit {limits.memory_mb} MiB or another limit)"
            )
        detail = err.decode("utf-8", "replace").strip().splitlines()
        raise SandboxError(
            "the sandbox produced no result"
            + (f": {detail[-1][:300]}" if detail else f" (exit status {rc})")
        )
    kind = result.get("kind")
    if kind == "ok":
        return SandboxResult(result["answer"], result.get("stdout", ""), duration)
    message = result.get("error", "unknown failure")
    if kind in ("forbidden", "memory", "output", "recursion"):
        raise SandboxError(message)
    raise ToolError(message)


# -- the child side ---------------------------------------------------------------------

def _sandbox_uid() -> int | None:
    """An unused uid for the child when we are root (so the kernel guards private files)."""
    if os.geteuid() != 0:
        return None
    return 200_000 + secrets.randbelow(60_000)


_BOOT = r'''
import builtins, io, json, os, sys, sysconfig, types
import importlib, resource
workdir, allowed, cap = sys.argv[1], frozenset(sys.argv[2].split(",")), int(sys.argv[3])
uid, cpu, memory, fsize = (int(a) for a in sys.argv[4:8])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
if uid >= 0:
    # Root: an empty network namespace (no interfaces) before dropping privileges;
    # best effort, the audit hook below blocks sockets anyway.
    import ctypes, ctypes.util
    try:
        ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).unshare(0x40000000)
    except (OSError, AttributeError, TypeError):
        pass
else:
    # Not root: this user already runs processes, so a limit of 0 refuses any fork.
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
with open(os.path.join(workdir, "program.py"), encoding="utf-8") as fh:
    source = fh.read()
# Import what the program may import now: the interpreter may live where the
# unprivileged user below cannot read, and native libraries load only now.
for mod in sorted(allowed):
    if mod in ("z3", "sympy", "numpy") and mod not in source:
        continue
    try:
        importlib.import_module(mod)
    except ImportError:
        pass
paths = sysconfig.get_paths()
readable = tuple({os.path.realpath(paths[k]) + os.sep for k in
                  ("stdlib", "platstdlib", "purelib", "platlib") if k in paths})
if uid >= 0:
    # Root: become a fresh, unused user. The kernel then guards private files,
    # and a fresh uid owns exactly this process, so no fork or thread can start.
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))
home = os.path.realpath(workdir) + os.sep
violations = []

class Forbidden(PermissionError):
    pass

class OutputLimit(BaseException):
    pass

def deny(msg):
    violations.append(msg)
    raise Forbidden("sandbox: " + msg)

BLOCKED = ("subprocess.", "os.system", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn",
           "os.spawn", "os.kill", "os.killpg", "os.chdir", "os.chmod", "os.chown", "os.link",
           "os.symlink", "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.truncate",
           "os.putenv", "os.unsetenv", "os.setxattr", "os.removexattr", "os.chflags",
           "shutil.", "pty.", "socket.", "ctypes.dlopen", "ctypes.dlsym",
           "ctypes.string_at", "ctypes.wstring_at", "ctypes.PyObj_FromPtr", "ctypes.addressof",
           "gc.get_objects", "gc.get_referrers", "gc.get_referents", "code.__new__",
           "mmap.", "resource.", "sys._current_frames", "sys.remote_exec", "webbrowser.",
           "urllib.", "http.", "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.",
           "telnetlib.", "signal.")

def inside(path, roots):
    if isinstance(path, int):
        return True  # an already open descriptor (stdin/stdout/stderr)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    real = os.path.realpath(os.path.join(home, str(path)))
    return any((real + os.sep).startswith(r) for r in roots)

BLOCKED_EXACT = ("ctypes.cdata",)  # reading memory at an address (z3 uses cdata/buffer)

def guard(event, args):
    if event.startswith(BLOCKED) or event in BLOCKED_EXACT:
        deny(event + " is not allowed")
    if event == "import":  # any import route (importlib too) of a module not loaded yet
        name = str(args[0])
        if name.split(".")[0] not in allowed and name not in sys.modules:
            deny(f"import of {name.split('.')[0]!r} is not allowed")
    elif event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if path is None:
            return
        if writing and not inside(path, (home,)):
            deny(f"writing {path!r} is not allowed (only the working directory)")
        if not writing and not inside(path, (home,) + readable):
            deny(f"reading {path!r} is not allowed (only the working directory)")
    elif event in ("os.listdir", "os.scandir"):
        if args and args[0] is not None and not inside(args[0], (home,) + readable):
            deny(f"listing {args[0]!r} is not allowed")

real_import = builtins.__import__

def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and (globals or {}).get("__name__") == "__main__":
        top = name.split(".")[0]
        if top not in allowed:
            violations.append(f"import of {top!r} is not allowed")
            raise ImportError(f"sandbox: import of {top!r} is not allowed "
                              f"(allowed: {', '.join(sorted(allowed))})")
    return real_import(name, globals, locals, fromlist, level)

class Capped(io.TextIOBase):
    def __init__(self):
        self.parts, self.size = [], 0
    def writable(self):
        return True
    def write(self, s):
        self.size += len(s)
        if self.size > cap:
            raise OutputLimit()
        self.parts.append(s)
        return len(s)
    def text(self):
        return "".join(self.parts)

result_fd = os.dup(1)
sink = os.open(os.path.join(workdir, ".raw-output"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.dup2(sink, 1)
os.dup2(sink, 2)
out = Capped()
sys.stdout = sys.stderr = out
sys.stdin = io.StringIO("")
sys.setrecursionlimit(2000)

def fmt(value):
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        r = round(value, 6)
        return str(int(r)) if r == int(r) else repr(r)
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return fmt(value[0])
    return str(value)

def answer_of(ns, printed):
    lines = [ln.strip() for ln in printed.splitlines() if ln.strip()]
    if lines:
        return lines[-1]
    funcs = [v for v in ns.values() if isinstance(v, types.FunctionType)
             and v.__code__.co_filename == "program.py"
             and v.__code__.co_argcount - len(v.__defaults__ or ()) == 0
             and not v.__code__.co_kwonlyargcount]
    for fn in reversed(funcs):
        value = fn()
        later = [ln.strip() for ln in out.text().splitlines() if ln.strip()]
        if value is not None:
            return fmt(value)
        if later:
            return later[-1]
    for name in ("answer", "result", "ans", "solution"):
        if name in ns and not callable(ns[name]):
            return fmt(ns[name])
    return None

def finish(payload):
    data = (json.dumps(payload, default=str) + "\n").encode()
    os.write(result_fd, data)
    os._exit(0)

ns = {"__name__": "__main__", "__builtins__": builtins}
try:
    code = compile(source, "program.py", "exec")
except SyntaxError as exc:
    finish({"kind": "error", "error": f"SyntaxError: {exc.msg} (line {exc.lineno})"})
builtins.__import__ = guarded_import
sys.addaudithook(guard)

def failure(exc):
    if violations:
        return {"kind": "forbidden", "error": "forbidden: " + violations[0]}
    if isinstance(exc, OutputLimit) or (isinstance(exc, OSError) and exc.errno == 27):
        return {"kind": "output", "error": f"the program printed or wrote more than the limit "
                f"({cap} characters); print only the answer"}
    if isinstance(exc, MemoryError):
        return {"kind": "memory", "error": "the program ran out of memory (memory limit); "
                "use less memory"}
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] not in allowed:
        return {"kind": "forbidden", "error": f"forbidden: import of "
                f"{(exc.name or '').split('.')[0]!r} is not allowed"}
    if isinstance(exc, RecursionError):
        return {"kind": "recursion", "error": "the program recursed too deeply"}
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "program.py":
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" (line {line})" if line else ""
    return {"kind": "error", "error": f"{type(exc).__name__}: {str(exc)[:300]}{where}"}

try:
    exec(code, ns)
    answer = answer_of(ns, out.text())
except BaseException as exc:
    finish(failure(exc))
if violations:
    finish({"kind": "forbidden", "error": "forbidden: " + violations[0]})
if answer is None:
    finish({"kind": "error", "error": "the program printed nothing and returned nothing; "
            "print the answer or return it from a function"})
finish({"kind": "ok", "answer": answer[:1000], "stdout": out.text()[-4000:]})
'''
