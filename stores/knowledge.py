"""Knowledge base D: the interface every backend implements, and a small in-memory one.

A knowledge base is one named collection of documents. Backends: the
in-memory keyword index below (tests, tiny corpora); the embedded default and
Weaviate plug in behind the same interface.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

SearchMode = Literal["bm25", "vector", "hybrid"]


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


class KnowledgeBase(ABC):
    """One collection of documents, searchable by keyword, vector or both."""

    name: str

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

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""


_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens, shared by the keyword indexes."""
    return [t.lower() for t in _TOKEN.findall(text)]


class InMemoryKnowledgeBase(KnowledgeBase):
    """BM25 over a list in memory. Keyword only: vector and hybrid fall back to BM25."""

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
        for doc in documents:
            if not doc.id or not doc.text.strip():
                report.failed[doc.id or "<no id>"] = "empty id or text"
                continue
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

    async def asearch(
        self,
        query: str,
        *,
        k: int = 4,
        mode: SearchMode = "hybrid",
        alpha: float = 0.5,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
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
