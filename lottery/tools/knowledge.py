"""``knowledge_search``: the knowledge base D as a tool."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from lottery.stores.knowledge import KnowledgeBase


class SearchArgs(BaseModel):
    """Arguments of ``knowledge_search``."""

    query: str = Field(min_length=1, max_length=2000, description="What to look up.")
    k: int = Field(default=3, ge=1, le=20, description="How many documents.")


def make_knowledge_search(kb: KnowledgeBase) -> BaseTool:
    """Search ``kb`` and return the best documents as JSON lines."""

    async def knowledge_search(query: str, k: int = 3) -> str:
        hits = await kb.asearch(query, k=k)
        if not hits:
            return "(no documents matched the query)"
        return "\n".join(
            json.dumps({"id": h.id, "score": round(h.score, 4), "text": h.text[:1500]},
                       ensure_ascii=False)
            for h in hits
        )

    return StructuredTool.from_function(
        coroutine=knowledge_search, name="knowledge_search", args_schema=SearchArgs,
        description=f"Search the knowledge base {kb.name!r} for documents about a query.",
    )
