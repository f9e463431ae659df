"""The client contract on both engines: one conformance suite against a real vLLM server
and a real llama.cpp server, behind real runs (CLI, Python API, structured output, samples,
log-probs, stop sequences, usage, concurrency).

The session fixture prepares SmolLM2-135M-Instruct (the catalogue's smallest model:
enough for protocol tests) for each engine and starts its server through ``lottery.serve``
on a free port, then stops it. The vLLM environment, the GGUF and the model live in
``LOTTERY_TEST_HOME`` (default ``<repo>/.lottery-home``, which ``.ci/run`` prepares);
llama.cpp's server comes from the per-user build cache. A missing one is created first,
which takes minutes (the llama.cpp build: 10-35 min on 2 cores).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lottery.api import asolve, solve
from lottery.core.context import Context
from lottery.engines import ENGINE_NAMES
from lottery.engines import server as srv
from lottery.errors import ModelServerError
from lottery.nodes.llm import Reply, complete, sample, system_user
from lottery.nodes.schemas import PlannerDecision, planner_json_schema
from lottery.resources import Resources

pytestmark = [pytest.mark.integration, pytest.mark.vllm]

MODEL = "smollm2-135m-instruct"
REPO = Path(__file__).resolve().parents[2]
# Small budgets: the point is the protocol, not the answers of a 135M model.
RUN = {"model": MODEL, "max_calls": 6, "max_depth": 1, "max_completion_tokens": 320}


@pytest.fixture(scope="session")
def server_home() -> Path:
    return Path(os.environ.get("LOTTERY_TEST_HOME") or REPO / ".lottery-home").resolve()


@pytest.fixture(scope="session", params=ENGINE_NAMES)
def model_server(server_home: Path, request: pytest.FixtureRequest) -> Iterator[srv.ServerInfo]:
    """A real server of each engine for SmolLM2-135M, started and stopped by lottery.serve
    (one at a time: the vLLM leg's tests run, then the llama.cpp leg's)."""
    saved = os.environ.get("LOTTERY_HOME")
    os.environ["LOTTERY_HOME"] = str(server_home)
    try:
        info = srv.start_server(MODEL, port=srv.free_port(), kv_cache_gib=1,
                                engine=request.param)
    finally:
        _restore("LOTTERY_HOME", saved)
    yield info
    os.environ["LOTTERY_HOME"] = str(server_home)
    try:
        srv.stop_server(info.port)
    finally:
        _restore("LOTTERY_HOME", saved)


@pytest.fixture()
def home(server_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point this test at the server's LOTTERY_HOME (the conftest isolates every test)."""
    monkeypatch.setenv("LOTTERY_HOME", str(server_home))
    return server_home


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _lottery() -> str:
    return shutil.which("lottery", path=str(Path(sys.executable).parent)) or "lottery"


def test_status_lists_the_running_server(model_server: srv.ServerInfo, home: Path) -> None:
    out = subprocess.run([_lottery(), "serve", "--status", "--json"], capture_output=True,
                         text=True, timeout=60, check=True)
    rows = {s["port"]: s for s in json.loads(out.stdout)}
    assert rows[model_server.port]["status"] == "ready"
    assert rows[model_server.port]["model"] == MODEL
    assert rows[model_server.port]["engine"] == model_server.engine


