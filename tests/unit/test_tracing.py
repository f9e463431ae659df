"""The trace of a run mirrors its problem tree, and holds no prompt text unless asked to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from lottery.api import asolve
from lottery.core.tracing import CAPTURE_CONTENT_ENV
from lottery.stores.knowledge import Document, InMemoryKnowledgeBase
from lottery.testing import ScriptedChatModel

pytestmark = pytest.mark.usefixtures("planner_policy")
"""These tests script the model planner's decisions: runs follow the planner policy."""

QUESTION = "What is the capital of France, what is 17 * 23, and what colour is the sky?"

SUBS = {
    "What is the capital of France?": {"action": "retrieve", "reason": "a fact",
                                       "query": "capital of France"},
    "What is 17 * 23?": {"action": "tool", "reason": "arithmetic", "tool": "calculator",
                         "tool_input": {"expression": "17 * 23"}},
    "What colour is the sky?": {"action": "solve", "reason": "common knowledge"},
}
ANSWERS = {"capital": "Paris", "17": "391", "sky": "blue"}


def respond(messages: Sequence[BaseMessage]) -> str:
    """Root divides into three independent sub-problems: retrieve, tool, solve; then merge."""
    system, user = str(messages[0].content), str(messages[-1].content)
    if system.startswith("You plan"):
        question = user.rsplit("Question: ", 1)[-1].strip()
        if question in SUBS:
            return json.dumps(SUBS[question])
        return json.dumps({"action": "divide", "reason": "three parts",
                           "subproblems": [{"question": q} for q in SUBS]})
    if system.startswith("Combine"):
        return "Putting them together.\nAnswer: Paris, 391, blue"
    question = user.rsplit("Question: ", 1)[-1]
    word = next(w for w in ANSWERS if w in question)
    return f"Thinking.\nAnswer: {ANSWERS[word]}"


def knowledge() -> InMemoryKnowledgeBase:
    return InMemoryKnowledgeBase("geo", [Document("fr", "Paris is the capital of France."),
                                         Document("de", "Berlin is the capital of Germany.")])


async def traced_run(**settings: Any) -> tuple[Any, list[ReadableSpan], ScriptedChatModel]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    model = ScriptedChatModel(respond=respond, delay_s=0.05)
    result = await asolve(QUESTION, chat_model=model, knowledge=knowledge(),
                          tracer_provider=provider, **settings)
    return result, list(exporter.get_finished_spans()), model


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    named = {s.name: s for s in spans}
    assert len(named) == len([s for s in spans if not s.name.startswith("chat ")]) + len(
        {s.name for s in spans if s.name.startswith("chat ")}), "span names must be unique"
    return named


def parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next(s for s in spans if s.context.span_id == span.parent.span_id)


async def test_sub_problem_spans_sit_under_their_parent_problem_although_they_ran_in_parallel():
    result, spans, model = await traced_run()
    assert result.answer == "Paris, 391, blue"
    assert model.max_concurrency >= 2, "the three sub-problems should have overlapped"
    named = by_name(spans)

    roots = [s for s in spans if s.parent is None]
    assert [s.name for s in roots] == ["invoke_agent algorithm1"]
    assert {s.context.trace_id for s in spans} == {roots[0].context.trace_id}

    assert parent_of(named["problem 0"], spans) is roots[0]
    for pid in ("0.1", "0.2", "0.3"):
        assert parent_of(named[f"problem {pid}"], spans) is named["problem 0"]
        assert parent_of(named[f"planner {pid}"], spans) is named[f"problem {pid}"]
        assert parent_of(named[f"solve {pid}"], spans) is named[f"problem {pid}"]
    assert parent_of(named["planner 0"], spans) is named["problem 0"]
    assert parent_of(named["merge 0"], spans) is named["problem 0"]
    assert parent_of(named["retrieve 0.1"], spans) is named["problem 0.1"]
    assert parent_of(named["tool 0.2"], spans) is named["problem 0.2"]
    assert parent_of(named["execute_tool calculator"], spans) is named["tool 0.2"]

    # A problem's span covers the work under it (it lives across supersteps).
    p0 = named["problem 0"]
    for s in spans:
        if s.name != "invoke_agent algorithm1":
            assert p0.start_time <= s.start_time and s.end_time <= roots[0].end_time


async def test_node_spans_carry_problem_ids_depth_and_decision():
    _, spans, _ = await traced_run()
    named = by_name(spans)
    planner = named["planner 0.1"].attributes
    assert planner["lottery.problem.id"] == "0.1"
    assert planner["lottery.problem.parent_id"] == "0"
    assert planner["lottery.problem.depth"] == 1
    assert planner["lottery.problem.decision"] == "retrieve"
    assert named["planner 0"].attributes["lottery.problem.decision"] == "divide"
    assert named["planner 0"].attributes["lottery.problem.children"] == 3
    assert named["problem 0.2"].attributes["lottery.problem.decision"] == "tool"
    assert named["problem 0.3"].attributes["lottery.problem.status"] == "done"

    retrieval = named["retrieve 0.1"].attributes
    assert retrieval["lottery.retrieval.backend"] == "InMemoryKnowledgeBase"
    assert retrieval["lottery.retrieval.knowledge_base"] == "geo"
    assert retrieval["lottery.retrieval.k"] == 4
    assert retrieval["lottery.retrieval.mode"] == "hybrid"
    assert retrieval["lottery.retrieval.hits"] == 2

    tool = named["execute_tool calculator"]
    assert tool.attributes["gen_ai.tool.name"] == "calculator"
    assert tool.attributes["lottery.tool.ok"] is True
    assert tool.attributes["lottery.tool.duration_s"] >= 0
    assert tool.status.status_code is not StatusCode.ERROR


