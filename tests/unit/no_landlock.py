"""Run a command as on a kernel without Landlock: ``python -m tests.unit.no_landlock CMD...``.

Its ``landlock_*`` system calls fail with ENOSYS, as they do where the kernel was built
without Landlock or boots without it in ``lsm=``; the seccomp filter is inherited by
everything the command starts.
"""

from __future__ import annotations

import errno
import os
import sys

from lottery.tools import confine

if __name__ == "__main__":
    confine.install_filter(confine.errno_filter(
        ("landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self"), errno.ENOSYS))
    os.execvp(sys.argv[1], sys.argv[1:])
