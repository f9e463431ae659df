"""Start and stop the local test servers (scripted model server, fault proxy) as real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``url`` answers (any status), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server process exited with {proc.returncode} before {url} answered")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@dataclass
class Process:
    """One server process on 127.0.0.1."""

    args: list[str]
    port: int
    health: str
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *self.args, "--port", str(self.port)], cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_http(f"http://127.0.0.1:{self.port}{self.health}", proc=self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def stub_server(delay_s: float = 0.0, port: int | None = None) -> Process:
    """The scripted OpenAI-compatible server (tests/integration/openai_stub.py), not started."""
    return Process(["tests.integration.openai_stub", "--delay", str(delay_s)],
                   port or free_port(), "/health")


@dataclass
class FaultProxy(Process):
    """The fault-injecting proxy (tests/integration/faultproxy.py) in front of ``upstream``."""

    upstream: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def before(cls, upstream: str) -> FaultProxy:
        return cls(["tests.integration.faultproxy", "--upstream", upstream], free_port(),
                   "/_fault/stats", upstream=upstream)

    @property
    def base_url(self) -> str:
        """What a client uses as its OpenAI base URL."""
        return f"{self.url}/v1"

    def arm(self, mode: str, **spec: Any) -> None:
        """Arm a fault (see faultproxy's docstring); ``arm("pass")`` disarms all."""
        httpx.post(f"{self.url}/_fault", content=json.dumps({"mode": mode, **spec}), timeout=5)

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_fault/stats", timeout=5).json()

    def delivered(self, step: str | None = None) -> list[str]:
        """Questions whose completions reached the client, for one step kind or all."""
        return [d["question"] for d in self.stats()["delivered"] if step in (None, d["step"])]