async def test_every_model_call_is_a_genai_chat_span_with_usage():
    result, spans, model = await traced_run()
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == result.usage.calls == len(model.calls)
    assert (sum(s.attributes["gen_ai.usage.input_tokens"] for s in chats)
            == result.usage.prompt_tokens)
    assert (sum(s.attributes["gen_ai.usage.output_tokens"] for s in chats)
            == result.usage.completion_tokens)
    for s in chats:
        a = s.attributes
        assert s.kind is trace.SpanKind.CLIENT
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == "scripted"
        assert a["gen_ai.request.model"] == result.model
        assert tuple(a["gen_ai.response.finish_reasons"]) == ("stop",)
        assert parent_of(s, spans).attributes["lottery.node"] in ("planner", "solve", "merge")
    planner_chat = next(s for s in chats if parent_of(s, spans).name == "planner 0")
    assert planner_chat.attributes["gen_ai.output.type"] == "json"


async def test_sampled_calls_are_chat_spans_too_with_their_choice_count():
    result, spans, model = await traced_run(solve_samples=3)
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == result.usage.calls == len(model.calls)
    sampled = [s for s in chats if s.attributes.get("gen_ai.request.choice.count")]
    solves = [s for s in spans if s.attributes.get("lottery.node") == "solve"]
    assert len(sampled) == len(solves) == 3, "one sampled request per solved sub-problem"
    for s in sampled:
        assert s.attributes["gen_ai.request.choice.count"] == 2
        assert s.attributes["gen_ai.request.temperature"] == 0.7
        assert parent_of(s, spans).attributes["lottery.node"] == "solve"
    assert (sum(s.attributes["gen_ai.usage.output_tokens"] for s in chats)
            == result.usage.completion_tokens)


async def test_server_address_and_port_come_from_the_model_server_url():
    from langchain_openai import ChatOpenAI

    from lottery.core.context import Context
    from lottery.resources import Resources

    llm = ChatOpenAI(base_url="http://10.1.2.3:8123/v1", model="qwen", api_key="x")
    tel = Resources(chat_model=llm, meter_provider=MeterProvider()).telemetry
    assert tel.provider_name == "openai" and tel.model == "qwen"
    with tel.model_call([], {}) as call:
        pass
    assert call.metric_attrs["server.address"] == "10.1.2.3"
    assert call.metric_attrs["server.port"] == 8123
    assert Resources(settings=Context(base_url="https://models.example/v1")).telemetry._server == {
        "server.address": "models.example", "server.port": 443}


async def test_no_prompt_or_completion_text_is_recorded_by_default(monkeypatch):
    monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
    _, spans, _ = await traced_run()
    for s in spans:
        for key, value in s.attributes.items():
            assert "messages" not in key and "instructions" not in key, key
            assert key not in ("lottery.question", "lottery.answer", "gen_ai.tool.call.arguments")
            text = " ".join(map(str, value)) if isinstance(value, tuple) else str(value)
            for secret in ("capital of France", "Paris", "17 * 23", "Thinking"):
                assert secret not in text, (s.name, key)


async def test_prompt_and_completion_text_are_recorded_when_the_user_opts_in(monkeypatch):
    monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
    _, spans, _ = await traced_run()
    named = by_name(spans)
    chat = next(s for s in spans if s.name.startswith("chat ")
                and parent_of(s, spans).name == "solve 0.1")
    inputs = json.loads(chat.attributes["gen_ai.input.messages"])
    assert inputs[-1]["role"] == "user"
    assert "Paris is the capital of France." in inputs[-1]["parts"][0]["content"]
    assert "Answer:" in json.loads(chat.attributes["gen_ai.system_instructions"])[0]["content"]
    outputs = json.loads(chat.attributes["gen_ai.output.messages"])
    assert outputs[0]["parts"][0]["content"].endswith("Answer: Paris")
    assert named["invoke_agent algorithm1"].attributes["lottery.question"] == QUESTION
    assert named["execute_tool calculator"].attributes["gen_ai.tool.call.result"] == "391"


async def test_the_library_never_sets_a_global_tracer_provider():
    await traced_run()
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


async def test_tracing_off_makes_no_spans_and_changes_no_answer(monkeypatch):
    from opentelemetry import trace

    started: list[str] = []
    for tracer in (trace.ProxyTracer, trace.NoOpTracer):  # what an unconfigured process has
        for method in ("start_span", "start_as_current_span"):
            real = getattr(tracer, method)
            monkeypatch.setattr(tracer, method, lambda self, name, *a, _real=real, **k: (
                started.append(name), _real(self, name, *a, **k))[1])
    model = ScriptedChatModel(respond=respond)
    result = await asolve(QUESTION, chat_model=model, knowledge=knowledge())
    assert started == [], f"spans started with tracing off: {started[:5]}"
    traced, spans, traced_model = await traced_run()
    assert spans and result.answer == traced.answer == "Paris, 391, blue"
    assert len(model.calls) == len(traced_model.calls)


