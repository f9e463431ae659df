"""Strict by default: where the kernel cannot confine a program, none runs, and the
user is told why in one line; the opt-out runs them with a loud warning.

A kernel without Landlock is simulated for real: the command runs under a seccomp
filter that fails every ``landlock_*`` system call with ENOSYS (``no_landlock.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lottery.tools import confine

REPO = Path(__file__).resolve().parents[2]
LOTTERY = shutil.which("lottery") or str(Path(sys.executable).with_name("lottery"))
DEAD_SERVER = "http://127.0.0.1:9/v1"  # nothing listens on the discard port

pytestmark = pytest.mark.skipif(not confine.probe()["seccomp"],
                                reason="simulating a kernel needs seccomp")


def _without_landlock(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "LOTTERY_HOME": env.pop("home"), **env}
    return subprocess.run([sys.executable, "-m", "tests.unit.no_landlock", *args], cwd=REPO,
                          env=full_env, capture_output=True, text=True, timeout=300, check=False)


def test_doctor_reports_the_missing_layer_and_fails(tmp_path):
    proc = _without_landlock(LOTTERY, "tools", "doctor", "--json", home=str(tmp_path))
    report = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert report["landlock"] is False and report["ready"] is False
    assert "landlock_fs" in report["missing"]
    assert "landlock_fs" not in report["layers"] and "seccomp" in report["layers"]


WORD_PROBLEM = "Ann has 17 boxes of 3 pens. How many pens does she have?"
"""Not bare arithmetic (the calculator answers that without the model)."""


def test_ask_refuses_in_one_line_before_any_model_call(tmp_path):
    proc = _without_landlock(LOTTERY, "ask", WORD_PROBLEM, "--base-url", DEAD_SERVER,
                             "--model", "m", home=str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Landlock" in lines[0] and "LOTTERY_SANDBOX=permissive" in lines[0]


def test_the_opt_out_warns_loudly_and_goes_on(tmp_path):
    proc = _without_landlock(LOTTERY, "ask", WORD_PROBLEM, "--base-url", DEAD_SERVER,
                             "--model", "m", "--max-calls", "2", home=str(tmp_path),
                             LOTTERY_SANDBOX="permissive")
    assert "WARNING" in proc.stderr and "WITHOUT kernel confinement" in proc.stderr
    # it went past the sandbox to the (dead) model server
    assert "Landlock" not in proc.stderr.split("WARNING")[0]
    assert f"model server at {DEAD_SERVER} failed" in proc.stderr


def test_the_child_refuses_by_itself_when_a_layer_fails(tmp_path):
    # The parent's check is bypassed: the child must still refuse before running the program.
    script = (
        "import asyncio\nfrom lottery.tools import sandbox\n"
        "sandbox.kernel_layers = lambda: {'problems': []}\n"
        "try:\n"
        "    asyncio.run(sandbox.run_python(\"open('ran', 'w'); print(1)\"))\n"
        "except sandbox.SandboxUnavailableError as exc:\n"
        "    print('refused:', exc)\n")
    proc = _without_landlock(sys.executable, "-c", script, home=str(tmp_path))
    assert proc.stdout.startswith("refused:"), proc.stdout + proc.stderr
    assert "Landlock" in proc.stdout


def test_an_unknown_sandbox_mode_is_one_line(tmp_path):
    proc = subprocess.run([LOTTERY, "tools", "doctor"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "LOTTERY_SANDBOX": "off", "LOTTERY_HOME": str(tmp_path)},
                          timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "LOTTERY_SANDBOX='off'" in proc.stderr
