"""Ctrl-C in ``lottery ask``: a prompt exit 130 that leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.servers import REPO

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("planner_policy")]
"""The scripted model server answers planner decisions: runs follow the planner policy."""


def session_processes(sid: int) -> list[int]:
    """Pids of live processes in session ``sid`` (what a run started and left behind)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state ppid pgrp session ...
            pids.append(int(stat.parent.name))
    return pids


def _ctrl_c_as_in_a_terminal() -> None:
    # A test run started in the background (`cmd &`, nohup) passes SIGINT on as ignored, and
    # Python then leaves it ignored: the CLI would rightly not react. A user's terminal does not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_lottery_ask_promptly_with_exit_130_and_no_orphans(proxy):
    proxy.arm("slow", delay=60.0)  # the model call hangs until interrupted
    cli = subprocess.Popen(
        [sys.executable, "-u", "-m", "lottery.cli", "ask", "What is 2 + 2?", "--base-url", proxy.base_url],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "LOTTERY_REQUEST_TIMEOUT": "120"}, preexec_fn=_ctrl_c_as_in_a_terminal)
    try:
        deadline = time.monotonic() + 60
        while proxy.stats()["requests"] < 1:  # the run is inside a model call
            assert cli.poll() is None, cli.stderr.read() if cli.stderr else ""
            assert time.monotonic() < deadline, "the CLI never called the model server"
            time.sleep(0.05)
        time.sleep(0.3)
        start = time.monotonic()
        cli.send_signal(signal.SIGINT)
        assert cli.stderr is not None
        first = cli.stderr.readline().decode()  # printed once the run has stopped
        stopped = time.monotonic() - start
        rest = cli.stderr.read().decode()
        cli.wait(timeout=30)
        exited = time.monotonic() - start
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130, f"exit {cli.returncode}; stderr: {first + rest}"
    assert first.strip() == "interrupted" and "Traceback" not in rest, first + rest
    assert stopped < 2.0, f"the run took {stopped:.2f}s to stop"
    # Interpreter teardown after the run stopped is slow on a busy 2-core machine (seconds).
    assert exited < 15.0, f"the process took {exited:.2f}s to exit"
    assert session_processes(cli.pid) == [], "the run left processes behind"
