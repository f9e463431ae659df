"""External memory M in SQL: runs, their problem trees, tool calls, memory entries, checkpoints.

One database holds everything a run leaves behind:

- ``lottery_runs``, ``lottery_problems``, ``lottery_tool_calls``: the record of
  each run and its problem tree (written with SQLAlchemy 2, versioned schema in
  ``lottery_schema`` that upgrades in place, see :data:`MIGRATIONS`);
- ``store``: memory entries (namespace/key -> JSON value), LangGraph's own
  ``AsyncSqliteStore`` / ``AsyncPostgresStore``, so a graph served by
  ``langgraph dev`` or a LangGraph server shares memory M (see :func:`generate_store`);
- ``checkpoints`` / ``writes``: LangGraph's own checkpointers
  (``AsyncSqliteSaver`` / ``AsyncPostgresSaver``), which make a run resumable.

SQLite (a file under ``LOTTERY_HOME``) is the default: WAL journal, a 30 s
busy timeout and ``BEGIN IMMEDIATE`` write transactions, so concurrent runs
wait for each other instead of failing with "database is locked". PostgreSQL
is chosen with ``LOTTERY_DATABASE_URL=postgresql+psycopg://user@host/db``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore
from langgraph.store.sqlite.aio import AsyncSqliteStore
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from lottery.errors import (
    DatabaseUnavailableError,
    DatabaseURLError,
    RunConflictError,
    RunNotFoundError,
    SchemaVersionError,
    StoreError,
)
from lottery.paths import lottery_home
from lottery.process import pid_exists
from lottery.sanitize import json_safe

SCHEMA_VERSION = 2
"""Version of the ``lottery_*`` tables this code writes; older databases are upgraded."""

BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another before giving up."""

LEASE_S = 120.0
"""A run whose writer on another host has not written for this long may be taken over."""

RUN_STATUSES = ("running", "done", "failed", "interrupted")
"""What a run record's ``status`` can be (``interrupted``: stopped by Ctrl-C or a signal)."""

metadata = sa.MetaData()

