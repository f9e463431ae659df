"""Whether a process id is in use on this machine (one check for every layer)."""

from __future__ import annotations

import os


def pid_exists(pid: int) -> bool:
    """True when a process with ``pid`` exists (also one of another user's: signal 0 is
    refused with EPERM, which still proves it exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
