"""The Python API: ``solve`` / ``asolve`` a question with Algorithm 1 or a baseline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from lottery.core.context import Context
from lottery.core.state import Problem, Usage
from lottery.errors import (
    ConfigurationError,
    InputError,
    LotteryError,
    ModelRequestError,
    ModelServerError,
    RunConflictError,
    RunNotFoundError,
)
from lottery.graphs import algorithm1, cot, direct, pal
from lottery.graphs.retry import MODEL_RETRY
from lottery.nodes.llm import is_transient
from lottery.nodes.policy import validate as validate_policy
from lottery.nodes.schedule import ROOT, validate_question
from lottery.resources import Resources
from lottery.stores.sql import RunStore, SqlMemory, make_owner, open_memory
from lottery.tools.program import PROGRAM_TOOLS
from lottery.tools.sandbox import ensure_available

Strategy = Literal["algorithm1", "direct", "cot", "pal"]

_BUILDERS = {"algorithm1": algorithm1.build_graph, "direct": direct.build_graph,
             "cot": cot.build_graph, "pal": pal.build_graph}


@dataclass(frozen=True, slots=True)
class RunUsage:
    """What a run cost: the run's :class:`~lottery.core.state.Usage` counters (the one
    definition; a test holds the two together) and its wall time."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_time_s: float = 0.0
    repairs: int = 0
    fallbacks: int = 0
    reuse_hits: int = 0
    """Sub-problems answered from memory M without model calls."""
    saved_calls: int = 0
    """Model calls those reused answers had cost when first solved."""
    delegate_calls: int = 0
    """Calls to the delegate model (also counted in ``calls``)."""
    delegate_prompt_tokens: int = 0
    """Prompt tokens of those calls (also counted in ``prompt_tokens``)."""
    delegate_completion_tokens: int = 0
    """Completion tokens of those calls (also counted in ``completion_tokens``)."""

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
    """True when the answer is not an accepted one: the budget ended the run, or under a
    policy the answer failed its check on every rung (``lottery ask`` exits with 3)."""
    stop_reason: str | None = None
    model: str = ""
    confidence: float | None = None
    """The answer's confidence in [0, 1] (``None`` under the ``planner`` policy and the
    baselines)."""
    policy: str | None = None
    """The policy the run followed (``auto`` resolved: ``math``, ``logic``, ...)."""
    delegate_model: str | None = None
    """The delegate model, when one was configured."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Problem:
        return self.tree[ROOT]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``lottery ask --json``)."""
        return {
            "question": self.question, "answer": self.answer, "strategy": self.strategy,
            "model": self.model, "run_id": self.run_id, "best_effort": self.best_effort,
            "stop_reason": self.stop_reason, "confidence": self.confidence,
            "policy": self.policy, "delegate_model": self.delegate_model,
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
        ctx = Context(**{**base, **given})
    else:
        ctx = Context(**given)
    validate_policy(ctx.policy)
    return ctx


def make_resources(context: Context | None = None, **kwargs: Any) -> Resources:
    """The run's :class:`~lottery.resources.Resources`: keyword objects (``chat_model``,
    ``knowledge``, ``tools``, ...) injected, keyword settings over ``context``."""
    objects = {k: kwargs.pop(k) for k in list(kwargs) if k in Resources.INJECTABLE}
    return Resources(settings=make_context(context, **kwargs), **objects)


async def asolve(
    question: str,
    *,
    strategy: Strategy = "algorithm1",
    context: Context | None = None,
    store: BaseStore | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
    thread_id: str | None = None,
    memory: SqlMemory | None = None,
    durable: bool = True,
    database_url: str | None = None,
    document: str | None = None,
    on_event: Callable[[dict[str, Any]], Any] | None = None,
    **settings: Any,
) -> SolveResult:
    """Answer ``question`` with a small model driven by Algorithm 1 (or a baseline).

    By default the run is durable: memory M, checkpoints and the run record live in
    the SQL database (``LOTTERY_DATABASE_URL``, else SQLite under ``LOTTERY_HOME``),
    so a run that is killed can be resumed under its ``run_id`` and later runs reuse
    its answered sub-problems.

    Args:
        question: the question.
        strategy: ``algorithm1`` (default), ``direct``, ``cot`` or ``pal`` (one executed program).
        context: full settings; keyword ``settings`` (any :class:`Context` field, e.g.
            ``base_url``, ``model``, ``max_depth``, ``max_calls``, ``reuse``,
            ``reuse_ttl_s``) override it; keyword objects (``chat_model``,
            ``delegate_chat_model``, ``knowledge``, ``tools``, ``embeddings``,
            ``tracer_provider``, ``meter_provider``) are the run's
            :class:`~lottery.resources.Resources` instead of the ones built from settings.
        store: memory M (a LangGraph ``BaseStore``); with ``checkpointer`` and no
            ``memory``, the run is not recorded in the SQL database.
        checkpointer: makes the run durable and resumable under ``thread_id``.
        thread_id: id of the run (and of its checkpoint thread). An unfinished run
            with this id is resumed where it stopped; a finished one is returned as is.
        memory: an open :class:`~lottery.stores.sql.SqlMemory` to use.
        durable: ``False`` runs in memory only (no database, nothing recorded).
        database_url: the database to open instead of the default one.
        document: material the question is about; over ``context_budget`` tokens only its
            pieces relevant to the question reach the model (algorithm1 only).
            (:mod:`lottery.nodes.events`); :func:`astream_events` yields them instead.

    With neither ``base_url`` (``LOTTERY_BASE_URL``) nor ``chat_model``, a local vLLM
    server for ``model`` is reused or started first (``autostart``; see ``lottery.serve``).

    Raises:
        InputError: the question is unusable, or ``thread_id`` names a run of another question.
        ConfigurationError: a setting is invalid, the model is unknown, or no model
            server is configured and ``autostart`` is off.
        ModelServerError: the model server could not be reached or kept failing.
        SandboxUnavailableError: the sandbox is strict and this kernel cannot confine the
            program tools (``lottery tools doctor``); nothing ran.
        StoreError: the database is unusable, or another process is writing the same run.
    """
    res = make_resources(context, **settings)
    ctx = res.settings
    question = validate_question(question, ctx.max_input_chars)
    if strategy in ("algorithm1", "pal") and any(name in res.registry for name in PROGRAM_TOOLS):
        ensure_available()  # strict sandbox on a kernel that cannot confine: stop before any call
    if res.chat_model is None and not ctx.base_url and ctx.autostart:
        # The embedded default: a local model server for ctx.model, started on first use.
        from lottery.engines.server import ensure_server

        url = await asyncio.to_thread(ensure_server, ctx.model, engine=ctx.engine or None)
        res = replace(res, settings=make_context(ctx, base_url=url))
    if memory is None and durable and store is None and checkpointer is None:
        async with open_memory(database_url) as opened:
            return await _durable_run(opened, question, strategy, res, thread_id,
                                      document=document, on_event=on_event)
    if memory is not None:
        return await _durable_run(memory, question, strategy, res, thread_id, document=document,
                                  on_event=on_event, store=store, checkpointer=checkpointer)
    graph = build_graph(strategy).compile(checkpointer=checkpointer, store=store or InMemoryStore())
    config: dict[str, Any] = {"recursion_limit": algorithm1.RECURSION_LIMIT}
    if thread_id or checkpointer is not None:
        config["configurable"] = {"thread_id": thread_id or _new_id()}
    start = time.perf_counter()
    try:
        with _model_errors(res, thread_id if checkpointer is not None else None):
            res.llm  # noqa: B018 - fail fast on a missing server setting
            run_input: dict[str, Any] | None = _inputs(question, document)
            if checkpointer is not None:
                run_input = await _input_or_resume(graph, config, run_input)
            state = await _drive(graph, run_input, config, res.settings, on_event)
    finally:
        await res.aclose()
    return _result(state, strategy, res, time.perf_counter() - start,
                   thread_id=(config.get("configurable") or {}).get("thread_id"))


async def aresume(run_id: str, *, memory: SqlMemory | None = None,
                  database_url: str | None = None, **settings: Any) -> SolveResult:
    """Finish an interrupted run (killed, server gone) from its last checkpoint.

    Sub-problems that had finished are not solved again. The run's stored settings
    are used; keyword ``settings`` override them (e.g. ``base_url``), and keyword objects
    are injected as in :func:`asolve` (e.g. ``chat_model``).

    Raises:
        RunNotFoundError: no run with this id is stored.
        RunConflictError: another live process is still writing it.
    """
    if memory is None:
        async with open_memory(database_url) as opened:
            return await aresume(run_id, memory=opened, **settings)
    run = await memory.runs.call(memory.runs.get_run, run_id)
    stored = {k: v for k, v in (run.get("settings") or {}).items() if k in _CONTEXT_FIELDS}
    return await asolve(run["question"], strategy=run["strategy"], thread_id=run_id,
                        memory=memory, **{**stored, **settings})


def resume(run_id: str, **kwargs: Any) -> SolveResult:
    """Synchronous :func:`aresume`."""
    return asyncio.run(aresume(run_id, **kwargs))


async def _durable_run(memory: SqlMemory, question: str, strategy: str, res: Resources,
                       thread_id: str | None, *, document: str | None = None,
                       on_event: Callable[[dict[str, Any]], Any] | None = None,
                       store: BaseStore | None = None,
                       checkpointer: BaseCheckpointSaver | None = None) -> SolveResult:
    """Run (or resume) with checkpoints, memory M and the run record in ``memory``."""
    ctx, runs, run_id = res.settings, memory.runs, thread_id or _new_id()
    graph = build_graph(strategy).compile(checkpointer=checkpointer or memory.checkpointer,
                                          store=store or memory.store)
    config: dict[str, Any] = {"recursion_limit": algorithm1.RECURSION_LIMIT,
                              "configurable": {"thread_id": run_id}}
    snapshot = await graph.aget_state(config)
    values = snapshot.values or {}
    if values and values.get("question") != question:
        raise InputError(f"run {run_id} answers another question ({values.get('question')!r}): "
                         "use a new thread_id")
    finished = bool(values) and not snapshot.next
    if finished:
        stored = await runs.call(_run_or_none, runs, run_id)
        if stored is not None and stored["status"] == "done":
            return _result(values, strategy, res, 0.0, thread_id=run_id)
    owner = make_owner()
    await runs.call(runs.claim, run_id, owner, question=question, strategy=strategy,
                    model=ctx.model, knowledge_base=ctx.knowledge_base, settings=_settings_of(ctx))
    recorder = _Recorder(runs, run_id, owner, await runs.call(runs.problem_stats, run_id))
    start = time.perf_counter()
    try:
        if finished:  # the graph finished but its record did not (killed in between)
            state = values
            await recorder.values(state)
        else:
            with _model_errors(res, run_id):
                res.llm  # noqa: B018 - fail fast on a missing server setting
                state = {}
                async for mode, chunk in graph.astream(
                    None if values else _inputs(question, document), config=config, context=ctx,
                    stream_mode=["updates", "values", "custom"], durability="sync",
                ):
                    if mode == "custom":
                        if on_event is not None:
                            on_event(chunk)
                    elif mode == "updates":
                        recorder.updates(chunk)
                    else:
                        state = chunk
                        await recorder.values(chunk)
    except RunConflictError:
        raise
    except BaseException as exc:
        await _record_stop(memory, run_id, owner, exc, recorder.usage)
        raise
    finally:
        await res.aclose()
    result = _result(state, strategy, res, time.perf_counter() - start, thread_id=run_id)
    await runs.call(runs.finish, run_id, owner, status="done", answer=result.answer,
                    best_effort=result.best_effort, stop_reason=result.stop_reason,
                    usage=state.get("usage") or {})
    return result


async def _record_stop(memory: SqlMemory, run_id: str, owner: str, exc: BaseException,
                       usage: dict[str, int]) -> None:
    """Mark a run that stopped on ``exc`` failed or interrupted, without hiding ``exc``.

    A cancelled run may have left a checkpoint write open: it is rolled back first (the
    record write would otherwise wait for it and fail). Shielded, so a second
    cancellation cannot cut the record short. If the record cannot be written, whatever
    the reason, ``exc`` still propagates, with a note: the run stays resumable from its
    checkpoints.
    """
    status = "failed" if isinstance(exc, Exception) else "interrupted"

    async def record() -> None:
        await memory.settle()
        await memory.runs.call(memory.runs.finish, run_id, owner, status=status,
                               error=f"{type(exc).__name__}: {exc}"[:2000], usage=usage)

    try:
        await asyncio.shield(record())
    except (Exception, asyncio.CancelledError) as failed:  # noqa: BLE001 - never hide exc
        exc.add_note(f"run {run_id} could not be marked {status} ({failed}); "
                     f"it can still be resumed")


class _Recorder:
    """Writes a run's tree to the run record after every step: changed problems,
    per-problem tokens and timings, the run's usage."""

    def __init__(self, runs: RunStore, run_id: str, owner: str,
                 stats: dict[str, dict[str, Any]]) -> None:
        self.runs, self.run_id, self.owner = runs, run_id, owner
        self.tree: dict[str, Any] = {}
        self.usage: dict[str, int] = {}
        self.times = {pid: (s.get("started_at"), s.get("finished_at")) for pid, s in stats.items()}
        self.tokens = {pid: (s.get("prompt_tokens") or 0, s.get("completion_tokens") or 0)
                       for pid, s in stats.items()}

    def updates(self, chunk: dict[str, Any]) -> None:
        """Charge a step's tokens to the one problem whose calls it counted."""
        for update in chunk.values():
            if not isinstance(update, dict):
                continue
            usage = update.get("usage") or {}
            # The acting problem counts its calls; new sub-problems of a divide start at 0.
            charged = [pid for pid, u in (update.get("problems") or {}).items() if u.get("calls")]
            if charged and usage:
                pid = min(charged, key=len)
                p, c = self.tokens.get(pid, (0, 0))
                self.tokens[pid] = (p + usage.get("prompt_tokens", 0),
                                    c + usage.get("completion_tokens", 0))

    async def values(self, state: dict[str, Any]) -> None:
        """Write what changed since the last step."""
        tree = state.get("problems") or {}
        self.usage = dict(state.get("usage") or {})
        changed = {pid: p for pid, p in tree.items() if self.tree.get(pid) != p}
        now = time.time()
        for pid, p in changed.items():
            started, done = self.times.get(pid, (None, None))
            self.times[pid] = (started or now, done or (now if p.get("status") == "done" else None))
        if changed or not self.tree:
            await self.runs.call(self.runs.save_progress, self.run_id, self.owner, changed,
                                 self.usage, times=self.times, tokens=self.tokens)
        self.tree = tree


@contextlib.contextmanager
def _model_errors(res: Resources, resume_id: str | None = None) -> Iterator[None]:
    """Server failures as :class:`ModelServerError`; framework errors pass unchanged."""
    try:
        yield
    except BaseException as exc:
        if "telemetry" in res.__dict__:  # close the run's spans, marked with the error
            res.telemetry.abort(exc)
        if isinstance(exc, LotteryError) or not isinstance(exc, Exception):
            raise
        import openai  # loaded by then: only a model call raises its errors

        # langchain-openai re-raises the client's errors as its own subclasses of them.
        if is_transient(exc) or isinstance(exc, openai.OpenAIError):
            resume = (f"; once it is back, resume with `lottery resume {resume_id}` (or "
                      f"thread_id={resume_id!r})" if resume_id else "")
            how = (f"failed after {MODEL_RETRY.max_attempts} attempts" if is_transient(exc)
                   else "rejected the request")
            detail = (str(exc).splitlines() or [""])[0][:300]
            refused = isinstance(exc, openai.APIStatusError) and 400 <= exc.status_code < 500
            raise (ModelRequestError if refused else ModelServerError)(
                f"model server at {res.settings.base_url or 'the injected chat model'} {how}: "
                f"{type(exc).__name__}: {detail}{'' if refused else resume}"
            ) from exc
        raise


def _run_or_none(runs: RunStore, run_id: str) -> dict[str, Any] | None:
    try:
        return runs.get_run(run_id)
    except RunNotFoundError:
        return None


_CONTEXT_FIELDS = {f.name for f in fields(Context)}
_NOT_RECORDED = {"api_key", "delegate_api_key"}
"""Secrets: never written to the run record."""


def _settings_of(ctx: Context) -> dict[str, Any]:
    """The run's settings as recorded (secrets left out)."""
    return {f.name: getattr(ctx, f.name) for f in fields(Context) if f.name not in _NOT_RECORDED}


def _inputs(question: str, document: str | None) -> dict[str, Any]:
    """The graph input: the question, and the material it is about when there is some."""
    return {"question": question, "context": document} if document else {"question": question}


async def astream_events(question: str, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
    """Like :func:`asolve` (same arguments, same errors), yielding progress as it happens.

    Yields ``{"event": "decision", ...}`` and ``{"event": "answer", ...}`` dicts
    (see :mod:`lottery.nodes.events`) while the run works, then one
    ``{"event": "result", "result": SolveResult}``. Leaving the loop early cancels the run
    (deterministically when iterated inside ``contextlib.aclosing``).

    Example:
        >>> async for event in astream_events("What is 17 * 23 + 4?", base_url=url):
        ...     print(event["event"], event.get("problem"), event.get("decision") or "")
    """
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    run = asyncio.create_task(asolve(question, on_event=queue.put_nowait, **kwargs))
    run.add_done_callback(lambda _: queue.put_nowait(None))
    try:
        while (event := await queue.get()) is not None:
            yield event
        yield {"event": "result", "result": run.result()}
    finally:
        if not run.done():
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run


async def _drive(graph: Any, run_input: dict[str, Any] | None, config: dict[str, Any], ctx: Context,
                 on_event: Callable[[dict[str, Any]], Any] | None) -> dict[str, Any]:
    """Run the graph to its final state, handing each progress event to ``on_event``."""
    if on_event is None:
        return await graph.ainvoke(run_input, config=config, context=ctx)
    state: dict[str, Any] = {}
    async for mode, chunk in graph.astream(run_input, config=config, context=ctx,
                                           stream_mode=["custom", "values"]):
        if mode == "values":
            state = chunk
        else:
            on_event(chunk)
    return state


def solve(question: str, **kwargs: Any) -> SolveResult:
    """Synchronous :func:`asolve` (for scripts and notebooks without an event loop)."""
    return asyncio.run(asolve(question, **kwargs))


async def _input_or_resume(
    graph: Any, config: dict[str, Any], inputs: dict[str, Any]
) -> dict[str, Any] | None:
    """``None`` (resume) when the thread holds an unfinished run of ``question``, else the input.

    An unfinished run (a failure or a cancellation left steps to do) continues from its
    last checkpoint: steps that finished are not run again, so no sub-problem is answered
    twice.
    """
    question = inputs["question"]
    snapshot = await graph.aget_state(config)
    if not snapshot.next:
        if snapshot.values and snapshot.values.get("question") not in (None, question):
            raise InputError(
                f"thread {config['configurable']['thread_id']!r} already answered another "
                "question: use a new thread_id"
            )
        return inputs
    if snapshot.values.get("question") != question:
        raise InputError(
            f"thread {config['configurable']['thread_id']!r} holds an unfinished run of another "
            "question: resume it with that question, or use a new thread_id"
        )
    return None


def _result(state: dict[str, Any], strategy: str, res: Resources, wall: float,
            thread_id: str | None) -> SolveResult:
    ctx = res.settings
    u = state.get("usage") or {}
    problems = state.get("problems") or {}
    run_id = thread_id or state.get("run_id") or ""
    return SolveResult(
        question=state["question"], answer=state.get("answer"), tree=problems,
        usage=RunUsage(wall_time_s=wall, **{k: u.get(k, 0) for k in Usage.__annotations__}),
        strategy=strategy, run_id=str(run_id), best_effort=bool(state.get("best_effort")),
        stop_reason=state.get("stop_reason"), model=ctx.model,
        confidence=state.get("confidence"), policy=state.get("policy"),
        delegate_model=(ctx.delegate_model or None) if res.can_delegate else None,
    )


def _new_id() -> str:
    import uuid

    return str(uuid.uuid4())
