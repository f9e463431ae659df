"""The embedded knowledge base: one SQLite file per knowledge base, no server.

- Keyword ranking: SQLite FTS5 (``bm25()``, Porter stemming over unicode61
  tokens), kept in sync with the documents table by triggers.
- Vector ranking: float32 vectors stored as blobs beside the text, searched by
  exact cosine similarity with numpy. Python's ``sqlite3`` here cannot load
  extensions such as sqlite-vec, and exact search over a few hundred thousand
  384-d vectors takes milliseconds, so no approximate index is needed at the
  sizes one machine serves; beyond that, use the Weaviate backend.
- Hybrid: Weaviate's ``relativeScoreFusion`` of both rankings
  (:func:`~lottery.stores.knowledge.relative_score_fusion`).

Files live under ``$LOTTERY_HOME/kb/<name>.sqlite``; tenants are rows of the
same file. ``EmbeddedKnowledgeBase.ephemeral()`` keeps everything in memory
(the throw-away collection of prompt preprocessing).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from lottery.errors import ConfigurationError, StoreError
from lottery.paths import lottery_home
from lottery.stores.embeddings import model_id
from lottery.stores.knowledge import (
    CANDIDATES,
    DEFAULT_TENANT,
    Document,
    Hit,
    KnowledgeBase,
    SearchMode,
    UpsertReport,
    check_batch,
    check_name,
    need_embeddings,
    relative_score_fusion,
    tokenize,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    rowid INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    vector BLOB,
    UNIQUE (tenant, id)
);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
    text, content='docs', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS docs_ai AFTER INSERT ON docs BEGIN
    INSERT INTO docs_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS docs_ad AFTER DELETE ON docs BEGIN
    INSERT INTO docs_fts(docs_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER IF NOT EXISTS docs_au AFTER UPDATE ON docs BEGIN
    INSERT INTO docs_fts(docs_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO docs_fts(rowid, text) VALUES (new.rowid, new.text);
END;
"""


def kb_dir() -> Path:
    """Where embedded knowledge bases live: ``$LOTTERY_HOME/kb``."""
    path = lottery_home() / "kb"
    path.mkdir(parents=True, exist_ok=True)
    return path


