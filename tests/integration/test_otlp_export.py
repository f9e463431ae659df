"""Spans and metrics really leave the process over OTLP/HTTP, configured by OTEL_* variables.

The test runs its own OTLP/HTTP receiver on 127.0.0.1 (a small HTTP server that
decodes the protobuf export requests, as a collector would) and checks what
arrived: the resource, the problem tree's parentage and the GenAI attributes.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from lottery.api import asolve
from lottery.telemetry import setup_from_env
from lottery.testing import ScriptedChatModel

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("planner_policy")]
"""The scripted model server answers planner decisions: runs follow the planner policy."""


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP (protobuf) receiver that keeps every decoded request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.traces: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.content_types: set[str] = set()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.content_types.add(self.headers.get("Content-Type", ""))
        if self.path == "/v1/traces":
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            self.server.traces.append(request)
            reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        elif self.path == "/v1/metrics":
            self.server.metrics.append(
                metrics_service_pb2.ExportMetricsServiceRequest.FromString(body))
            reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def respond(messages: Any) -> str:
    system, user = str(messages[0].content), str(messages[-1].content)
    if system.startswith("You plan"):
        if "(Part of the larger question" in user:
            return '{"action": "solve", "reason": "simple"}'
        return ('{"action": "divide", "reason": "two parts", "subproblems": '
                '[{"question": "What is 2 + 2?"}, {"question": "What is 3 + 3?"}]}')
    if system.startswith("Combine"):
        return "Answer: 4 and 6"
    return "Answer: 4" if "2 + 2" in user else "Answer: 6"


def _attrs(items: Any) -> dict[str, Any]:
    out = {}
    for kv in items:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = (list(x.string_value for x in value.array_value.values)
                       if kind == "array_value" else getattr(value, kind))
    return out


async def test_spans_and_metrics_arrive_over_otlp_http(receiver, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "lottery-otlp-test")
    setup = setup_from_env()
    try:
        result = await asolve("What are 2 + 2 and 3 + 3?",
                              chat_model=ScriptedChatModel(respond=respond, delay_s=0.02),
                              tracer_provider=setup.tracer_provider,
                              meter_provider=setup.meter_provider)
    finally:
        setup.shutdown()  # flushes the batch processor and the metric reader
    assert result.answer == "4 and 6"
    assert receiver.content_types == {"application/x-protobuf"}

    spans, resources = [], []
    for request in receiver.traces:
        for rs in request.resource_spans:
            resources.append(_attrs(rs.resource.attributes))
            for ss in rs.scope_spans:
                assert ss.scope.name == "lottery"
                spans.extend(ss.spans)
    assert {r["service.name"] for r in resources} == {"lottery-otlp-test"}
    named = {s.name: s for s in spans if not s.name.startswith("chat ")}
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == result.usage.calls == 6  # planner x3, solve x2, merge

    run = named["invoke_agent algorithm1"]
    assert run.parent_span_id == b""
    assert {s.trace_id for s in spans} == {run.trace_id}
    assert named["problem 0"].parent_span_id == run.span_id
    for pid in ("0.1", "0.2"):
        assert named[f"problem {pid}"].parent_span_id == named["problem 0"].span_id
        assert named[f"solve {pid}"].parent_span_id == named[f"problem {pid}"].span_id
    assert _attrs(named["problem 0.2"].attributes)["lottery.problem.parent_id"] == "0"

    chat = _attrs(chats[0].attributes)
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.request.model"] == result.model
    assert chat["gen_ai.usage.input_tokens"] > 0
    assert chat["gen_ai.response.finish_reasons"] == ["stop"]
    assert sum(_attrs(c.attributes)["gen_ai.usage.output_tokens"] for c in chats) == (
        result.usage.completion_tokens)

    metric_names = {m.name for request in receiver.metrics for rm in request.resource_metrics
                    for sm in rm.scope_metrics for m in sm.metrics}
    assert {"lottery.model.calls", "gen_ai.client.token.usage",
            "gen_ai.client.operation.duration"} <= metric_names
