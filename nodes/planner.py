"""planner: decide for one problem whether to solve, retrieve, use a tool, or divide."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from lottery.core.context import Context
from lottery.core.state import Problem, Task, new_problem
from lottery.nodes import prompts
from lottery.nodes.events import emit_decision
from lottery.nodes.llm import complete_structured, fit, room, system_user
from lottery.nodes.schemas import PlannerDecision, planner_json_schema
from lottery.resources import Resources

PLANNER_MAX_TOKENS = 256
"""A decision with six sub-questions fits; more is a model rambling inside its JSON."""


async def planner(task: Task, runtime: Runtime[Context]) -> dict[str, Any]:
    """Ask the model for a structured decision and apply it to the tree.

    Uses the run's model, its tool set (offered as tools) and its knowledge base (offered
    when it holds documents)."""
    ctx, problem = runtime.context, task["problem"]
    res = Resources.of(ctx)
    allow_divide = problem["depth"] < task.get("max_depth", ctx.max_depth)
    divide_only = problem.get("rung") == "divide"  # a policy's divide rung
    has_tools = len(res.registry) > 0 and not divide_only
    has_knowledge = await res.has_knowledge(task.get("knowledge_base")) and not divide_only
    system = prompts.DIVIDE_SYSTEM.format(max_fanout=ctx.max_fanout) if divide_only else \
        prompts.PLANNER_SYSTEM.format(
        retrieve_line=prompts.PLANNER_RETRIEVE_LINE if has_knowledge else "",
        tool_line=prompts.PLANNER_TOOL_LINE if has_tools else "",
        max_fanout=ctx.max_fanout,
        resources=_resources(res, has_tools, task.get("knowledge_base"), has_knowledge),
        examples=_examples(res, allow_divide, has_knowledge),
    )
    goal_line = ""
    if problem["depth"]:  # the root question, shortened to fit the window: it is background
        fixed = prompts.GOAL_LINE.format(goal="") + problem["question"]
        (goal,) = fit([task["goal"]], room(ctx, system, fixed, max_tokens=PLANNER_MAX_TOKENS))
        goal_line = prompts.GOAL_LINE.format(goal=goal)
    messages = system_user(
        system, prompts.PLANNER_USER.format(goal_line=goal_line, question=problem["question"]))
    decision, reply, error = await complete_structured(
        res, messages, PlannerDecision, allowance=task["allowance"],
        json_schema=planner_json_schema(allow_divide=allow_divide, tools=has_tools,
                                        max_fanout=ctx.max_fanout, retrieve=has_knowledge,
                                        divide_only=divide_only),
        max_tokens=PLANNER_MAX_TOKENS,
    )
    usage = dict(reply.usage)
    if decision is None:
        usage["fallbacks"] = usage.get("fallbacks", 0) + 1
        updates = {problem["id"]: _solve(problem, f"planner output unusable ({error}): solving directly")}
    else:
        updates = apply_decision(problem, decision, res, allow_divide=allow_divide,
                                 allow_retrieve=has_knowledge)
    if divide_only and updates[problem["id"]].get("decision") != "divide":
        # no usable split: back in doubt with the answers it had; the ladder goes on
        updates = {problem["id"]: {"status": "doubt", "reason": (
            f"{problem.get('reason', '')} | no usable split: "
            f"{updates[problem['id']].get('reason', error)}").strip(" |")}}
    updates[problem["id"]]["calls"] = problem["calls"] + reply.usage["calls"]
    emit_decision(runtime, problem, updates)
    return {"problems": updates, "usage": usage}


def apply_decision(
    problem: Problem, decision: PlannerDecision, res: Resources, *, allow_divide: bool,
    allow_retrieve: bool,
) -> dict[str, dict[str, Any]]:
    """Tree updates for a decision; impossible decisions become a direct solve."""
    ctx, pid = res.settings, problem["id"]
    reason = decision.reason.strip()
    if decision.action == "retrieve" and not allow_retrieve:
        return {pid: _solve(problem, "the knowledge base is empty: solving directly")}
    if decision.action == "retrieve":
        query = (decision.query or "").strip() or problem["question"]
        return {pid: {"decision": "retrieve", "reason": reason, "query": query, "status": "retrieve"}}
    if decision.action == "tool":
        if not decision.tool or decision.tool not in res.registry:
            return {pid: _solve(problem, f"unknown tool {decision.tool!r}: solving directly")}
        args = decision.tool_input or {}
        call = {"name": decision.tool, "args": args.get("__text__", args)}
        return {pid: {"decision": "tool", "reason": reason, "tool_call": call, "status": "tool"}}
    if decision.action == "divide":
        # Blank sub-questions are dropped; the rest are cut to the fan-out limit and their
        # questions to the input limit, so a runaway divide cannot flood the tree.
        asked = [(n, s) for n, s in enumerate(decision.subproblems, start=1)
                 if s.question.strip() and not prompts.is_example(s.question)]
        subs = asked[: ctx.max_fanout]
        if not allow_divide or len(subs) < 2:
            why = "depth limit" if not allow_divide else "fewer than 2 sub-problems"
            return {pid: _solve(problem, f"divide refused ({why}): solving directly")}
        if len(asked) > len(subs):
            reason = f"{reason} [fan-out limit: kept {len(subs)} of {len(asked)} sub-problems]".strip()
        updates: dict[str, dict[str, Any]] = {}
        child_of = {n: f"{pid}.{i}" for i, (n, _) in enumerate(subs, start=1)}
        for n, sub in subs:
            # Only earlier siblings count: a reference to itself or a later one would be a cycle.
            deps = sorted({child_of[d] for d in sub.depends_on if d in child_of and d < n})
            updates[child_of[n]] = dict(new_problem(
                child_of[n], sub.question.strip()[: ctx.max_input_chars], parent=pid,
                depth=problem["depth"] + 1, depends_on=deps,
            ))
        children = list(child_of.values())
        updates[pid] = {"decision": "divide", "reason": reason, "children": children,
                        "status": "divided"}
        return updates
    return {pid: {"decision": "solve", "reason": reason, "status": "solve"}}


def _solve(problem: Problem, reason: str) -> dict[str, Any]:
    return {"decision": "solve", "reason": reason, "status": "solve"}


def _examples(res: Resources, allow_divide: bool, has_knowledge: bool) -> str:
    shown = ["solve", *(["retrieve"] if has_knowledge else []),
             *(t for t in res.registry.names() if t in prompts.PLANNER_EXAMPLES)]
    if allow_divide:
        shown.append("divide")
    return "\n".join(prompts.PLANNER_EXAMPLES[k] for k in shown)


def _resources(res: Resources, has_tools: bool, knowledge_base: str | None,
               has_knowledge: bool) -> str:
    ctx = res.settings
    about = f" ({ctx.knowledge_description})" if ctx.knowledge_description else ""
    lines = [f"Knowledge base: {knowledge_base or ctx.knowledge_base!r}{about}."] if has_knowledge else []
    if has_tools:
        lines.append("Tools:\n" + res.registry.describe())
    return "".join(f"{line}\n" for line in lines)
