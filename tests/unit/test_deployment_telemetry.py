"""The collector config and compose file wire the app to Jaeger (checked without Docker)."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deployments"


def test_every_collector_pipeline_uses_only_defined_components():
    config = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    service = config["service"]
    for name, pipeline in service["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{name}: {kind[:-1]} {component} undefined"
    assert set(service["extensions"]) <= set(config["extensions"])
    assert "otlp/jaeger" in service["pipelines"]["traces"]["exporters"]
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


def test_compose_runs_the_collector_with_that_config_in_front_of_jaeger():
    compose = yaml.safe_load((DEPLOY / "telemetry.compose.yml").read_text())
    services = compose["services"]
    collector = services["otel-collector"]
    config_path = collector["command"][0].split("=", 1)[1]
    assert any(v.startswith("./otel-collector.yaml:" + config_path) for v in collector["volumes"])
    assert any(p.endswith(":4318") for p in collector["ports"])
    exporter = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())["exporters"]
    host = exporter["otlp/jaeger"]["endpoint"].split(":")[0]
    assert host in services, "the collector must export to a service of the compose file"
    assert any(p.endswith(":16686") for p in services["jaeger"]["ports"])
