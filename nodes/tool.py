"""tool: make a typed call to one tool of C, run it, attach the result as evidence."""

from __future__ import annotations

import json
from typing import Any

from langgraph.runtime import Runtime

from lottery.errors import ToolArgumentsError, ToolNotFoundError
from lottery.graphs.context import Context
from lottery.graphs.state import Evidence, Task
from lottery.nodes import prompts
from lottery.nodes.llm import Reply, complete, extract_json_object, system_user


async def tool(task: Task, runtime: Runtime[Context]) -> dict[str, Any]:
    """Validate the planner's call (asking the model once for arguments if they fail), run it."""
    ctx, problem = runtime.context, task["problem"]
    call = dict(problem["tool_call"] or {})
    name, args = call.get("name", ""), call.get("args")
    registry = ctx.registry
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
            await complete(ctx, messages, json_schema=registry.args_schema(name), reply=reply)
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
