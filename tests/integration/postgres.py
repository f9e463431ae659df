"""A real PostgreSQL server for the tests, started in a temporary folder and stopped at the end.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres``
system user (``runuser``). Only 127.0.0.1 on a free port; trust authentication.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

HOW = ("install the PostgreSQL 15 server (initdb, pg_ctl and postgres on PATH, e.g. "
       "apt-get install postgresql-15 and add /usr/lib/postgresql/15/bin to PATH)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str | None:
    """A server program from PATH, else from the Debian/Ubuntu package folder."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a throw-away server; yields the URL of its ``postgres`` database."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip(f"no PostgreSQL server binaries: {HOW}")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="lottery-pg-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as "
                        "(useradd --system postgres)")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    try:
        subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=300 "
                   "-c fsync=off -c synchronous_commit=off")
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w",
                        "-t", "60", "-o", options, "start"], check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr!r} {log[-2000:]}") from exc
    # A terminated test session still stops the server (the finally below runs on SystemExit).
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        signal.signal(signal.SIGTERM, previous)
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str) -> str:
    """A fresh, empty database on the server; its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"
