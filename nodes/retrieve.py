"""retrieve: ask the retriever R for documents from the knowledge base D."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from lottery.core.context import Context
from lottery.core.state import Evidence, Task
from lottery.resources import Resources


async def retrieve(task: Task, runtime: Runtime[Context]) -> dict[str, Any]:
    """Search with the problem's query and attach the ``top_k`` best hits it does not hold
    yet as evidence: a second hop (the bridge entity's query) adds new passages, never the
    first hop's again.

    Uses the run's knowledge base (the one the input names, else ``knowledge_base``)."""
    ctx, problem = runtime.context, task["problem"]
    query = problem["query"] or problem["question"]
    kb = Resources.of(ctx).kb_for(task.get("knowledge_base"))
    source = f"kb:{kb.name}"
    held = {e.get("ref") for e in problem["evidence"] if e["source"] == source}
    hits = await kb.asearch(query, k=ctx.top_k + len(held),  # type: ignore[arg-type]
                            mode=ctx.search_mode)
    hits = [h for h in hits if h.id not in held][:ctx.top_k]
    evidence: list[Evidence] = [
        Evidence(source=source, content=h.text, ref=h.id, score=round(h.score, 4)) for h in hits
    ]
    if not hits and not held:
        evidence.append(Evidence(source=source, content="(no documents matched the query)"))
    return {"problems": {problem["id"]: {"evidence": problem["evidence"] + evidence,
                                        "status": "solve"}}}
