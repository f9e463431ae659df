"""solve: answer one problem from its question, its evidence and earlier answers."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from lottery.graphs.context import Context
from lottery.graphs.state import Evidence, Problem, Task
from lottery.nodes import prompts
from lottery.nodes.events import emit_answer
from lottery.nodes.llm import complete, final_answer, system_user
from lottery.nodes.memory import remember

_MAX_EVIDENCE_CHARS = 1500


async def solve(task: Task, runtime: Runtime[Context]) -> dict[str, Any]:
    """One model call; the reply's ``Answer:`` line is the problem's answer."""
    ctx, problem = runtime.context, task["problem"]
    user = prompts.SOLVE_USER.format(
        evidence=_evidence_block(problem["evidence"]),
        related=_related_block(task["related"]),
        question=problem["question"],
    )
    reply = await complete(ctx, system_user(prompts.SOLVE_SYSTEM, user))
    update = {"answer": final_answer(reply.text), "status": "done",
              "calls": problem["calls"] + reply.usage["calls"]}
    done: Problem = {**problem, **update}  # type: ignore[typeddict-item]
    await remember(runtime.store, task["run_id"], [done])
    emit_answer(runtime, problem, update["answer"], "solve")
    return {"problems": {problem["id"]: update}, "usage": reply.usage}


def _evidence_block(evidence: list[Evidence]) -> str:
    if not evidence:
        return ""
    items = "\n".join(
        f"[{i}] ({e['source']}) {e['content'][:_MAX_EVIDENCE_CHARS]}"
        for i, e in enumerate(evidence, start=1)
    )
    return prompts.EVIDENCE_BLOCK.format(items=items)


def _related_block(related: list[dict[str, str]]) -> str:
    if not related:
        return ""
    items = "\n".join(f"- {r['question']} -> {r['answer']}" for r in related)
    return prompts.RELATED_BLOCK.format(items=items)
