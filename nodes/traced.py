"""The node wrapper applied in ``build_graph``: each node's execution is a span in the
problem tree (see ``lottery/core/tracing.py`` for the trace's shape)."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from langgraph.runtime import get_runtime
from opentelemetry import trace
from opentelemetry.trace import Span

from lottery.core.context import Context
from lottery.core.tracing import Telemetry
from lottery.resources import Resources

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _context() -> Context | None:
    try:
        runtime = get_runtime()
    except RuntimeError:  # not inside a graph run
        return None
    context = getattr(runtime, "context", None)
    return context if isinstance(context, Context) else None


def _telemetry() -> Telemetry | None:
    ctx = _context()
    if ctx is None:
        return None
    tel = Resources.of(ctx).telemetry
    return tel if tel.enabled or tel.metrics_enabled else None


def traced(fn: F) -> F:
    """Wrap a node of Algorithm 1 so its execution is a span in the problem tree.

    ``schedule`` opens the run's span on the first step, ``finalize`` closes it;
    the step nodes (planner, retrieve, tool, solve, merge) each get a span under
    their problem's span. The node's signature is kept (LangGraph reads it).
    """
    step = fn.__name__

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        tel = _telemetry()
        if tel is None:
            return await fn(*args, **kwargs)
        if not tel.enabled:  # metrics only
            return await _untraced_step(tel, step, fn, args, kwargs)
        if step == "schedule":
            return await _schedule(tel, fn, args, kwargs)
        if step == "finalize":
            out = await fn(*args, **kwargs)
            tel.end_run(args[0].get("run_id") or "", {**args[0], **out})
            return out
        return await _step(tel, step, fn, args, kwargs)

    return wrapper  # type: ignore[return-value]


async def _schedule(tel: Telemetry, fn: Callable[..., Awaitable[Any]], args: tuple,
                    kwargs: dict) -> Any:
    state = args[0]
    if state.get("problems"):
        out = await fn(*args, **kwargs)
        if out.get("stop_reason") and state.get("run_id"):
            tel.run(state["run_id"]).span.add_event(
                "budget nearly spent", {"lottery.stop_reason": out["stop_reason"]})
        return out
    question = state.get("question")
    run = tel.start_run(question if isinstance(question, str) else None)
    try:
        out = await fn(*args, **kwargs)
    except BaseException as exc:
        tel.close(run, {}, exc)
        raise
    tel.register(str(out.get("run_id") or ""), run)
    return out


async def _untraced_step(tel: Telemetry, step: str, fn: Callable[..., Awaitable[Any]],
                         args: tuple, kwargs: dict) -> Any:
    start = time.perf_counter()
    out = await fn(*args, **kwargs)
    if step in ("retrieve", "tool"):
        problem = args[0]["problem"]
        update = (out.get("problems") or {}).get(problem["id"], {})
        _describe(tel, step, trace.INVALID_SPAN, problem, update, out, time.perf_counter() - start)
    return out


async def _step(tel: Telemetry, step: str, fn: Callable[..., Awaitable[Any]], args: tuple,
                kwargs: dict) -> Any:
    task = args[0]
    problem = task["problem"]
    pid = problem["id"]
    run = tel.run(task["run_id"])
    attrs: dict[str, Any] = {"lottery.node": step, "lottery.problem.id": pid,
                             "lottery.problem.depth": problem["depth"],
                             "lottery.run.id": task["run_id"]}
    if problem.get("parent") is not None:
        attrs["lottery.problem.parent_id"] = problem["parent"]
    if problem.get("decision"):
        attrs["lottery.problem.decision"] = problem["decision"]
    parent = tel.problem_context(run, pid)
    with tel.tracer.start_as_current_span(f"{step} {pid}", context=parent, attributes=attrs,
                                          record_exception=True, set_status_on_exception=True
                                          ) as span:
        start = time.perf_counter()
        out = await fn(*args, **kwargs)
        update = (out.get("problems") or {}).get(pid, {})
        _describe(tel, step, span, problem, update, out, time.perf_counter() - start)
    decision = update.get("decision") or problem.get("decision")
    problem_span = run.problems.get(pid)
    if problem_span is not None and decision:  # by the planner, or by a rule (depth limit)
        problem_span.set_attribute("lottery.problem.decision", decision)
        if tel.capture_content:
            problem_span.set_attribute("lottery.problem.question", problem["question"])
    if update.get("status") == "done":
        tel.end_problem(run, pid, "done")
    return out


def _describe(tel: Telemetry, step: str, span: Span, problem: dict[str, Any],
              update: dict[str, Any], out: dict[str, Any], seconds: float) -> None:
    """Node-specific attributes, read from the update the node returned."""
    calls = (out.get("usage") or {}).get("calls")
    if calls is not None:
        span.set_attribute("lottery.model_calls", calls)
    if step == "planner":
        if update.get("decision"):
            span.set_attribute("lottery.problem.decision", update["decision"])
        span.set_attribute("lottery.planner.fallback",
                           bool((out.get("usage") or {}).get("fallbacks")))
        span.set_attribute("lottery.problem.children", len(update.get("children") or []))
        if tel.capture_content and update.get("reason"):
            span.set_attribute("lottery.problem.reason", update["reason"])
    elif step == "retrieve":
        ctx = _context()
        kb = Resources.of(ctx).kb if ctx is not None else None
        added = (update.get("evidence") or [])[len(problem.get("evidence") or []):]
        backend = type(kb).__name__ if kb is not None else "unknown"
        attrs = {"lottery.retrieval.backend": backend,
                 "lottery.retrieval.mode": ctx.search_mode if ctx is not None else "unknown"}
        span.set_attributes({
            **attrs, "lottery.retrieval.k": ctx.top_k if ctx is not None else 0,
            "lottery.retrieval.knowledge_base": getattr(kb, "name", "") or "",
            "gen_ai.data_source.id": getattr(kb, "name", "") or "",
            "lottery.retrieval.hits": sum(1 for e in added if "ref" in e),
        })
        tel.retrieval_duration.record(seconds, attrs)
    elif step == "tool":
        tel.tool_executed((update.get("tool_call") or {}).get("result"), span)

