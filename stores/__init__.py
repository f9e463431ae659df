"""Stores behind the graph: knowledge base D, memory M, checkpoints.

Memory M is a LangGraph ``BaseStore`` (namespaced key -> JSON value), so a
graph served by ``langgraph dev`` or a LangGraph server reads and writes the
same memory as ``lottery.solve``.
"""

from lottery.stores.knowledge import (
    Document,
    Hit,
    InMemoryKnowledgeBase,
    KnowledgeBase,
    SearchMode,
    UpsertReport,
)

__all__ = [
    "Document",
    "Hit",
    "InMemoryKnowledgeBase",
    "KnowledgeBase",
    "SearchMode",
    "UpsertReport",
]
