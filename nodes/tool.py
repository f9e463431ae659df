"""tool: make a typed call to one tool of C, run it, attach the result as evidence.

Only the tool the planner chose runs: the name comes from the problem's
``tool_call`` (set by the planner), never from evidence or documents. Program
tools (``python``, ``logic``) get their program from a separate model call
(see :mod:`lottery.nodes.programs`); their voted executed answer answers the
problem directly. Other tools' results go to ``solve`` as evidence.
"""

from __future__ import annotations

import json
from typing import Any

from langgraph.runtime import Runtime

from lottery.core.context import Context
from lottery.core.state import Evidence, Problem, Task
from lottery.errors import ToolArgumentsError, ToolNotFoundError
from lottery.nodes import prompts
from lottery.nodes.llm import Reply, complete, extract_json_object, system_user
from lottery.nodes.memory import remember
from lottery.nodes.programs import ARG_NAME, run_programs
from lottery.resources import Resources


async def tool(task: Task, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run the planner's tool call (a program tool writes its program first).

    Uses the run's tool set and, for arguments or a program, its model."""
    problem, res = task["problem"], Resources.of(runtime.context)
    name = (problem["tool_call"] or {}).get("name", "")
    if name in ARG_NAME and name in res.registry:
        return await _program_tool(task, runtime, name)
    return await _plain_tool(task, res)


async def _program_tool(task: Task, runtime: Runtime[Context], name: str) -> dict[str, Any]:
    problem = task["problem"]
    out = await run_programs(Resources.of(runtime.context), name, problem["question"], task["related"],
                             allowance=task["allowance"])
    candidates = [{"ok": r.ok, "answer": r.output if r.ok else None, "error": r.error}
                  for r in out.runs]
    call = {"name": name, "args": {ARG_NAME[name]: out.program or ""},
            "result": {"tool": name, "ok": out.answer is not None, "output": out.answer or "",
                       "votes": out.votes, "candidates": candidates}}
    if out.answer is not None:
        content = out.summary
    else:
        errors = "; ".join(sorted({c["error"] or "no output" for c in candidates})) or "no program"
        content = f"error: no program ran: {errors}"[:1500]
    evidence = Evidence(source=f"tool:{name}", content=content, ref=out.program or "",
                        ok=out.answer is not None)
    update: dict[str, Any] = {"tool_call": call, "evidence": problem["evidence"] + [evidence],
                              "calls": problem["calls"] + out.reply.usage["calls"]}
    if out.answer is not None:  # the executed, voted answer is the answer
        update.update(answer=out.answer, status="done")
        done: Problem = {**problem, **update}  # type: ignore[typeddict-item]
        await remember(runtime.store, task["run_id"], [done])
    else:  # nothing ran: solve it in words, with the errors as evidence
        update["status"] = "solve"
    return {"problems": {problem["id"]: update}, "usage": out.reply.usage}


async def _plain_tool(task: Task, res: Resources) -> dict[str, Any]:
    """Validate the planner's call (asking the model once for arguments if they fail), run it."""
    problem = task["problem"]
    call = dict(problem["tool_call"] or {})
    name, args = call.get("name", ""), call.get("args")
    registry = res.registry
    reply = Reply()
    try:
        try:
            args = registry.validate(name, args)
        except ToolArgumentsError as first_error:
            if task["allowance"] < 1:
                raise
            messages = system_user(
                prompts.TOOL_ARGS_SYSTEM.format(
                    tool=name, description=registry.get(name).description,
                    schema=json.dumps(registry.args_schema(name)),
                ),
                f"Question: {problem['question']}\n(The first arguments failed: {first_error})",
            )
            await complete(res, messages, json_schema=registry.args_schema(name), reply=reply)
            args = registry.validate(name, extract_json_object(reply.text))
        result = await registry.arun(name, args)
        call.update(args=args, result=result.as_dict())
        content = result.output if result.ok else f"error: {result.error}"
        evidence = Evidence(source=f"tool:{name}", content=content,
                            ref=json.dumps(args, default=str), ok=result.ok)
    except (ToolNotFoundError, ToolArgumentsError) as exc:
        call.update(result={"tool": name, "ok": False, "error": str(exc)})
        evidence = Evidence(source=f"tool:{name}", content=f"error: {exc}", ok=False)
    update = {"tool_call": call, "evidence": problem["evidence"] + [evidence], "status": "solve",
              "calls": problem["calls"] + reply.usage["calls"]}
    return {"problems": {problem["id"]: update}, "usage": reply.usage}
