"""Which knowledge base a name opens: the one place that chooses a backend.

The interface (``stores/knowledge.py``) knows no backend; the backends (``embedded.py``,
``weaviate.py``) know the interface. Callers that need a knowledge base by name, or a
throw-away one, ask here.
"""

from __future__ import annotations

import os
from typing import Any

from lottery.errors import ConfigurationError
from lottery.stores.knowledge import (
    DEFAULT_TENANT,
    InMemoryKnowledgeBase,
    KnowledgeBase,
    check_name,
)


def open_knowledge_base(name: str = "default", *, tenant: str | None = None,
                        embeddings: Any = None, backend: str | None = None) -> KnowledgeBase:
    """The knowledge base ``name``: Weaviate when ``WEAVIATE_URL`` is set, else embedded.

    Args:
        name: Knowledge base name (letters, digits, ``-`` and ``_``).
        tenant: Partition inside it; ``default`` when not given.
        embeddings: LangChain embeddings; the configured ones when ``None``
            (see :func:`lottery.stores.embeddings.embeddings_from_env`).
        backend: ``embedded``, ``weaviate`` or ``memory`` to override the choice.
    """
    check_name(name, "knowledge base")
    tenant = tenant or DEFAULT_TENANT
    check_name(tenant, "tenant")
    chosen = backend or os.environ.get("LOTTERY_KB_BACKEND") or (
        "weaviate" if os.environ.get("WEAVIATE_URL") else "embedded")
    if chosen == "memory":
        kb = InMemoryKnowledgeBase(name)
        kb.tenant = tenant
        return kb
    if chosen not in ("embedded", "weaviate"):
        raise ConfigurationError(f"unknown knowledge-base backend {chosen!r}: "
                                 "use embedded, weaviate or memory")
    if embeddings is None:
        from lottery.stores.embeddings import embeddings_from_env

        embeddings = embeddings_from_env()
    if chosen == "weaviate":
        from lottery.stores.weaviate import WeaviateKnowledgeBase

        return WeaviateKnowledgeBase.from_env(name, tenant=tenant, embeddings=embeddings)
    from lottery.stores.embedded import EmbeddedKnowledgeBase

    return EmbeddedKnowledgeBase.open(name, tenant=tenant, embeddings=embeddings)


def scratch_knowledge_base(name: str = "scratch", *, embeddings: Any = None) -> KnowledgeBase:
    """A throw-away knowledge base in memory with keyword, vector and hybrid search (the
    embedded backend without a file), gone when closed."""
    from lottery.stores.embedded import EmbeddedKnowledgeBase

    return EmbeddedKnowledgeBase.ephemeral(name, embeddings=embeddings)
