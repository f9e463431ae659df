"""OpenTelemetry spans that mirror the problem tree, and a few metrics beside them.

The trace of one Algorithm 1 run::

    invoke_agent algorithm1                    the run
    └─ problem 0                               one span per problem, across supersteps
       ├─ planner 0                            one span per node execution
       │  └─ chat qwen2.5-coder-0.5b-instruct  one GenAI inference span per model call
       ├─ problem 0.1                          sub-problems under their parent problem,
       │  ├─ planner 0.1 ─ chat …              even when siblings ran in parallel
       │  ├─ tool 0.1 ─ execute_tool calculator
       │  └─ solve 0.1 ─ chat …
       ├─ problem 0.2 …
       └─ merge 0 ─ chat …

A problem lives through several supersteps, and graph state must stay
serialisable, so live spans never enter the state: they stay in the
:class:`Telemetry` object of the run (``Resources.telemetry``, built once per run,
``lottery/resources.py``), keyed by run id and problem id.
Problem spans are parented by id (``0.2.1`` under ``0.2``), which is why
parallel ``Send`` branches land in the right place.

The tracer and meter come from the run's injected ``tracer_provider`` /
``meter_provider``, else from the global OpenTelemetry API. Nothing here ever
sets a global provider. With no provider configured, tracing is off and a
node costs one attribute lookup more.

Prompt and completion text are recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is true.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from langgraph.config import get_config
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

    from lottery.core.context import Context

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""The standard opt-in switch for recording prompt and completion text."""

SCOPE = "lottery"
"""Instrumentation scope name of every span and metric."""

_CAPTURE_ON = {"1", "true", "yes", "on", "span_only", "span_and_event"}



def capture_content_from_env() -> bool:
    """Whether ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` opts in to content."""
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in _CAPTURE_ON


def _is_noop(provider: Any) -> bool:
    # The API's default provider is a proxy until an application sets a real one.
    return isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


@dataclass(slots=True)
class _Run:
    span: Span
    problems: dict[str, Span] = field(default_factory=dict)