def test_lottery_ask_reuses_the_local_server_as_embedded_default(
    model_server: srv.ServerInfo, home: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOTTERY_BASE_URL"}
    env.update(LOTTERY_HOME=str(home), LOTTERY_MODEL=MODEL, LOTTERY_MAX_CALLS="4",
               LOTTERY_ENGINE=model_server.engine,
               LOTTERY_MAX_DEPTH="1", LOTTERY_MAX_COMPLETION_TOKENS="160")
    run = subprocess.run([_lottery(), "ask", "Ann has 12 pens and gets 30 more. How many pens does she have?",
                          "--json"], env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    # 0 for an accepted answer, 3 for a best-effort one (a 135M model often is): never else
    assert run.returncode in (0, 3), run.stderr
    result = json.loads(run.stdout)
    assert (run.returncode == 3) == result["best_effort"]
    assert result["policy"] == "math" and result["confidence"] is not None
    assert isinstance(result["answer"], str) and result["answer"].strip()
    assert result["model"] == MODEL and result["usage"]["calls"] >= 1
    assert "starting a local" not in run.stderr  # the running one was reused


def test_solve_runs_the_full_graph_and_records_token_usage(model_server: srv.ServerInfo) -> None:
    result = solve("A box has 3 red and 4 blue balls. How many balls are in the box?",
                   base_url=model_server.base_url, **RUN)
    root = result.root
    assert root["status"] == "done" and root["decision"] in ("solve", "retrieve", "tool", "divide")
    assert result.answer and result.answer.strip()
    assert result.usage.calls >= 2  # the planner, then at least one answering step
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert result.usage.fallbacks == 0, root["reason"]  # the planner's JSON parsed


async def test_planner_schema_is_enforced_by_the_server(model_server: srv.ServerInfo) -> None:
    """Constrained decoding: even a 135M model's raw reply is strict JSON of the schema."""
    res = Resources(settings=Context(base_url=model_server.base_url, model=MODEL))
    schema = planner_json_schema(allow_divide=True, tools=True)
    reply = await complete(
        res, system_user("Decide how to handle the question.", "Question: what is 7 * 6?"),
        max_tokens=512, json_schema=schema)
    data = json.loads(reply.text)  # strict: no tolerant extraction
    assert data["action"] in schema["properties"]["action"]["enum"]
    assert isinstance(data["reason"], str)
    PlannerDecision.model_validate(data)
    assert reply.usage["prompt_tokens"] > 0 and reply.usage["completion_tokens"] > 0


async def test_several_samples_of_one_prompt_come_back(model_server: srv.ServerInfo) -> None:
    """``n > 1`` (program votes, self-consistency): every engine returns n completions."""
    res = Resources(settings=Context(base_url=model_server.base_url, model=MODEL,
                                     max_completion_tokens=24))
    reply = Reply()
    texts = await sample(res, system_user("Answer briefly.", "Name a colour."), 3, reply,
                         temperature=1.0)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert reply.usage["completion_tokens"] > 0


def test_log_probs_stop_sequences_and_usage_counts(model_server: srv.ServerInfo) -> None:
    """The raw OpenAI fields the graph and the benchmarks read, the same on both engines."""
    import httpx

    body = {"model": MODEL, "max_tokens": 40, "temperature": 0, "logprobs": True,
            "top_logprobs": 2, "stop": ["\n"],
            "messages": [{"role": "user", "content": "Count from 1 to 20, one number a line."}]}
    data = httpx.post(f"{model_server.base_url}/chat/completions", json=body, timeout=300).json()
    choice = data["choices"][0]
    assert "\n" not in choice["message"]["content"]  # stopped at the first line break
    assert choice["finish_reason"] == "stop"
    tokens = choice["logprobs"]["content"]
    assert tokens and all(t["logprob"] <= 0 and len(t["top_logprobs"]) == 2 for t in tokens)
    usage = data["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] == len(tokens)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_eight_concurrent_runs_complete(model_server: srv.ServerInfo) -> None:
    questions = [f"Ann has {n} pens and gets {n + 1} more. How many pens does she have?"
                 for n in range(1, 9)]
    results = await asyncio.wait_for(asyncio.gather(*(
        asolve(q, base_url=model_server.base_url, **RUN) for q in questions)), timeout=900)
    assert [r.question for r in results] == questions
    assert all(r.answer and r.usage.completion_tokens > 0 for r in results)
    assert len({r.run_id for r in results}) == 8


def test_stopped_server_fails_runs_clearly(model_server: srv.ServerInfo, home: Path) -> None:
    """Runs last: stops the session's server with the CLI, then a run must fail fast."""
    stop = subprocess.run([_lottery(), "serve", "--stop", "--port", str(model_server.port)],
                          capture_output=True, text=True, timeout=120, check=True)
    assert f"port {model_server.port}" in stop.stdout
    assert not srv.pid_alive(model_server.pid)
    with pytest.raises(ModelServerError, match="model server"):
        solve("Ann has 1 pen and gets 1 more. How many pens does she have?",
              base_url=model_server.base_url, **RUN)