runs_table = sa.Table(
    "lottery_runs", metadata,
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("strategy", sa.String(40), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("knowledge_base", sa.String(200), nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("answer", sa.Text),
    sa.Column("best_effort", sa.Boolean, nullable=False, default=False),
    sa.Column("stop_reason", sa.String(200)),
    sa.Column("error", sa.Text),
    sa.Column("calls", sa.Integer, nullable=False, default=0),
    sa.Column("prompt_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("completion_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("reuse_hits", sa.Integer, nullable=False, default=0),
    sa.Column("saved_calls", sa.Integer, nullable=False, default=0),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("owner", sa.String(300)),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
)

problems_table = sa.Table(
    "lottery_problems", metadata,
    sa.Column("run_id", sa.String(200), sa.ForeignKey("lottery_runs.run_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("problem_id", sa.String(200), primary_key=True),
    sa.Column("parent", sa.String(200)),
    sa.Column("depth", sa.Integer, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("template", sa.Text),
    sa.Column("depends_on", sa.JSON),
    sa.Column("decision", sa.String(20)),
    sa.Column("reason", sa.Text),
    sa.Column("query", sa.Text),
    sa.Column("tool_call", sa.JSON),
    sa.Column("evidence", sa.JSON),
    sa.Column("children", sa.JSON),
    sa.Column("answer", sa.Text),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("calls", sa.Integer, nullable=False, default=0),
    sa.Column("prompt_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("completion_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("reused_from", sa.JSON),
    sa.Column("extra", sa.JSON),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
)

tool_calls_table = sa.Table(
    "lottery_tool_calls", metadata,
    sa.Column("run_id", sa.String(200), sa.ForeignKey("lottery_runs.run_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("problem_id", sa.String(200), primary_key=True),
    sa.Column("tool", sa.String(200), nullable=False),
    sa.Column("args", sa.JSON),
    sa.Column("ok", sa.Boolean),
    sa.Column("result", sa.JSON),
    sa.Column("created_at", sa.Float, nullable=False),
)

schema_table = sa.Table(
    "lottery_schema", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),
)

_V2_COLUMNS = {
    "lottery_runs": ["reuse_hits", "saved_calls"],
    "lottery_problems": ["reused_from"],
}


def _v1_metadata() -> sa.MetaData:
    """The tables as version 1 created them: today's, less the columns version 2 added."""
    v1 = sa.MetaData()
    for table in metadata.sorted_tables:
        dropped = _V2_COLUMNS.get(table.name, [])
        sa.Table(table.name, v1, *(c._copy() for c in table.columns if c.name not in dropped))
    return v1


def _migrate_v1(conn: Connection) -> None:
    """Version 1: runs, problem trees, tool calls."""
    _v1_metadata().create_all(conn)


def _migrate_v2(conn: Connection) -> None:
    """Version 2: sub-problem reuse (hits and saved calls per run, the source per problem)."""
    for table_name, names in _V2_COLUMNS.items():
        for name in names:
            column = metadata.tables[table_name].c[name]
            ddl_type = column.type.compile(dialect=conn.dialect)
            default = " DEFAULT 0 NOT NULL" if isinstance(column.type, sa.Integer) else ""
            conn.execute(sa.text(f"ALTER TABLE {table_name} ADD COLUMN {name} {ddl_type}{default}"))


MIGRATIONS: list[Callable[[Connection], None]] = [_migrate_v1, _migrate_v2]
"""``MIGRATIONS[i]`` brings the schema from version ``i`` to ``i + 1``."""


# -- URLs ---------------------------------------------------------------------------------

def database_url(url: str | None = None) -> str:
    """The database URL: ``url``, else ``LOTTERY_DATABASE_URL``, else SQLite under LOTTERY_HOME."""
    raw = url or os.environ.get("LOTTERY_DATABASE_URL")
    if not raw:
        return f"sqlite:///{lottery_home() / 'lottery.db'}"
    return raw


def parse_url(url: str) -> URL:
    """A validated SQLAlchemy URL (SQLite file or PostgreSQL over psycopg 3).

    Raises:
        DatabaseURLError: not a URL, another database, or a SQLite URL without a file.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseURLError(
            f"{_redact(url)!r} is not a database URL: use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB (LOTTERY_DATABASE_URL)"
        ) from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite" and driver in ("pysqlite", "aiosqlite"):
        if not parsed.database or parsed.database == ":memory:":
            raise DatabaseURLError(
                "a SQLite memory must be a file (sqlite:///PATH): an in-memory database "
                "cannot be shared by the run, its checkpoints and other processes"
            )
        return parsed.set(drivername="sqlite")
    if backend == "postgresql" and driver in ("psycopg", "psycopg2", "asyncpg"):
        return parsed.set(drivername="postgresql+psycopg")
    raise DatabaseURLError(
        f"unsupported database {parsed.drivername!r} in {_redact(url)!r}: use sqlite:///PATH or "
        "postgresql+psycopg://USER@HOST:PORT/DB"
    )


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _libpq_conninfo(url: URL) -> str:
    """The psycopg connection string for LangGraph's Postgres saver and store."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(url: URL) -> str:
    return url.database or ""


# -- the run record -----------------------------------------------------------------------

def make_owner() -> str:
    """An id for this process as a run's writer: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_alive(owner: str | None, heartbeat_at: float | None, now: float) -> bool:
    """Whether the process that claimed a run may still be writing it."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        return pid_exists(int(pid_text))
    return heartbeat_at is not None and now - heartbeat_at < LEASE_S


class RunStore:
    """The ``lottery_*`` tables: one row per run, per problem and per tool call.

    Synchronous SQLAlchemy 2 Core; async callers use :meth:`call` to run a
    method in a worker thread.
    """

    def __init__(self, url: str | URL) -> None:
        self.url = url if isinstance(url, URL) else parse_url(url)
        self.dialect = self.url.get_backend_name()
        self.engine = _make_engine(self.url)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one of this store's blocking methods in a worker thread."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except StoreError:
            raise
        except SQLAlchemyError as exc:
            raise _store_error(exc, self.url) from exc

    # -- schema -------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The schema version in the database (0 when it has no ``lottery_*`` tables)."""
        with self._tx() as conn:
            return _read_version(conn)

    def migrate(self) -> int:
        """Create or upgrade the ``lottery_*`` tables in place; the version now in the database.

        Raises:
            SchemaVersionError: the database is newer than this code.
        """
        with self._tx() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7011)"))  # one migrator
            version = _read_version(conn)
            if version > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"the database at {self.url.render_as_string(hide_password=True)} has schema "
                    f"version {version}, newer than this lottery-llm knows ({SCHEMA_VERSION}): "
                    "upgrade lottery-llm (pip install -U lottery-llm)"
                )
            for step in range(version, SCHEMA_VERSION):
                MIGRATIONS[step](conn)
                conn.execute(schema_table.insert().values(version=step + 1, applied_at=time.time()))
            return SCHEMA_VERSION

    # -- writing ------------------------------------------------------------------------
    def claim(self, run_id: str, owner: str, *, question: str, strategy: str, model: str,
              knowledge_base: str, settings: Mapping[str, Any]) -> dict[str, Any] | None:
        """Become the writer of ``run_id``; its previous row, ``None`` for a new run.

        Raises:
            RunConflictError: another live process is writing this run.
        """
        now = time.time()
        with self._tx() as conn:
            query = sa.select(runs_table).where(runs_table.c.run_id == run_id)
            if self.dialect == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).mappings().first()
            if row is None:
                conn.execute(runs_table.insert().values(
                    run_id=run_id, question=question, strategy=strategy, model=model,
                    knowledge_base=knowledge_base, settings=json_safe(dict(settings)), status="running",
                    best_effort=False, calls=0, prompt_tokens=0, completion_tokens=0,
                    reuse_hits=0, saved_calls=0, attempts=1, owner=owner, heartbeat_at=now,
                    created_at=now, updated_at=now,
                ))
                return None
            if row["status"] == "running" and row["owner"] != owner and _owner_alive(
                row["owner"], row["heartbeat_at"], now
            ):
                raise RunConflictError(
                    f"run {run_id} is being written by another process ({row['owner']}); "
                    "wait for it to finish, or stop it and run `lottery resume` again"
                )
            conn.execute(runs_table.update().where(runs_table.c.run_id == run_id).values(
                status="running", owner=owner, heartbeat_at=now, updated_at=now, error=None,
                attempts=row["attempts"] + 1,
            ))
            return dict(row)

    def save_progress(self, run_id: str, owner: str, problems: Mapping[str, Mapping[str, Any]],
                      usage: Mapping[str, int], *, times: Mapping[str, tuple[float | None,
                      float | None]] | None = None,
                      tokens: Mapping[str, tuple[int, int]] | None = None) -> None:
        """Write the changed problems and the run's usage, as the run's writer.

        Raises:
            RunConflictError: another process took the run over.
        """
        now = time.time()
        with self._tx() as conn:
            updated = conn.execute(
                runs_table.update()
                .where(runs_table.c.run_id == run_id, runs_table.c.owner == owner)
                .values(heartbeat_at=now, updated_at=now, **_usage_columns(usage))
            ).rowcount
            if not updated:
                raise RunConflictError(
                    f"run {run_id} was taken over by another process; this one stops writing it"
                )
            self._write_problems(conn, run_id, problems, times or {}, tokens or {})

    def finish(self, run_id: str, owner: str, *, status: str, answer: str | None = None,
               best_effort: bool = False, stop_reason: str | None = None,
               error: str | None = None, usage: Mapping[str, int] | None = None) -> None:
        """Mark the run done (or failed) and release it."""
        now = time.time()
        values: dict[str, Any] = dict(status=status, answer=answer, best_effort=best_effort,
                                      stop_reason=stop_reason, error=error, owner=None,
                                      updated_at=now, finished_at=now)
        if usage is not None:
            values.update(_usage_columns(usage))
        with self._tx() as conn:
            conn.execute(runs_table.update().where(
                runs_table.c.run_id == run_id, runs_table.c.owner == owner
            ).values(**json_safe(values)))

    def _write_problems(self, conn: Connection, run_id: str,
                        problems: Mapping[str, Mapping[str, Any]],
                        times: Mapping[str, tuple[float | None, float | None]],
                        tokens: Mapping[str, tuple[int, int]]) -> None:
        if not problems:
            return
        rows, tool_rows = [], []
        for pid, p in problems.items():
            started, finished = times.get(pid, (None, None))
            prompt, completion = tokens.get(pid, (0, 0))
            known = {k: p.get(k) for k in _PROBLEM_FIELDS}
            rows.append(dict(
                run_id=run_id, problem_id=pid, parent=known["parent"], depth=known["depth"] or 0,
                question=known["question"] or "", template=known["template"],
                depends_on=known["depends_on"] or [], decision=known["decision"],
                reason=known["reason"], query=known["query"], tool_call=known["tool_call"],
                evidence=known["evidence"] or [], children=known["children"] or [],
                answer=known["answer"], status=known["status"] or "pending",
                calls=known["calls"] or 0, prompt_tokens=prompt, completion_tokens=completion,
                reused_from=p.get("reused_from"),
                extra={k: v for k, v in p.items() if k not in _PROBLEM_FIELDS
                       and k not in ("id", "reused_from")} or None,
                started_at=started, finished_at=finished,
            ))
            call = p.get("tool_call") or {}
            if call.get("name") and "result" in call:
                result = call.get("result") or {}
                tool_rows.append(dict(run_id=run_id, problem_id=pid, tool=call["name"],
                                      args=call.get("args"), ok=bool(result.get("ok", False)),
                                      result=result, created_at=finished or time.time()))
        rows, tool_rows = json_safe(rows), json_safe(tool_rows)
        self._upsert(conn, problems_table, rows, ("run_id", "problem_id"),
                     keep_first=("started_at", "finished_at"))
        if tool_rows:
            self._upsert(conn, tool_calls_table, tool_rows, ("run_id", "problem_id"),
                         keep_first=("created_at",))

    def _upsert(self, conn: Connection, table: sa.Table, rows: list[dict[str, Any]],
                keys: tuple[str, ...], keep_first: tuple[str, ...] = ()) -> None:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(table)
        changes: dict[str, Any] = {}
        for column in table.columns:
            if column.name in keys:
                continue
            new = stmt.excluded[column.name]
            # Times already recorded (a resumed run) stay as they were first seen.
            changes[column.name] = (sa.func.coalesce(column, new) if column.name in keep_first
                                    else new)
        conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=changes), rows)

    # -- reading ------------------------------------------------------------------------
    def get_run(self, run_id: str) -> dict[str, Any]:
        """The run's row.

        Raises:
            RunNotFoundError: no such run.
        """
        with self._tx() as conn:
            row = conn.execute(sa.select(runs_table).where(runs_table.c.run_id == run_id)
                               ).mappings().first()
        if row is None:
            raise RunNotFoundError(f"no run {run_id!r} in the memory (see `lottery runs list`)")
        return _public_run(dict(row))

    def list_runs(self, *, limit: int = 50, status: str | None = None) -> list[dict[str, Any]]:
        """The latest runs, newest first."""
        query = sa.select(runs_table).order_by(runs_table.c.created_at.desc()).limit(limit)
        if status:
            query = query.where(runs_table.c.status == status)
        with self._tx() as conn:
            return [_public_run(dict(r)) for r in conn.execute(query).mappings()]

    def problems(self, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's stored problem tree, keyed by problem id (the shape of ``Problem``)."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(problems_table).where(
                problems_table.c.run_id == run_id)).mappings().all()
        tree = {r["problem_id"]: _problem_from_row(dict(r)) for r in rows}
        return dict(sorted(tree.items(), key=lambda kv: [int(x) for x in kv[0].split(".")
                                                         if x.isdigit()]))

    def problem_stats(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Per problem: tokens and timings (what ``Problem`` itself does not carry)."""
        cols = [problems_table.c.problem_id, problems_table.c.prompt_tokens,
                problems_table.c.completion_tokens, problems_table.c.started_at,
                problems_table.c.finished_at]
        with self._tx() as conn:
            rows = conn.execute(sa.select(*cols).where(problems_table.c.run_id == run_id)
                                ).mappings().all()
        return {r["problem_id"]: {k: r[k] for k in r.keys() if k != "problem_id"} for r in rows}

    def tool_calls(self, run_id: str) -> list[dict[str, Any]]:
        """The run's tool calls with their results, in problem order."""
        with self._tx() as conn:
            rows = conn.execute(sa.select(tool_calls_table).where(
                tool_calls_table.c.run_id == run_id)).mappings().all()
        return sorted((dict(r) for r in rows), key=lambda r: r["problem_id"])

    def export(self, run_id: str) -> dict[str, Any]:
        """Everything stored about one run, JSON-ready."""
        run = self.get_run(run_id)
        stats = self.problem_stats(run_id)
        tree = self.problems(run_id)
        return {**run, "tree": tree, "problem_stats": stats, "tool_calls": [
            {k: v for k, v in call.items() if k != "run_id"} for call in self.tool_calls(run_id)
        ]}


_PROBLEM_FIELDS = ("parent", "depth", "question", "template", "depends_on", "decision", "reason",
                   "query", "tool_call", "evidence", "children", "answer", "status", "calls")


def _problem_from_row(row: dict[str, Any]) -> dict[str, Any]:
    problem = {"id": row["problem_id"], **{k: row[k] for k in _PROBLEM_FIELDS}}
    if row.get("reused_from"):
        problem["reused_from"] = row["reused_from"]
    problem.update(row.get("extra") or {})
    return problem


def _public_run(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("owner", None)
    return row


def _usage_columns(usage: Mapping[str, int]) -> dict[str, int]:
    return {k: int(usage.get(k, 0)) for k in
            ("calls", "prompt_tokens", "completion_tokens", "reuse_hits", "saved_calls")}


def _read_version(conn: Connection) -> int:
    inspector = sa.inspect(conn)
    if not inspector.has_table("lottery_schema"):
        return 0
    return conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar() or 0


def _make_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        path = Path(_sqlite_path(url))
        if not url.query.get("mode") and not path.parent.exists():
            raise DatabaseUnavailableError(
                f"the folder of the SQLite memory {path} does not exist: create it or set "
                "LOTTERY_HOME / LOTTERY_DATABASE_URL"
            )
        mode = url.query.get("mode")

        def connect() -> sqlite3.Connection:
            if mode:  # e.g. ?mode=ro: open read-only, as the URL asks
                return sqlite3.connect(f"file:{path}?mode={mode}", uri=True,
                                       timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            return sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)

        engine = sa.create_engine("sqlite://", creator=connect, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")  # with WAL: safe when a process dies
            if url.query.get("mode") != "ro":
                mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()
                if mode and str(mode[0]).lower() != "wal":
                    cur.close()
                    raise DatabaseUnavailableError(f"could not switch {url.database} to WAL")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Take the write lock up front: a deferred transaction that reads and then
            # writes can fail at once with "database is locked" despite the busy timeout.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_size=2, max_overflow=4, pool_pre_ping=True,
                            connect_args={"connect_timeout": 10})


def _store_error(exc: SQLAlchemyError, url: URL) -> StoreError:
    where = url.render_as_string(hide_password=True)
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        return DatabaseUnavailableError(
            f"the memory at {where} is read-only ({text}): make it writable or point "
            "LOTTERY_HOME / LOTTERY_DATABASE_URL elsewhere")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated or any(
        s in lowered for s in ("connection", "could not", "unable to open", "timeout", "resolve",
                               "authentication", "does not exist", "refused")
    ):
        return DatabaseUnavailableError(
            f"cannot use the memory at {where}: {text} (check LOTTERY_DATABASE_URL and that "
            "the server is running)")
    if "no such table" in lowered or "undefinedtable" in lowered or "malformed" in lowered:
        return SchemaVersionError(f"the memory at {where} is not a lottery database: {text}")
    return StoreError(f"the memory at {where} failed: {text}")


# -- memory M, checkpoints, the run record: one open database -------------------------------

@dataclass(slots=True)
class SqlMemory:
    """An open database: memory M, the checkpointer and the run record, on one URL."""

    url: URL
    store: BaseStore
    """Memory M, a LangGraph ``BaseStore`` (pass it to ``compile(store=...)``)."""
    checkpointer: BaseCheckpointSaver
    """Durable checkpoints (pass it to ``compile(checkpointer=...)``)."""
    runs: RunStore
    """The ``lottery_*`` tables."""

    async def settle(self) -> None:
        """Roll back a write transaction that a cancelled step left open on SQLite.

        LangGraph's aiosqlite checkpointer runs a write and its commit as two awaits on
        one connection; a run cancelled between them (Ctrl-C, ``task.cancel()``) keeps
        that connection's write lock until it closes, and every other write then waits
        out the busy timeout and fails with "database is locked". Each connection's own
        lock is taken first, so a write of another run that is in flight completes; what
        is rolled back is only the cancelled step, which a resume redoes.
        """
        import aiosqlite

        for part in (self.checkpointer, self.store):
            conn, lock = getattr(part, "conn", None), getattr(part, "lock", None)
            if not isinstance(conn, aiosqlite.Connection) or not isinstance(lock, asyncio.Lock):
                continue  # PostgreSQL: psycopg rolls a cancelled transaction back itself
            async with lock:
                if conn.in_transaction:
                    await conn.rollback()


@asynccontextmanager
async def open_memory(url: str | None = None) -> AsyncIterator[SqlMemory]:
    """Open (creating or upgrading as needed) the database at ``url``.

    Args:
        url: SQLAlchemy URL; ``LOTTERY_DATABASE_URL`` or ``$LOTTERY_HOME/lottery.db`` by default.

    Raises:
        DatabaseURLError: the URL is not SQLite or PostgreSQL.
        DatabaseUnavailableError: the server is unreachable or the file is not writable.
        SchemaVersionError: the database is newer than this code.
    """
    parsed = parse_url(database_url(url))
    runs = RunStore(parsed)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if parsed.get_backend_name() == "sqlite":
                store, saver = await _open_sqlite(parsed, stack)
            else:
                store, saver = await _open_postgres(parsed, stack)
            async with _setup_lock(parsed, runs):
                await runs.call(runs.migrate)
                await _guard(parsed, saver.setup())
                await _guard(parsed, store.setup())
            yield SqlMemory(url=parsed, store=store, checkpointer=saver, runs=runs)
    finally:
        runs.close()


@asynccontextmanager
async def generate_store() -> AsyncIterator[BaseStore]:
    """Memory M for a LangGraph server (``langgraph.json``: ``"store": {"path": ...}``)."""
    async with open_memory() as memory:
        yield memory.store


async def _open_sqlite(url: URL, stack: contextlib.AsyncExitStack) -> tuple[BaseStore,
                                                                             BaseCheckpointSaver]:
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = _sqlite_path(url)
    uri = url.query.get("uri") in ("true", "1") or path.startswith("file:")
    target = path if not url.query.get("mode") else f"file:{path}?mode={url.query['mode']}"
    uri = uri or bool(url.query.get("mode"))

    async def connect(isolation: str | None) -> aiosqlite.Connection:
        try:
            conn = await aiosqlite.connect(target, timeout=BUSY_TIMEOUT_S, uri=uri,
                                           isolation_level=isolation)
        except Exception as exc:  # sqlite3.OperationalError, file system errors
            raise DatabaseUnavailableError(f"cannot open the SQLite memory {path}: {exc}") from exc
        stack.push_async_callback(conn.close)
        await conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        await conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: safe when a process dies
        return conn

    store_conn = await connect(None)
    saver_conn = await connect("")
    return ImmediateSqliteStore(store_conn), AsyncSqliteSaver(saver_conn)


async def _open_postgres(url: URL, stack: contextlib.AsyncExitStack) -> tuple[BaseStore,
                                                                               BaseCheckpointSaver]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.store.postgres.aio import AsyncPostgresStore
    from psycopg import AsyncConnection
    from psycopg.rows import dict_row

    conninfo = _libpq_conninfo(url)

    async def connect() -> AsyncConnection[Any]:
        try:
            conn = await AsyncConnection.connect(conninfo, autocommit=True, prepare_threshold=0,
                                                 row_factory=dict_row, connect_timeout=10)
        except Exception as exc:  # psycopg.OperationalError: refused, auth, no such database
            raise DatabaseUnavailableError(
                f"cannot reach PostgreSQL at {url.render_as_string(hide_password=True)}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
                " (check LOTTERY_DATABASE_URL and that the server is running)"
            ) from exc
        stack.push_async_callback(conn.close)
        return conn

    return AsyncPostgresStore(await connect()), AsyncPostgresSaver(await connect())


async def _guard(url: URL, awaitable: Any) -> Any:
    try:
        return await awaitable
    except StoreError:
        raise
    except Exception as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        where = url.render_as_string(hide_password=True)
        if "readonly" in text.lower() or "read-only" in text.lower():
            raise DatabaseUnavailableError(
                f"the memory at {where} is read-only ({text}): make it writable or point "
                "LOTTERY_HOME / LOTTERY_DATABASE_URL elsewhere") from exc
        raise StoreError(f"the memory at {where} could not be set up: {text}") from exc


@asynccontextmanager
async def _setup_lock(url: URL, runs: RunStore) -> AsyncIterator[None]:
    """One process at a time creates or upgrades the tables (LangGraph's setup is not atomic)."""
    if url.get_backend_name() != "sqlite":
        # Poll rather than block: a worker thread blocked on the lock could starve the
        # holder of the threads it needs, when many runs open at once in one process.
        try:
            conn = await runs.call(lambda: runs.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"))
        except SQLAlchemyError as exc:
            raise _store_error(exc, url) from exc
        try:
            while not await runs.call(
                lambda: conn.execute(sa.text("SELECT pg_try_advisory_lock(7012)")).scalar()
            ):
                await asyncio.sleep(0.02)
            try:
                yield
            finally:
                await runs.call(conn.execute, sa.text("SELECT pg_advisory_unlock(7012)"))
        except SQLAlchemyError as exc:
            raise _store_error(exc, url) from exc
        finally:
            await runs.call(conn.close)
        return
    lock_path = Path(_sqlite_path(url) + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield  # a read-only folder: opening for writes fails below with a clear error
        return
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.02)
        yield
    finally:
        os.close(fd)  # releases the lock


class ImmediateSqliteStore(AsyncSqliteStore):
    """LangGraph's SQLite store, taking the write lock when a batch begins.

    A batch may read and then write in one transaction; begun DEFERRED, it
    fails at once with "database is locked" when another connection wrote in
    between, whatever the busy timeout. ``BEGIN IMMEDIATE`` waits instead.
    """

    @asynccontextmanager
    async def _cursor(self, *, transaction: bool = True) -> AsyncIterator[Any]:
        if not self.is_setup:
            await self.setup()
        async with self.lock:
            if transaction:
                await self.conn.execute("BEGIN IMMEDIATE")
            async with self.conn.cursor() as cur:
                try:
                    yield cur
                except BaseException:
                    if transaction:
                        await self.conn.execute("ROLLBACK")
                    raise
                else:
                    if transaction:
                        await self.conn.execute("COMMIT")


def json_ready(value: Any) -> Any:
    """``value`` with everything JSON can not hold turned into text."""
    return json.loads(json.dumps(value, default=str))