class Telemetry:
    """Tracer, meter and instruments of one run context, and the open spans of its runs."""

    def __init__(
        self, *, tracer_provider: Any = None, meter_provider: Any = None, model: str = "",
        provider_name: str = "openai", server_url: str | None = None,
        agent_name: str = "algorithm1", capture_content: bool | None = None,
    ) -> None:
        tp = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        mp = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self.enabled = not _is_noop(tp)
        """False when no tracer provider is configured: no spans are made at all."""
        self.metrics_enabled = not (isinstance(mp, metrics.NoOpMeterProvider)
                                    or type(mp).__name__ == "_ProxyMeterProvider")
        """False when no meter provider is configured."""
        self.capture_content = (capture_content_from_env() if capture_content is None
                                else capture_content)
        self.tracer = tp.get_tracer(SCOPE)
        self.model, self.provider_name, self.agent_name = model, provider_name, agent_name
        self._server: dict[str, Any] = {}
        if server_url:
            parts = urlsplit(server_url)
            if parts.hostname:
                self._server["server.address"] = parts.hostname
                self._server["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
        # Instruments made on the API's proxy meter are kept by it for ever: one set per run
        # would leak in a long-lived server, so an unconfigured meter gets no-op instruments.
        meter = mp.get_meter(SCOPE) if self.metrics_enabled else metrics.NoOpMeter(SCOPE)
        self.operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s",
            description="Duration of model calls (GenAI semantic conventions).",
            explicit_bucket_boundaries_advisory=[
                0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96,
                81.92],
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}",
            description="Tokens per model call, by gen_ai.token.type (input or output).",
            explicit_bucket_boundaries_advisory=[
                1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576],
        )
        self.model_calls = meter.create_counter(
            "lottery.model.calls", unit="{call}", description="Model calls, by node.")
        self.tool_errors = meter.create_counter(
            "lottery.tool.errors", unit="{error}",
            description="Tool calls that failed (bad arguments, unknown tool, or the tool failed).")
        self.retrieval_duration = meter.create_histogram(
            "lottery.retrieval.duration", unit="s",
            description="Latency of knowledge-base searches.")
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_run(cls, settings: Context, *, chat_model: Any = None, tracer_provider: Any = None,
                meter_provider: Any = None) -> Telemetry:
        """The telemetry of a run: its providers and what it knows of the model."""
        model, server, provider = settings.model, settings.base_url, "openai"
        if chat_model is not None:
            model = getattr(chat_model, "model_name", None) or getattr(chat_model, "model",
                                                                       None) or model
            server = getattr(chat_model, "openai_api_base", None) or None
            if type(chat_model).__name__ != "ChatOpenAI":
                provider = getattr(chat_model, "_llm_type", None) or type(chat_model).__name__
        return cls(tracer_provider=tracer_provider, meter_provider=meter_provider,
                   model=str(model), provider_name=str(provider), server_url=server)

    # -- the run and its problems -------------------------------------------------------
    def start_run(self, question: str | None = None) -> _Run:
        """Open the run's span under the current context (an application span, if any)."""
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": self.agent_name,
            "gen_ai.provider.name": self.provider_name, "gen_ai.request.model": self.model,
        }
        if self.capture_content and question:
            attrs["lottery.question"] = question
        span = self.tracer.start_span(f"invoke_agent {self.agent_name}", attributes=attrs)
        return _Run(span)

    def register(self, run_id: str, run: _Run) -> None:
        """Make a started run findable by the nodes of later supersteps."""
        run.span.set_attribute("lottery.run.id", run_id)
        run.span.set_attribute("gen_ai.conversation.id", run_id)
        with self._lock:
            self._runs[run_id] = run

    def run(self, run_id: str) -> _Run:
        """The open run; a run resumed from a checkpoint in a new process gets a new run span."""
        with self._lock:
            found = self._runs.get(run_id)
        if found is None:
            found = self.start_run()
            found.span.set_attribute("lottery.run.resumed", True)
            self.register(run_id, found)
        return found

    def problem_context(self, run: _Run, pid: str) -> otel_context.Context:
        """Context whose current span is problem ``pid``'s, opening it (and its ancestors)."""
        return trace.set_span_in_context(self._problem_span(run, pid))

    def _problem_span(self, run: _Run, pid: str) -> Span:
        with self._lock:
            span = run.problems.get(pid)
        if span is not None:
            return span
        parent_id = pid.rsplit(".", 1)[0] if "." in pid else None
        parent = run.span if parent_id is None else self._problem_span(run, parent_id)
        attrs: dict[str, Any] = {"lottery.problem.id": pid, "lottery.problem.depth": pid.count(".")}
        if parent_id is not None:
            attrs["lottery.problem.parent_id"] = parent_id
        span = self.tracer.start_span(f"problem {pid}", context=trace.set_span_in_context(parent),
                                      attributes=attrs)
        with self._lock:
            return run.problems.setdefault(pid, span)

    def end_problem(self, run: _Run, pid: str, status: str) -> None:
        """Close a problem's span (when it is done, or when the run ends without it)."""
        with self._lock:
            span = run.problems.pop(pid, None)
        if span is not None:
            span.set_attribute("lottery.problem.status", status)
            span.end()

    def end_run(self, run_id: str, state: dict[str, Any],
                error: BaseException | None = None) -> None:
        """Close the run's span and every problem span still open (children first)."""
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is not None:
            self.close(run, state, error)

    def abort(self, error: BaseException) -> None:
        """Close every open run of this context with ``error`` (a run that raised)."""
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        for run in runs:
            self.close(run, {}, error)

    def close(self, run: _Run, state: dict[str, Any], error: BaseException | None) -> None:
        for pid in sorted(run.problems, key=lambda p: -p.count(".")):
            self.end_problem(run, pid, "unfinished")
        span = run.span
        usage = state.get("usage") or {}
        for key in ("calls", "prompt_tokens", "completion_tokens", "repairs", "fallbacks"):
            if key in usage:
                span.set_attribute(f"lottery.usage.{key}", usage[key])
        if "best_effort" in state:
            span.set_attribute("lottery.best_effort", bool(state["best_effort"]))
        if state.get("stop_reason"):
            span.set_attribute("lottery.stop_reason", state["stop_reason"])
        if self.capture_content and state.get("answer"):
            span.set_attribute("lottery.answer", str(state["answer"]))
        if error is not None:
            span.record_exception(error)
            span.set_attribute("error.type", type(error).__qualname__)
            first_line = (str(error).splitlines() or [""])[0]
            span.set_status(Status(StatusCode.ERROR, first_line))
        span.end()

    # -- model calls --------------------------------------------------------------------
    @contextmanager
    def model_call(self, messages: Sequence[BaseMessage], params: dict[str, Any]
                   ) -> Iterator[ModelCall]:
        """A GenAI inference span (``chat <model>``) and metrics around one model call."""
        if not self.enabled and not self.metrics_enabled:  # telemetry off: nothing to record
            yield ModelCall(self, "")
            return
        call = ModelCall(self, _node_name())
        base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": self.provider_name,
                "gen_ai.request.model": self.model, **self._server}
        call.metric_attrs = dict(base)
        start = time.perf_counter()
        if not self.enabled:
            try:
                yield call
            except BaseException as exc:
                call.metric_attrs["error.type"] = type(exc).__qualname__
                raise
            finally:
                call.record_metrics(time.perf_counter() - start)
            return
        attrs = dict(base)
        if params.get("max_tokens"):
            attrs["gen_ai.request.max_tokens"] = params["max_tokens"]
        if int(params.get("n") or 1) > 1:
            attrs["gen_ai.request.choice.count"] = int(params["n"])
        if params.get("temperature") is not None:
            attrs["gen_ai.request.temperature"] = float(params["temperature"])
        attrs["gen_ai.output.type"] = "json" if "response_format" in params.get("extra_body", {}) else "text"
        with self.tracer.start_as_current_span(
            f"chat {self.model}", kind=SpanKind.CLIENT, attributes=attrs,
            record_exception=True, set_status_on_exception=True,
        ) as span:
            call.span = span
            if self.capture_content and span.is_recording():
                system, chat = _split_messages(messages)
                if system:
                    span.set_attribute("gen_ai.system_instructions", json.dumps(system))
                span.set_attribute("gen_ai.input.messages", json.dumps(chat))
            try:
                yield call
            except BaseException as exc:
                call.metric_attrs["error.type"] = type(exc).__qualname__
                span.set_attribute("error.type", type(exc).__qualname__)
                raise
            finally:
                call.record_metrics(time.perf_counter() - start)

    # -- tools and retrieval (described from what the node returned) --------------------
    def tool_executed(self, result: dict[str, Any] | None, node_span: Span) -> None:
        """An ``execute_tool`` span for a tool that ran, and the tool-error counter."""
        result = result or {}
        name = str(result.get("tool") or "unknown")
        ok = bool(result.get("ok"))
        node_span.set_attribute("gen_ai.tool.name", name)
        node_span.set_attribute("lottery.tool.ok", ok)
        if not ok:
            self.tool_errors.add(1, {"gen_ai.tool.name": name})
        if "duration_s" not in result or not self.enabled:
            return  # refused before running: nothing executed
        end = time.time_ns()
        start = end - int(float(result["duration_s"]) * 1e9)
        attrs: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                                 "gen_ai.tool.type": "function", "lottery.tool.ok": ok,
                                 "lottery.tool.duration_s": float(result["duration_s"])}
        for key in ("exit_code", "exit_status", "returncode"):
            if isinstance(result.get(key), int):
                attrs["lottery.tool.exit_status"] = result[key]
        if self.capture_content:
            attrs["gen_ai.tool.call.arguments"] = json.dumps(result.get("args"), default=str)
            attrs["gen_ai.tool.call.result"] = str(result.get("output") or result.get("error")
                                                   or "")
        span = self.tracer.start_span(f"execute_tool {name}", start_time=start, attributes=attrs,
                                      context=trace.set_span_in_context(node_span))
        if not ok:
            span.set_attribute("error.type", "ToolError")
            span.set_status(Status(StatusCode.ERROR, str(result.get("error") or "")[:200]))
        span.end(end_time=end)


