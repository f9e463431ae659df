"""Shared test set-up: every test gets its own LOTTERY_HOME and no inherited model settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path_factory.mktemp("lottery-home")))
    for var in ("LOTTERY_BASE_URL", "LOTTERY_MODEL", "LOTTERY_MAX_DEPTH", "LOTTERY_MAX_CALLS",
                "LOTTERY_POLICY", "LOTTERY_DELEGATE_MODEL", "LOTTERY_DELEGATE_BASE_URL",
                "LOTTERY_REUSE_MIN_CONFIDENCE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def planner_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs follow the ``planner`` policy (the model planner decides every step, no checks):
    for tests of the planner's own graph logic, whose scripts answer planner decisions."""
    monkeypatch.setenv("LOTTERY_POLICY", "planner")


@pytest.fixture
def reuse_unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory M serves any answer, checked or not (``reuse_min_confidence`` 0): for tests of
    the reuse machinery under the planner policy, whose answers carry no check."""
    monkeypatch.setenv("LOTTERY_REUSE_MIN_CONFIDENCE", "0")
