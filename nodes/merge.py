"""merge: combine the answers of a problem's sub-problems into its own answer."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from lottery.core.context import Context
from lottery.core.state import Candidate, Problem, Task
from lottery.nodes import prompts
from lottery.nodes.events import emit_answer
from lottery.nodes.llm import complete, final_answer, fit, room, system_user
from lottery.nodes.memory import remember
from lottery.nodes.policy import POLICIES, merged_confidence
from lottery.resources import Resources


async def merge(task: Task, runtime: Runtime[Context]) -> dict[str, Any]:
    """One model call over the sub-answers; writes the parent and its children to memory M.

    Uses the run's model."""
    ctx, problem = runtime.context, task["problem"]
    lines = [prompts.RESULT_LINE.format(**r) for r in task["related"]]
    fixed = prompts.MERGE_USER.format(items="", question=problem["question"])
    shown = fit(lines, room(ctx, prompts.MERGE_SYSTEM, fixed), per_item=len("12. \n"))
    items = "\n".join(f"{i}. {line}" for i, line in enumerate(shown, start=1))
    user = prompts.MERGE_USER.format(items=items, question=problem["question"])
    reply = await complete(Resources.of(ctx), system_user(prompts.MERGE_SYSTEM, user))
    usage = dict(reply.usage)
    answer = final_answer(reply.text)
    if not answer:  # an empty merge would lose the sub-answers: keep them instead
        answer = "; ".join(r["answer"] for r in task["related"] if r["answer"])
        usage["fallbacks"] = usage.get("fallbacks", 0) + 1
    update: dict[str, Any] = {"answer": answer, "status": "done",
                              "calls": problem["calls"] + reply.usage["calls"]}
    policy = POLICIES[task.get("policy") or "planner"]
    if not policy.planner:  # as sure as its least sure part; in doubt, the ladder goes on
        confidence = merged_confidence([r.get("confidence", 0.5) for r in task["related"]])
        ok = confidence >= policy.accept
        update.update(confidence=confidence, accepted=ok, status="done" if ok else "doubt",
                      candidates=[*(problem.get("candidates") or []),
                                  Candidate(answer=answer, kind="merge", model=ctx.model)])
    done: Problem = {**problem, **update}  # type: ignore[typeddict-item]
    await remember(runtime.store, task["run_id"], [done])
    emit_answer(runtime, problem, update["answer"], "merge")
    return {"problems": {problem["id"]: update}, "usage": usage}