class ModelCall:
    """What a node tells the telemetry about one model call once it has the reply."""

    __slots__ = ("telemetry", "node", "span", "metric_attrs", "input_tokens", "output_tokens")

    def __init__(self, telemetry: Telemetry, node: str) -> None:
        self.telemetry, self.node = telemetry, node
        self.span: Span | None = None
        self.metric_attrs: dict[str, Any] = {}
        self.input_tokens = self.output_tokens = None

    def done(self, message: Any) -> None:
        """Record the reply: usage, finish reasons, response model and (opt-in) its text."""
        usage = getattr(message, "usage_metadata", None) or {}
        self.input_tokens = usage.get("input_tokens")
        self.output_tokens = usage.get("output_tokens")
        span = self.span
        if span is None or not span.is_recording():
            return
        meta = getattr(message, "response_metadata", None) or {}
        if self.input_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", int(self.input_tokens))
        if self.output_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", int(self.output_tokens))
        finish = meta.get("finish_reason") or "stop"
        span.set_attribute("gen_ai.response.finish_reasons", [str(finish)])
        if meta.get("model_name"):
            span.set_attribute("gen_ai.response.model", str(meta["model_name"]))
        if meta.get("id") or getattr(message, "id", None):
            span.set_attribute("gen_ai.response.id", str(meta.get("id") or message.id))
        if self.telemetry.capture_content:
            text = message.text if hasattr(message, "text") else str(message.content)
            out = [{"role": "assistant", "parts": [{"type": "text", "content": text}],
                    "finish_reason": str(finish)}]
            span.set_attribute("gen_ai.output.messages", json.dumps(out))

    def record_metrics(self, seconds: float) -> None:
        tel, attrs = self.telemetry, self.metric_attrs
        tel.operation_duration.record(seconds, attrs)
        tel.model_calls.add(1, {**attrs, "lottery.node": self.node})
        if self.input_tokens is not None:
            tel.token_usage.record(self.input_tokens, {**attrs, "gen_ai.token.type": "input"})
        if self.output_tokens is not None:
            tel.token_usage.record(self.output_tokens, {**attrs, "gen_ai.token.type": "output"})


def _node_name() -> str:
    try:
        return str(get_config().get("metadata", {}).get("langgraph_node", ""))
    except RuntimeError:  # called outside a graph run
        return ""


def _split_messages(messages: Sequence[BaseMessage]) -> tuple[list[dict], list[dict]]:
    roles = {"human": "user", "ai": "assistant", "tool": "tool"}
    system: list[dict[str, Any]] = []
    chat: list[dict[str, Any]] = []
    for m in messages:
        text = m.text if hasattr(m, "text") else str(m.content)
        if m.type == "system":
            system.append({"type": "text", "content": text})
        else:
            chat.append({"role": roles.get(m.type, m.type),
                         "parts": [{"type": "text", "content": text}]})
    return system, chat
