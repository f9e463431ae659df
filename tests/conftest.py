"""Shared test set-up: every test gets its own LOTTERY_HOME and no inherited model settings."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path_factory.mktemp("lottery-home")))
    for var in ("LOTTERY_BASE_URL", "LOTTERY_MODEL", "LOTTERY_MAX_DEPTH", "LOTTERY_MAX_CALLS"):
        monkeypatch.delenv(var, raising=False)
