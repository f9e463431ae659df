"""retrieve: ask the retriever R for documents from the knowledge base D."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from lottery.core.context import Context
from lottery.core.state import Evidence, Task
from lottery.resources import Resources


async def retrieve(task: Task, runtime: Runtime[Context]) -> dict[str, Any]:
    """Search with the planner's query and attach the hits as evidence.

    Uses the run's knowledge base (the one the input names, else ``knowledge_base``)."""
    ctx, problem = runtime.context, task["problem"]
    query = problem["query"] or problem["question"]
    kb = Resources.of(ctx).kb_for(task.get("knowledge_base"))
    hits = await kb.asearch(query, k=ctx.top_k, mode=ctx.search_mode)  # type: ignore[arg-type]
    source = f"kb:{kb.name}"
    evidence: list[Evidence] = [
        Evidence(source=source, content=h.text, ref=h.id, score=round(h.score, 4)) for h in hits
    ]
    if not hits:
        evidence.append(Evidence(source=source, content="(no documents matched the query)"))
    return {"problems": {problem["id"]: {"evidence": problem["evidence"] + evidence,
                                        "status": "solve"}}}