def test_the_global_provider_is_used_when_none_is_injected(tmp_path):
    script = textwrap.dedent(f"""
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from lottery.api import solve
        from lottery.testing import ScriptedChatModel
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)  # the application's choice, not the library's
        model = ScriptedChatModel(respond=lambda m: {json.dumps(json.dumps(
            {"action": "solve", "reason": "easy"}))} if "plan" in m[0].content else "Answer: 4")
        print(solve("2 + 2?", chat_model=model).answer)
        print(sorted(s.name.split()[0] for s in exporter.get_finished_spans()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120, env={**os.environ})
    assert out.returncode == 0, out.stderr
    answer, names = out.stdout.strip().splitlines()
    assert answer == "4"
    assert names == str(sorted(["invoke_agent", "problem", "planner", "chat", "solve", "chat"]))


async def test_metrics_count_model_calls_tokens_tool_errors_and_retrieval_latency():
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])

    def bad_tool(messages: Sequence[BaseMessage]) -> str:
        text = respond(messages)
        return text.replace('"17 * 23"', '"17 * "')  # the calculator will fail on this

    model = ScriptedChatModel(respond=bad_tool)
    result = await asolve(QUESTION, chat_model=model, knowledge=knowledge(),
                          meter_provider=meters)
    points: dict[str, list[Any]] = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points[metric.name] = list(metric.data.data_points)
    assert sum(p.value for p in points["lottery.model.calls"]) == result.usage.calls
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in points["gen_ai.client.token.usage"]}
    assert tokens == {"input": result.usage.prompt_tokens,
                      "output": result.usage.completion_tokens}
    assert sum(p.count for p in points["gen_ai.client.operation.duration"]) == result.usage.calls
    errors = points["lottery.tool.errors"]
    assert [(p.attributes["gen_ai.tool.name"], p.value) for p in errors] == [("calculator", 1)]
    (latency,) = points["lottery.retrieval.duration"]
    assert latency.count == 1 and latency.attributes["lottery.retrieval.mode"] == "hybrid"


async def test_a_failed_run_still_ends_its_spans_marked_as_errors():
    def broken(messages: Sequence[BaseMessage]) -> str:
        if str(messages[0].content).startswith("You plan"):
            return respond(messages)
        raise ValueError("model exploded")

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with pytest.raises(ValueError):
        await asolve(QUESTION, chat_model=ScriptedChatModel(respond=broken),
                     knowledge=knowledge(), tracer_provider=provider)
    spans = list(exporter.get_finished_spans())
    run = next(s for s in spans if s.parent is None)
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["error.type"] == "ValueError"
    problems = [s for s in spans if s.name.startswith("problem ")]
    assert {s.name for s in problems} == {"problem 0", "problem 0.1", "problem 0.2", "problem 0.3"}
    assert {s.attributes["lottery.problem.status"] for s in problems} == {"unfinished"}
    failed = [s for s in spans if s.name.startswith("chat ")
              and s.status.status_code is StatusCode.ERROR]
    assert failed and failed[0].attributes["error.type"] == "ValueError"


async def test_runs_without_a_meter_provider_leave_nothing_behind_in_the_global_api():
    # The API's proxy meter provider keeps every meter and instrument made on it; a server
    # answering many questions must not grow it by one set per run.
    from opentelemetry import metrics

    proxy = metrics.get_meter_provider()
    before = len(getattr(proxy, "_meters", []))
    for _ in range(3):
        await asolve("2 + 2?", chat_model=ScriptedChatModel(
            respond=lambda m: '{"action": "solve"}' if "plan" in m[0].content else "Answer: 4"))
    assert len(getattr(proxy, "_meters", [])) == before


async def test_a_run_stopped_by_its_budget_closes_the_unfinished_problems():
    result, spans, _ = await traced_run(max_calls=5)
    assert result.best_effort and result.stop_reason == "budget"
    run = next(s for s in spans if s.parent is None)
    assert run.attributes["lottery.stop_reason"] == "budget"
    assert run.attributes["lottery.best_effort"] is True
    assert any(e.name == "budget nearly spent" for e in run.events)
    problems = {s.name: s.attributes["lottery.problem.status"] for s in spans
                if s.name.startswith("problem ")}
    assert problems["problem 0"] == "done"  # answered directly from what was known
    assert "unfinished" in problems.values()


async def test_problems_solved_by_the_depth_rule_say_so_on_their_span():
    _, spans, _ = await traced_run(max_depth=1)
    named = by_name(spans)
    assert "planner 0.1" not in named  # depth limit: solved without asking the planner
    assert named["problem 0.1"].attributes["lottery.problem.decision"] == "solve"
    assert parent_of(named["solve 0.1"], spans) is named["problem 0.1"]
