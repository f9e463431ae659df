"""solve: answer one problem from its question, its evidence and earlier answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.runtime import Runtime

from lottery.graphs.context import Context
from lottery.graphs.state import Evidence, Problem, Task
from lottery.nodes import prompts
from lottery.nodes.events import emit_answer
from lottery.nodes.llm import Reply, complete, final_answer, majority, sample, system_user
from lottery.nodes.memory import remember

_MAX_EVIDENCE_CHARS = 1500


async def solve(task: Task, runtime: Runtime[Context]) -> dict[str, Any]:
    """The reply's ``Answer:`` line is the problem's answer (voted on over ``solve_samples``)."""
    ctx, problem = runtime.context, task["problem"]
    user = prompts.SOLVE_USER.format(
        evidence=_evidence_block(problem["evidence"]),
        related=_related_block(task["related"]),
        question=problem["question"],
    )
    messages = system_user(prompts.SOLVE_SYSTEM, user)
    if ctx.solve_samples > 1:
        reply = Reply()
        answer = await _self_consistent(ctx, messages, reply)
    else:
        reply = await complete(ctx, messages)
        answer = final_answer(reply.text)
    update = {"answer": answer, "status": "done",
              "calls": problem["calls"] + reply.usage["calls"]}
    done: Problem = {**problem, **update}  # type: ignore[typeddict-item]
    await remember(runtime.store, task["run_id"], [done])
    emit_answer(runtime, problem, update["answer"], "solve")
    return {"problems": {problem["id"]: update}, "usage": reply.usage}


async def _self_consistent(ctx: Context, messages: list[BaseMessage], reply: Reply) -> str:
    """Self-consistency: the final answer most of ``solve_samples`` replies agree on.

    One greedy reply and ``solve_samples - 1`` sampled ones (one request, shared prefill),
    sent together; equal answers meet by value (``42.0`` = ``$42``), and a tie goes to the
    greedy reply, the model's single best guess.
    """
    greedy, sampled = await asyncio.gather(
        sample(ctx, messages, 1, reply),
        sample(ctx, messages, ctx.solve_samples - 1, reply, temperature=ctx.solve_temperature))
    answers = [final_answer(t) for t in [*greedy, *sampled]]
    voted = majority(answers)
    return answers[voted[0] if voted else 0]


def _evidence_block(evidence: list[Evidence]) -> str:
    if not evidence:
        return ""
    items = "\n".join(
        f"[{i}] ({e['source']}) {_call_of(e)}{e['content'][:_MAX_EVIDENCE_CHARS]}"
        for i, e in enumerate(evidence, start=1)
    )
    return prompts.EVIDENCE_BLOCK.format(items=items)


def _call_of(evidence: Evidence) -> str:
    """A tool result's arguments, so the model sees what the number is the result of
    (``17 * 23 + 4 -> 395``, not a bare ``395``)."""
    if not evidence["source"].startswith("tool:") or not evidence.get("ref"):
        return ""
    try:
        args = json.loads(evidence["ref"])
    except (TypeError, ValueError):
        return ""
    shown = " ".join(str(v) for v in args.values()) if isinstance(args, dict) else str(args)
    return f"{shown[:200]} -> " if shown else ""


def _related_block(related: list[dict[str, str]]) -> str:
    if not related:
        return ""
    items = "\n".join(f"- {r['question']} -> {r['answer']}" for r in related)
    return prompts.RELATED_BLOCK.format(items=items)
