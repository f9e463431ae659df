"""Progress bars on standard error, shared by model preparation and server start-up."""

from __future__ import annotations

import re
import time
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _AmountColumn(ProgressColumn):
    """Bytes for byte tasks (``unit="bytes"``), 'n/m' for counted steps, nothing otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes, self._count = DownloadColumn(), MofNCompleteColumn()

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        if task.fields.get("unit") == "bytes":
            return self._bytes.render(task)
        return self._count.render(task)


def stderr_progress() -> Progress:
    """A progress display on standard error (stdout stays clean for results and JSON)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        _AmountColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )


PLAIN_EVERY_S = 10.0
"""Where standard error is not a terminal (a log file, CI), the bars cannot redraw: each
step's description is printed as a plain line instead, at most this often per task (and
always when the step finishes), so a long first start never looks stuck."""
_plain_last: dict[tuple[int, TaskID], tuple[str, float]] = {}


def add_task(
    progress: Progress | None, description: str, total: float | None = None, *, unit: str = ""
) -> TaskID | None:
    """A task on ``progress`` (``unit="bytes"`` shows sizes), or nothing without a display."""
    if progress is None:
        return None
    task = progress.add_task(description, total=total, unit=unit)
    _plain_line(progress, task, description, force=True)
    return task


def update(progress: Progress | None, task: TaskID | None, **kwargs: object) -> None:
    """Update a task made by :func:`add_task` (a no-op without a display)."""
    if progress is not None and task is not None:
        progress.update(task, **kwargs)  # type: ignore[arg-type]
        current = progress.tasks[[t.id for t in progress.tasks].index(task)]
        _plain_line(progress, task, current.description,
                    force=current.total is not None and current.completed >= current.total)


def _plain_line(progress: Progress, task: TaskID, description: str, *, force: bool) -> None:
    if progress.console.is_terminal or progress.disable:
        return
    key = (id(progress), task)
    last, when = _plain_last.get(key, ("", 0.0))
    now = time.monotonic()
    if description != last and (force or now - when >= PLAIN_EVERY_S):
        _plain_last[key] = (description, now)
        progress.console.print(f"{time.strftime('%H:%M:%S')} {_ANSI.sub('', description)}",
                               highlight=False, markup=False, soft_wrap=True)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, without terminal colour codes ('' if unreadable)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(_ANSI.sub("", ln) for ln in text.splitlines()[-lines:])


def last_line(path: Path, width: int = 70) -> str:
    """The last non-empty line of a log, shortened, for a progress description."""
    tail = [ln.strip() for ln in log_tail(path, 5).splitlines() if ln.strip()]
    if not tail:
        return ""
    line = tail[-1]
    return line if len(line) <= width else line[: width - 1] + "…"
