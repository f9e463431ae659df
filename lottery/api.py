"""The Python API: ``solve`` / ``asolve`` a question with Algorithm 1 or a baseline."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from lottery.errors import ConfigurationError, InputError, LotteryError, ModelServerError
from lottery.graphs import algorithm1, cot, direct
from lottery.graphs.context import Context
from lottery.graphs.retry import MODEL_RETRY
from lottery.graphs.state import Problem
from lottery.nodes.llm import is_transient
from lottery.nodes.schedule import ROOT, validate_question

Strategy = Literal["algorithm1", "direct", "cot"]

_BUILDERS = {"algorithm1": algorithm1.build_graph, "direct": direct.build_graph,
             "cot": cot.build_graph}


@dataclass(frozen=True, slots=True)
class RunUsage:
    """What a run cost."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_time_s: float = 0.0
    repairs: int = 0
    fallbacks: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class SolveResult:
    """The answer of a run, its problem tree and its usage."""

    question: str
    answer: str | None
    tree: dict[str, Problem]
    usage: RunUsage
    strategy: str
    run_id: str
    best_effort: bool = False
    stop_reason: str | None = None
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Problem:
        return self.tree[ROOT]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``lottery ask --json``)."""
        return {
            "question": self.question, "answer": self.answer, "strategy": self.strategy,
            "model": self.model, "run_id": self.run_id, "best_effort": self.best_effort,
            "stop_reason": self.stop_reason,
            "usage": {f.name: getattr(self.usage, f.name) for f in fields(RunUsage)},
            "tree": self.tree, **self.extra,
        }


def build_graph(strategy: Strategy = "algorithm1") -> StateGraph:
    """The uncompiled graph of a strategy (compile it with your own checkpointer/store)."""
    try:
        return _BUILDERS[strategy]()
    except KeyError:
        raise ConfigurationError(
            f"unknown strategy {strategy!r} (choose from {', '.join(_BUILDERS)})"
        ) from None


def make_context(context: Context | None = None, **settings: Any) -> Context:
    """A :class:`Context` from keyword settings (``None`` values mean 'default')."""
    known = {f.name for f in fields(Context)}
    unknown = set(settings) - known
    if unknown:
        raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    given = {k: v for k, v in settings.items() if v is not None}
    if context is not None:
        base = {f.name: getattr(context, f.name) for f in fields(Context)}
        return Context(**{**base, **given})
    return Context(**given)


async def asolve(
    question: str,
    *,
    strategy: Strategy = "algorithm1",
    context: Context | None = None,
    store: BaseStore | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    thread_id: str | None = None,
    **settings: Any,
) -> SolveResult:
    """Answer ``question`` with a small model driven by Algorithm 1 (or a baseline).

    Args:
        question: the question.
        strategy: ``algorithm1`` (default), ``direct`` or ``cot``.
        context: full settings; keyword ``settings`` (any :class:`Context` field, e.g.
            ``base_url``, ``model``, ``max_depth``, ``max_calls``, ``chat_model``,
            ``knowledge``, ``tools``) override it.
        store: memory M (a LangGraph ``BaseStore``); an in-memory one by default.
        checkpointer: makes the run durable and resumable under ``thread_id``.
        thread_id: id of the run (and of its checkpoint thread).

    With neither ``base_url`` (``LOTTERY_BASE_URL``) nor ``chat_model``, a local vLLM
    server for ``model`` is reused or started first (``autostart``; see ``lottery.serve``).

    Raises:
        InputError: the question is unusable.
        ConfigurationError: a setting is invalid, the model is unknown, or no model
            server is configured and ``autostart`` is off.
        ModelServerError: the model server could not be reached or kept failing.
    """
    ctx = make_context(context, **settings)
    question = validate_question(question, ctx.max_input_chars)
    if ctx.chat_model is None and not ctx.base_url and ctx.autostart:
        # The embedded default: a local vLLM server for ctx.model, started on first use.
        from lottery.serve import ensure_server

        ctx = make_context(ctx, base_url=await asyncio.to_thread(ensure_server, ctx.model))
    graph = build_graph(strategy).compile(checkpointer=checkpointer, store=store or InMemoryStore())
    config: dict[str, Any] = {"recursion_limit": algorithm1.RECURSION_LIMIT}
    if thread_id or checkpointer is not None:
        config["configurable"] = {"thread_id": thread_id or _new_id()}
    start = time.perf_counter()
    try:
        ctx.llm  # noqa: B018 - fail fast on a missing server setting
        run_input: dict[str, Any] | None = {"question": question}
        if checkpointer is not None:
            run_input = await _input_or_resume(graph, config, question)
        state = await graph.ainvoke(run_input, config=config, context=ctx)
    except LotteryError:
        raise
    except Exception as exc:
        if is_transient(exc) or type(exc).__module__.startswith("openai"):
            resume = (f"; once it is back, call again with thread_id={thread_id!r} to resume"
                      if checkpointer is not None and thread_id else "")
            how = (f"failed after {MODEL_RETRY.max_attempts} attempts" if is_transient(exc)
                   else "rejected the request")
            detail = (str(exc).splitlines() or [""])[0][:300]
            raise ModelServerError(
                f"model server at {ctx.base_url or 'the injected chat model'} {how}: "
                f"{type(exc).__name__}: {detail}{resume}"
            ) from exc
        raise
    finally:
        await ctx.aclose()
    return _result(state, strategy, ctx, time.perf_counter() - start,
                   thread_id=(config.get("configurable") or {}).get("thread_id"))


def solve(question: str, **kwargs: Any) -> SolveResult:
    """Synchronous :func:`asolve` (for scripts and notebooks without an event loop)."""
    return asyncio.run(asolve(question, **kwargs))


async def _input_or_resume(
    graph: Any, config: dict[str, Any], question: str
) -> dict[str, Any] | None:
    """``None`` (resume) when the thread holds an unfinished run of ``question``, else the input.

    An unfinished run (a failure or a cancellation left steps to do) continues from its
    last checkpoint: steps that finished are not run again, so no sub-problem is answered
    twice.
    """
    snapshot = await graph.aget_state(config)
    if not snapshot.next:
        if snapshot.values and snapshot.values.get("question") not in (None, question):
            raise InputError(
                f"thread {config['configurable']['thread_id']!r} already answered another "
                "question: use a new thread_id"
            )
        return {"question": question}
    if snapshot.values.get("question") != question:
        raise InputError(
            f"thread {config['configurable']['thread_id']!r} holds an unfinished run of another "
            "question: resume it with that question, or use a new thread_id"
        )
    return None


def _result(state: dict[str, Any], strategy: str, ctx: Context, wall: float,
            thread_id: str | None) -> SolveResult:
    u = state.get("usage") or {}
    problems = state.get("problems") or {}
    run_id = thread_id or state.get("run_id") or ""
    return SolveResult(
        question=state["question"], answer=state.get("answer"), tree=problems,
        usage=RunUsage(calls=u.get("calls", 0), prompt_tokens=u.get("prompt_tokens", 0),
                       completion_tokens=u.get("completion_tokens", 0), wall_time_s=wall,
                       repairs=u.get("repairs", 0), fallbacks=u.get("fallbacks", 0)),
        strategy=strategy, run_id=str(run_id), best_effort=bool(state.get("best_effort")),
        stop_reason=state.get("stop_reason"), model=ctx.model,
    )


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())
