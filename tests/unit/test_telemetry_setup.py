"""The CLI's telemetry set-up follows the standard OTEL_* variables and `--trace-otel`."""

from __future__ import annotations

import io
import json

import pytest
from typer.testing import CliRunner

from lottery.cli import app
from lottery.errors import ConfigurationError
from lottery.telemetry import setup_from_env
from lottery.testing import ScriptedChatModel

OTEL_VARS = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
             "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
             "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
             "OTEL_SDK_DISABLED")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)


def test_nothing_is_configured_when_no_variable_asks_for_it():
    setup = setup_from_env()
    assert not setup.enabled


def test_an_otlp_endpoint_alone_turns_otlp_export_on(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    setup = setup_from_env()
    try:
        assert setup.tracer_provider is not None and setup.meter_provider is not None
        assert setup.tracer_provider.resource.attributes["service.name"] == "lottery"
    finally:
        setup.tracer_provider.shutdown(), setup.meter_provider.shutdown()  # nothing was sent


def test_service_name_comes_from_otel_service_name(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "my-lottery")
    setup = setup_from_env(stream=io.StringIO())
    assert setup.tracer_provider.resource.attributes["service.name"] == "my-lottery"
    assert setup.meter_provider is None
    setup.shutdown()


def test_none_and_sdk_disabled_turn_everything_off(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:9")
    assert setup_from_env().tracer_provider is None
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not setup_from_env(console=True).enabled


@pytest.mark.parametrize(("name", "value", "message"), [
    ("OTEL_TRACES_EXPORTER", "jaeger", "unknown exporter jaeger"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "not supported"),
])
def test_unknown_settings_are_one_line_configuration_errors(monkeypatch, name, value, message):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message):
        setup_from_env()


def test_ask_trace_otel_prints_the_spans_of_the_run_to_stderr(monkeypatch):
    import lottery.cli.ask as ask_module

    real_solve = ask_module.solve

    def scripted_solve(question, **kwargs):
        model = ScriptedChatModel(respond=lambda m: (
            '{"action": "solve", "reason": "easy"}' if "plan" in m[0].content
            else "```python\nprint(2 + 2)\n```" if "Python program" in m[0].content
            else "Answer: 4"))
        return real_solve(question, chat_model=model, **kwargs)

    monkeypatch.setattr(ask_module, "solve", scripted_solve)
    # Typer runs a lone command without its name; once there are more, "ask" is needed.
    command = ["ask"] if len(app.registered_commands) + len(app.registered_groups) > 1 else []
    question = "Ann has 2 pens and gets 2 more. How many pens does she have?"
    result = CliRunner().invoke(app, [*command, "--trace-otel", "--json", question])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["answer"] == "4"  # stdout stays machine-readable
    decoder, text, spans = json.JSONDecoder(), result.stderr, []
    while text.strip():
        span, end = decoder.raw_decode(text.lstrip())
        spans.append(span)
        text = text.lstrip()[end:]
    names = {s["name"] for s in spans}
    # the math policy: the attempt, its program check and the program that confirms the
    # pair they agree on; no planner call
    assert {"invoke_agent algorithm1", "problem 0", "solve 0"} <= names and "planner 0" not in names
    assert sum(1 for s in spans if s["name"].startswith("chat ")) == 3
    chat = next(s for s in spans if s["name"].startswith("chat "))
    assert chat["attributes"]["gen_ai.operation.name"] == "chat"
    assert chat["resource"]["attributes"]["service.name"] == "lottery"