class EmbeddedKnowledgeBase(KnowledgeBase):
    """SQLite FTS5 + exact vector search; see the module docstring."""

    backend = "embedded"

    def __init__(self, name: str, path: Path | None, *, tenant: str = DEFAULT_TENANT,
                 embeddings: Embeddings | None = None) -> None:
        """Use :meth:`open` or :meth:`ephemeral` rather than this."""
        self.name = name
        self.tenant = tenant
        self.path = path
        self._embeddings = embeddings
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._matrix: tuple[np.ndarray, list[int]] | None = None

    @classmethod
    def open(cls, name: str = "default", *, tenant: str = DEFAULT_TENANT,
             embeddings: Embeddings | None = None) -> EmbeddedKnowledgeBase:
        """The persistent knowledge base ``name``; the file is created on the first write."""
        check_name(name, "knowledge base")
        check_name(tenant, "tenant")
        return cls(name, kb_dir() / f"{name}.sqlite", tenant=tenant, embeddings=embeddings)

    @classmethod
    def ephemeral(cls, name: str = "scratch", *,
                  embeddings: Embeddings | None = None) -> EmbeddedKnowledgeBase:
        """A throw-away knowledge base in memory, gone when closed."""
        return cls(name, None, embeddings=embeddings)

    # -- connection -------------------------------------------------------------------
    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._conn is not None:
            return self._conn
        if self.path is not None and not self.path.exists() and not create:
            return None
        try:
            conn = sqlite3.connect(":memory:" if self.path is None else str(self.path),
                                   check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open knowledge base {self.name!r} at {self.path}: {exc}; "
                             "check the file is a lottery knowledge base, or drop it") from exc
        self._conn = conn
        return conn

    def _call(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            try:
                return fn(*args)
            except sqlite3.Error as exc:
                raise StoreError(f"knowledge base {self.name!r}: {exc}") from exc

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(self._call, fn, *args)

    def _check_model(self, conn: sqlite3.Connection, dim: int | None) -> None:
        """Refuse to mix vectors of different embedding models in one knowledge base."""
        assert self._embeddings is not None
        want = model_id(self._embeddings)
        row = conn.execute("SELECT value FROM meta WHERE key='embedding_model'").fetchone()
        if row is None:
            if dim is not None:
                conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                 [("embedding_model", want), ("dim", str(dim))])
            return
        if row[0] != want:
            raise ConfigurationError(
                f"knowledge base {self.name!r} was built with embeddings {row[0]!r}, not "
                f"{want!r}: configure the same model (LOTTERY_EMBEDDINGS_*), or drop and re-add"
            )

    def _need_embeddings(self) -> Embeddings:
        return need_embeddings(self.name, self._embeddings)

    # -- writes -----------------------------------------------------------------------
    async def aupsert(self, documents: Sequence[Document]) -> UpsertReport:
        return await self._upsert(documents, None)

    async def areplace_source(self, source: str, documents: Sequence[Document], *,
                              keep: set[str] | None = None) -> UpsertReport:
        # The upsert and the deletion of the source's stale chunks in ONE transaction.
        return await self._upsert(documents, (source, keep if keep is not None
                                              else {d.id for d in documents}))

    async def astored(self, ids: Sequence[str]) -> dict[str, Document]:
        def read() -> dict[str, Document]:
            conn = self._connect(create=False)
            if conn is None or not ids:
                return {}
            marks = ",".join("?" * len(ids))
            rows = conn.execute(f"SELECT id, text, metadata FROM docs WHERE tenant=? AND id IN "
                                f"({marks})", (self.tenant, *ids))
            return {r[0]: Document(r[0], r[1], json.loads(r[2])) for r in rows}

        return await self._run(read)

    async def asource_ids(self, source: str) -> set[str]:
        def ids() -> set[str]:
            conn = self._connect(create=False)
            if conn is None:
                return set()
            rows = conn.execute("SELECT id FROM docs WHERE tenant=? AND "
                                "json_extract(metadata, '$.source')=?", (self.tenant, source))
            return {r[0] for r in rows}

        return await self._run(ids)

    async def _upsert(self, documents: Sequence[Document],
                      replace: tuple[str, set[str]] | None) -> UpsertReport:
        report = UpsertReport()
        good = check_batch(documents, report)
        if report.failed:
            replace = None  # a failed re-add deletes nothing
        if not good and replace is None:
            return report
        try:
            vectors: list[list[float] | None] = [] if not good else (
                [None] * len(good) if self._embeddings is None  # a keyword-only knowledge base
                else await asyncio.to_thread(self._embeddings.embed_documents,
                                             [d.text for d in good]))
        except (StoreError, ConfigurationError):
            raise
        except Exception as exc:  # a model failure must not look like success
            for d in good:
                report.failed[d.id] = f"embedding failed: {type(exc).__name__}: {exc}"
            return report
        await self._run(self._write, good, vectors, report, replace)
        return report

    def _write(self, docs: list[Document], vectors: list[list[float] | None],
               report: UpsertReport, replace: tuple[str, set[str]] | None = None) -> None:
        conn = self._connect(create=True)
        assert conn is not None
        dim = len(vectors[0]) if vectors and vectors[0] is not None else None
        conn.execute("BEGIN IMMEDIATE")
        try:
            if self._embeddings is not None and docs:
                self._check_model(conn, dim)
            for doc, vec in zip(docs, vectors, strict=True):
                existed = conn.execute("SELECT 1 FROM docs WHERE tenant=? AND id=?",
                                       (self.tenant, doc.id)).fetchone()
                conn.execute(
                    "INSERT INTO docs (tenant, id, text, metadata, vector) VALUES (?,?,?,?,?) "
                    "ON CONFLICT (tenant, id) DO UPDATE SET text=excluded.text, "
                    "metadata=excluded.metadata, vector=excluded.vector",
                    (self.tenant, doc.id, doc.text, json.dumps(dict(doc.metadata)),
                     None if vec is None else np.asarray(vec, dtype=np.float32).tobytes()),
                )
                if existed:
                    report.updated += 1
                else:
                    report.added += 1
            if replace is not None:
                source, keep = replace
                stale = [r[0] for r in conn.execute(
                    "SELECT id FROM docs WHERE tenant=? AND json_extract(metadata, '$.source')=?",
                    (self.tenant, source)) if r[0] not in keep]
                conn.executemany("DELETE FROM docs WHERE tenant=? AND id=?",
                                 [(self.tenant, i) for i in stale])
                report.removed = len(stale)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            report.added = report.updated = report.removed = 0
            raise
        finally:
            self._matrix = None

    async def adelete(self, ids: Sequence[str]) -> int:
        def delete() -> int:
            conn = self._connect(create=False)
            if conn is None:
                return 0
            self._matrix = None
            cur = conn.executemany("DELETE FROM docs WHERE tenant=? AND id=?",
                                   [(self.tenant, i) for i in ids])
            return cur.rowcount

        return await self._run(delete)

    async def adrop(self) -> None:
        def drop() -> None:
            conn = self._connect(create=False)
            if conn is None:
                return
            self._matrix = None
            conn.execute("DELETE FROM docs WHERE tenant=?", (self.tenant,))
            left = conn.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
            if left == 0 and self.path is not None:
                conn.close()
                self._conn = None
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)

        await self._run(drop)

    # -- reads ------------------------------------------------------------------------
    async def acount(self) -> int:
        def count() -> int:
            conn = self._connect(create=False)
            if conn is None:
                return 0
            return conn.execute("SELECT COUNT(*) FROM docs WHERE tenant=?",
                                (self.tenant,)).fetchone()[0]

        return await self._run(count)

    async def aexists(self) -> bool:
        """False when nothing was ever added (no file) for this knowledge base."""
        return self.path is None or self.path.exists()

    async def astats(self) -> dict[str, Any]:
        stats = await super().astats()

        def extra() -> dict[str, Any]:
            conn = self._connect(create=False)
            if conn is None:
                return {"exists": False}
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            tenants = [r[0] for r in conn.execute("SELECT DISTINCT tenant FROM docs ORDER BY 1")]
            size = self.path.stat().st_size if self.path is not None else 0
            return {"exists": True, "path": str(self.path or ":memory:"), "bytes": size,
                    "tenants": tenants, "embedding_model": meta.get("embedding_model"),
                    "dim": int(meta["dim"]) if "dim" in meta else None}

        return {**stats, **await self._run(extra)}

    async def _search(self, query: str, k: int, mode: SearchMode, alpha: float,
                      filters: Mapping[str, Any] | None) -> list[Hit]:
        if not await self.aexists():
            return []
        if mode == "bm25" or (mode == "hybrid" and alpha == 0.0):
            return await self._run(self._keyword, query, k, filters)
        qvec = await asyncio.to_thread(self._need_embeddings().embed_query, query)
        if mode == "vector" or alpha == 1.0:
            return await self._run(self._vector, qvec, k, filters)
        n = max(k, CANDIDATES)
        keyword = await self._run(self._keyword, query, n, filters)
        vector = await self._run(self._vector, qvec, n, filters)
        return relative_score_fusion(keyword, vector, alpha, k)

    def _where(self, filters: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
        clause, params = "d.tenant = ?", [self.tenant]
        for key, value in (filters or {}).items():
            clause += f" AND json_extract(d.metadata, '$.\"{key}\"') = ?"
            params.append(value)
        return clause, params

    def _keyword(self, query: str, k: int, filters: Mapping[str, Any] | None) -> list[Hit]:
        conn = self._connect(create=False)
        terms = sorted(set(tokenize(query)))
        if conn is None or not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        where, params = self._where(filters)
        rows = conn.execute(
            "SELECT d.id, d.text, d.metadata, -bm25(docs_fts) FROM docs_fts "
            f"JOIN docs d ON d.rowid = docs_fts.rowid WHERE docs_fts MATCH ? AND {where} "
            "ORDER BY bm25(docs_fts) LIMIT ?",
            [match, *params, k],
        ).fetchall()
        return [Hit(i, t, float(s), json.loads(m)) for i, t, m, s in rows]

    def _vector(self, qvec: list[float], k: int, filters: Mapping[str, Any] | None) -> list[Hit]:
        conn = self._connect(create=False)
        if conn is None:
            return []
        self._check_model(conn, None)
        if filters:
            where, params = self._where(filters)
            rows = conn.execute(f"SELECT d.rowid, d.vector FROM docs d WHERE {where} "
                                "AND d.vector IS NOT NULL", params).fetchall()
            matrix, rowids = _stack(rows)
        else:
            if self._matrix is None:
                rows = conn.execute("SELECT rowid, vector FROM docs WHERE tenant=? AND "
                                    "vector IS NOT NULL", (self.tenant,)).fetchall()
                self._matrix = _stack(rows)
            matrix, rowids = self._matrix
        if not rowids:
            return []
        q = np.asarray(qvec, dtype=np.float32)
        if q.shape[0] != matrix.shape[1]:
            raise ConfigurationError(f"query vector has {q.shape[0]} dimensions, the knowledge "
                                     f"base {matrix.shape[1]}: use the embeddings it was built with")
        scores = matrix @ q
        top = np.argsort(-scores, kind="stable")[:k]
        chosen = [rowids[i] for i in top]
        marks = ",".join("?" * len(chosen))
        found = {r[0]: r[1:] for r in conn.execute(
            f"SELECT rowid, id, text, metadata FROM docs WHERE rowid IN ({marks})", chosen)}
        return [Hit(found[rowids[i]][0], found[rowids[i]][1], float(scores[i]),
                    json.loads(found[rowids[i]][2])) for i in top if rowids[i] in found]

    async def aclose(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._run(close)


def _stack(rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, list[int]]:
    if not rows:
        return np.zeros((0, 0), dtype=np.float32), []
    matrix = np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows])
    return matrix, [r[0] for r in rows]
