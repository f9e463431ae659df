"""Where local state lives: everything under one directory, ``LOTTERY_HOME``."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir


def lottery_home() -> Path:
    """The root of all local state (database, knowledge bases, models, logs).

    ``LOTTERY_HOME`` when set, else the per-user data directory. Created on use.
    """
    raw = os.environ.get("LOTTERY_HOME") or user_data_dir("lottery", appauthor=False)
    path = Path(raw).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
