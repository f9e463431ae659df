"""Knowledge base D: the interface every backend implements, and a small in-memory one.

A knowledge base is one named collection of documents, optionally split into
tenants (separate partitions with the same schema, as Weaviate's
multi-tenancy). Backends: the in-memory keyword index below (tests, tiny
corpora), the embedded default (:mod:`lottery.stores.embedded`, SQLite FTS5 +
vectors, no server) and Weaviate (:mod:`lottery.stores.weaviate`).
:func:`lottery.stores.factory.open_knowledge_base` picks one from the settings.

Hybrid ranking follows Weaviate's ``relativeScoreFusion``: each ranking's
scores are min-max normalised to [0, 1], weighted by ``alpha`` (vector) and
``1 - alpha`` (keyword), and summed per document.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lottery.errors import ConfigurationError, InputError

SearchMode = Literal["bm25", "vector", "hybrid"]
SEARCH_MODES: tuple[str, ...] = ("bm25", "vector", "hybrid")
DEFAULT_TENANT = "default"
MAX_DOCUMENT_CHARS = 64_000
"""Longest document one upsert accepts; longer texts must be chunked first (``lottery kb add`` does)."""
CANDIDATES = 100
"""How many hits each ranking contributes to a hybrid fusion (Weaviate's default limit)."""


@dataclass(frozen=True, slots=True)
class Document:
    """A unit of knowledge: its id is stable, so re-adding it replaces it."""

    id: str
    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result."""

    id: str
    text: str
    score: float
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "text": self.text, "metadata": dict(self.metadata)}


@dataclass(slots=True)
class UpsertReport:
    """What an upsert did, per document: nothing fails silently."""

    added: int = 0
    updated: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    removed: int = 0
    """Chunks of a replaced source that it no longer has, deleted (:meth:`areplace_source`)."""
    unchanged: int = 0
    """Chunks already stored as they are, not written again (``lottery kb add``)."""


class KnowledgeBase(ABC):
    """One collection of documents, searchable by keyword, vector or both."""

    name: str
    tenant: str = DEFAULT_TENANT
    backend: str = "abstract"

    @abstractmethod
    async def aupsert(self, documents: Sequence[Document]) -> UpsertReport:
        """Add documents; a document whose id exists replaces the stored one."""

    @abstractmethod
    async def adelete(self, ids: Sequence[str]) -> int:
        """Delete by id; returns how many existed."""

    @abstractmethod
    async def acount(self) -> int:
        """Number of documents stored."""

    @abstractmethod
    async def astored(self, ids: Sequence[str]) -> dict[str, Document]:
        """The stored documents among ``ids`` (a resumed ``kb add`` skips those unchanged)."""

    @abstractmethod
    async def asource_ids(self, source: str) -> set[str]:
        """The ids of every stored document whose metadata ``source`` is ``source``."""

    async def areplace_source(self, source: str, documents: Sequence[Document], *,
                              keep: set[str] | None = None) -> UpsertReport:
        """Make ``source``'s documents exactly ``keep`` (default: the ids of ``documents``):
        upsert ``documents``, then delete the source's other chunks, so a file that shrank
        leaves nothing stale behind. Nothing is deleted when any document failed: a failed
        re-add never loses what was stored. Backends with transactions do both in one
        (the embedded store); the default does them one after the other."""
        report = await self.aupsert(documents)
        if report.failed:
            return report
        stale = await self.asource_ids(source) - (keep if keep is not None
                                                  else {d.id for d in documents})
        report.removed = await self.adelete(sorted(stale)) if stale else 0
        return report

    async def asearch(
        self,
        query: str,
        *,
        k: int = 4,
        mode: SearchMode = "hybrid",
        alpha: float = 0.5,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """Best ``k`` hits for ``query``.

        ``alpha`` weighs vector against keyword ranking as Weaviate defines it:
        1 is pure vector, 0 pure keyword. ``filters`` keep documents whose
        metadata equals every given value.
        """
        check_search(query, k, mode, alpha, filters)
        if not query.strip():
            return []
        return await self._search(query, k, mode, alpha, filters)

    @abstractmethod
    async def _search(self, query: str, k: int, mode: SearchMode, alpha: float,
                      filters: Mapping[str, Any] | None) -> list[Hit]:
        """:meth:`asearch` after its arguments were checked and the query is not blank."""

    @abstractmethod
    async def adrop(self) -> None:
        """Delete the whole knowledge base (this tenant's documents, or all of it)."""

    async def aexists(self) -> bool:
        """Whether the knowledge base exists (a missing one searches as empty)."""
        return True

    async def astats(self) -> dict[str, Any]:
        """What the knowledge base holds: backend, name, tenant, document count."""
        return {"backend": self.backend, "name": self.name, "tenant": self.tenant,
                "documents": await self.acount()}

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""

    async def __aenter__(self) -> KnowledgeBase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def check_batch(documents: Sequence[Document], report: UpsertReport) -> list[Document]:
    """The documents of a batch that can be stored; every other one is named in ``report``.

    Rejected: empty or non-text ids and texts, NUL bytes (binary data), texts
    over :data:`MAX_DOCUMENT_CHARS`, metadata that is not JSON, and repeated
    ids (the first occurrence is kept).
    """
    good: dict[str, Document] = {}
    for doc in documents:
        doc_id = doc.id if isinstance(doc.id, str) else ""
        key = doc_id or "<no id>"
        if not doc_id.strip():
            report.failed[key] = "empty id"
        elif not isinstance(doc.text, str) or not doc.text.strip():
            report.failed[key] = "empty text"
        elif "\x00" in doc.text:
            report.failed[key] = "text contains NUL bytes: binary data?"
        elif len(doc.text) > MAX_DOCUMENT_CHARS:
            report.failed[key] = (f"text has {len(doc.text)} characters, over the limit of "
                                  f"{MAX_DOCUMENT_CHARS}: split it into chunks first")
        elif doc_id in good:
            report.failed[key] = "duplicate id in this batch: the first one was kept"
        else:
            try:
                json.dumps(dict(doc.metadata))
            except (TypeError, ValueError) as exc:
                report.failed[key] = f"metadata is not JSON: {exc}"
                continue
            good[doc_id] = doc
    return list(good.values())


def check_search(query: str, k: int, mode: str, alpha: float,
                 filters: Mapping[str, Any] | None) -> None:
    """Raise :class:`InputError` for search arguments no backend can use."""
    if not isinstance(query, str):
        raise InputError(f"the query must be text, got {type(query).__name__}")
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    if mode not in SEARCH_MODES:
        raise InputError(f"search mode must be bm25, vector or hybrid, got {mode!r}")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be between 0 (keyword) and 1 (vector), got {alpha}")
    for key, value in (filters or {}).items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise InputError(f"filter key {key!r} must be a plain name (letters, digits, _)")
        if not isinstance(value, str | int | float | bool):
            raise InputError(f"filter {key!r} must compare to text, a number or a boolean")


def relative_score_fusion(keyword: Sequence[Hit], vector: Sequence[Hit], alpha: float,
                          k: int) -> list[Hit]:
    """Weaviate's ``relativeScoreFusion`` of two rankings; see the module docstring."""
    fused: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for hits, weight in ((keyword, 1.0 - alpha), (vector, alpha)):
        if not hits:
            continue
        scores = [h.score for h in hits]
        low, high = min(scores), max(scores)
        for h in hits:
            norm = 1.0 if high == low else (h.score - low) / (high - low)
            fused[h.id] = fused.get(h.id, 0.0) + weight * norm
            first.setdefault(h.id, h)
    ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
    return [Hit(i, first[i].text, s, first[i].metadata) for i, s in ranked]


def check_name(name: str, what: str) -> None:
    """Raise :class:`InputError` unless ``name`` is usable as a file and collection name."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name):
        raise InputError(f"{what} name {name!r} must be 1-64 letters, digits, '-' or '_', "
                         "starting with a letter or digit")


_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens, shared by the keyword indexes."""
    return [t.lower() for t in _TOKEN.findall(text)]


class InMemoryKnowledgeBase(KnowledgeBase):
    """BM25 over a list in memory. Keyword only: vector and hybrid fall back to BM25."""

    backend = "memory"

    def __init__(self, name: str = "default", documents: Sequence[Document] = ()) -> None:
        self.name = name
        self._docs: dict[str, Document] = {}
        self._tf: dict[str, Counter[str]] = {}
        if documents:
            for d in documents:
                self._store(d)

    def _store(self, doc: Document) -> bool:
        existed = doc.id in self._docs
        self._docs[doc.id] = doc
        self._tf[doc.id] = Counter(tokenize(doc.text))
        return existed

    async def aupsert(self, documents: Sequence[Document]) -> UpsertReport:
        report = UpsertReport()
        for doc in check_batch(documents, report):
            if self._store(doc):
                report.updated += 1
            else:
                report.added += 1
        return report

    async def adelete(self, ids: Sequence[str]) -> int:
        gone = 0
        for i in ids:
            if self._docs.pop(i, None) is not None:
                self._tf.pop(i, None)
                gone += 1
        return gone

    async def acount(self) -> int:
        return len(self._docs)

    async def astored(self, ids: Sequence[str]) -> dict[str, Document]:
        return {i: self._docs[i] for i in ids if i in self._docs}

    async def asource_ids(self, source: str) -> set[str]:
        return {i for i, d in self._docs.items() if d.metadata.get("source") == source}

    async def adrop(self) -> None:
        self._docs.clear()
        self._tf.clear()

    async def _search(self, query: str, k: int, mode: SearchMode, alpha: float,
                      filters: Mapping[str, Any] | None) -> list[Hit]:
        terms = tokenize(query)
        if not terms or not self._docs:
            return []
        n = len(self._docs)
        avg = sum(sum(tf.values()) for tf in self._tf.values()) / n
        df = Counter(t for tf in self._tf.values() for t in set(tf))
        scored = []
        for doc_id, tf in self._tf.items():
            doc = self._docs[doc_id]
            if filters and any(doc.metadata.get(key) != v for key, v in filters.items()):
                continue
            length = sum(tf.values())
            score = 0.0
            for t in terms:
                if t in tf:
                    idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                    score += idf * tf[t] * 2.2 / (tf[t] + 1.2 * (0.25 + 0.75 * length / avg))
            if score > 0:
                scored.append(Hit(doc_id, doc.text, score, doc.metadata))
        scored.sort(key=lambda h: -h.score)
        return scored[:k]


def need_embeddings(name: str, embeddings: Any) -> Any:
    """``embeddings``, or a clear error for vector search on a keyword-only knowledge base."""
    if embeddings is None:
        raise ConfigurationError(f"knowledge base {name!r} was opened without "
                                 "embeddings: only bm25 search is possible")
    return embeddings
