"""Telemetry set-up for a process of the ``lottery`` command: providers from ``OTEL_*`` variables.

The library itself never configures OpenTelemetry: a run uses the tracer and
meter providers injected into its context, else the global ones the
application set. This module is the shell's part: it builds providers for the
CLI's own process from the standard environment variables, and hands them to
the run. It never sets the global providers either, so it cannot fight an
application (or ``opentelemetry-instrument``) that already did.

Variables read (the OpenTelemetry SDK's standard ones):

- ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``: comma-separated
  ``console``, ``otlp`` or ``none``. Unset means ``none`` unless an OTLP
  endpoint variable is set (then ``otlp``), so a plain ``lottery ask`` never
  tries to reach a collector that is not there.
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and the ``_TRACES_`` / ``_METRICS_``
  variants), ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_EXPORTER_OTLP_TIMEOUT``:
  read by the exporters themselves.
- ``OTEL_EXPORTER_OTLP_PROTOCOL`` (or ``_TRACES_PROTOCOL``):
  ``http/protobuf`` (default) or ``grpc`` (needs
  ``opentelemetry-exporter-otlp-proto-grpc``).
- ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``: the resource
  (``service.name`` defaults to ``lottery``).
- ``OTEL_SDK_DISABLED=true``: no telemetry at all.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import IO, Any

from lottery.errors import ConfigurationError

DEFAULT_SERVICE_NAME = "lottery"

_EXPORTERS = ("console", "otlp", "none")


@dataclass
class TelemetrySetup:
    """The providers configured for this process (``None`` where that signal is off)."""

    tracer_provider: Any = None
    meter_provider: Any = None

    @property
    def enabled(self) -> bool:
        return self.tracer_provider is not None or self.meter_provider is not None

    def install_global(self) -> None:
        """Make these the process's global providers: for a server's own start-up code only.

        A long-running process (an API server) whose runs do not pass providers
        in calls this once; the library then finds them through the global API.
        The API refuses (with a warning) to replace a provider already set.
        """
        from opentelemetry import metrics, trace

        if self.tracer_provider is not None:
            trace.set_tracer_provider(self.tracer_provider)
        if self.meter_provider is not None:
            metrics.set_meter_provider(self.meter_provider)

    def shutdown(self) -> None:
        """Flush what is buffered and stop the exporters (call once, before the process exits)."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def setup_from_env(*, console: bool = False, stream: IO[str] | None = None) -> TelemetrySetup:
    """Providers as the ``OTEL_*`` variables ask; ``console`` adds console spans (``--trace-otel``).

    Console output goes to ``stream`` (standard error by default), so ``--json``
    output on standard out stays clean.

    Raises:
        ConfigurationError: an exporter or protocol name is unknown, or not installed.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return TelemetrySetup()
    out = stream or sys.stderr
    traces = _exporter_names("OTEL_TRACES_EXPORTER", "TRACES") | ({"console"} if console else set())
    metrics = _exporter_names("OTEL_METRICS_EXPORTER", "METRICS")
    if not traces and not metrics:
        return TelemetrySetup()
    resource = _resource()
    return TelemetrySetup(
        tracer_provider=_tracer_provider(traces, resource, out) if traces else None,
        meter_provider=_meter_provider(metrics, resource, out) if metrics else None,
    )


def _exporter_names(variable: str, signal: str) -> set[str]:
    raw = os.environ.get(variable)
    if raw is None:
        endpoint = (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                    or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))
        return {"otlp"} if endpoint else set()
    names = {n.strip().lower() for n in raw.split(",") if n.strip()}
    unknown = names - set(_EXPORTERS)
    if unknown:
        raise ConfigurationError(
            f"{variable}={raw!r}: unknown exporter {', '.join(sorted(unknown))} "
            f"(use {', '.join(_EXPORTERS)})")
    return names - {"none"}


def _protocol(signal: str) -> str:
    raw = (os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
           or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip().lower()
    if raw not in ("http/protobuf", "grpc"):
        raise ConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={raw!r} is not supported (use http/protobuf or grpc)")
    return raw


def _resource() -> Any:
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    detected = OTELResourceDetector().detect()
    if "service.name" in detected.attributes:
        return Resource.create()
    return Resource.create({"service.name": DEFAULT_SERVICE_NAME})


def _tracer_provider(names: set[str], resource: Any, out: IO[str]) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    provider = TracerProvider(resource=resource)
    if "console" in names:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=out)))
    if "otlp" in names:
        if _protocol("TRACES") == "grpc":
            exporter = _grpc("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _meter_provider(names: set[str], resource: Any, out: IO[str]) -> Any:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )

    readers = []
    if "console" in names:
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(out=out)))
    if "otlp" in names:
        if _protocol("METRICS") == "grpc":
            exporter = _grpc("opentelemetry.exporter.otlp.proto.grpc.metric_exporter")
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            exporter = OTLPMetricExporter()
        readers.append(PeriodicExportingMetricReader(exporter))
    return MeterProvider(resource=resource, metric_readers=readers)


def _grpc(module: str) -> Any:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            "OTLP over gRPC needs `pip install opentelemetry-exporter-otlp-proto-grpc` "
            "(or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)") from None
    name = "OTLPSpanExporter" if module.endswith("trace_exporter") else "OTLPMetricExporter"
    return getattr(mod, name)()
