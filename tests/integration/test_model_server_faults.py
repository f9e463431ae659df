"""Model server faults, injected by a real proxy process in front of a real HTTP model server.

The upstream is the scripted OpenAI-compatible server (tests/integration/openai_stub.py) so
CI needs no model; the last test repeats the essentials against a real vLLM server when one
is given (LOTTERY_TEST_BASE_URL=http://HOST:PORT/v1).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from lottery import asolve
from lottery.errors import ModelServerError
from tests.integration.servers import FaultProxy, free_port, stub_server

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("planner_policy")]
"""The scripted model server answers planner decisions: runs follow the planner policy."""

Q = "Sum | alpha | beta | gamma"
EXPECTED = "ans(alpha)+ans(beta)+ans(gamma)"
FAST = {"model": "stub", "request_timeout": 5.0}


async def test_a_plain_run_through_the_proxy_answers_every_part(proxy):
    result = await asolve(Q, base_url=proxy.base_url, **FAST)
    assert result.answer == EXPECTED
    assert Counter(proxy.delivered("solve")) == Counter(["alpha", "beta", "gamma"])


@pytest.mark.parametrize("mode,spec", [
    ("error", {"status": 500, "times": 2}),
    ("error", {"status": 503, "times": 1}),
    ("cut", {"times": 1}),
    ("reset", {"times": 2}),
    ("slow", {"delay": 3.0, "times": 1}),
])
async def test_transient_faults_are_retried_and_the_run_still_answers(proxy, mode, spec):
    proxy.arm(mode, **spec)
    start = time.monotonic()
    result = await asolve(Q, base_url=proxy.base_url, model="stub", request_timeout=1.0)
    assert result.answer == EXPECTED
    assert proxy.stats()["faults"][mode] == spec["times"], "every armed fault was injected"
    assert time.monotonic() - start < 20


@pytest.mark.parametrize("mode,spec", [
    ("error", {"status": 500}),
    ("reset", {}),
    ("cut", {}),
    ("slow", {"delay": 30.0}),
])
async def test_a_server_that_keeps_failing_ends_in_one_clear_error_in_bounded_time(proxy, mode, spec):
    proxy.arm(mode, **spec)
    start = time.monotonic()
    with pytest.raises(ModelServerError) as info:
        await asolve(Q, base_url=proxy.base_url, model="stub", request_timeout=1.0)
    elapsed = time.monotonic() - start
    message = str(info.value)
    assert proxy.base_url in message and "3 attempts" in message
    assert len(message.splitlines()) == 1
    assert proxy.stats()["requests"] == 3, "bounded: the first call is tried exactly 3 times"
    assert elapsed < 12, f"gave up after {elapsed:.1f}s"


async def test_connection_refused_fails_fast_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    start = time.monotonic()
    with pytest.raises(ModelServerError, match=url.replace(".", r"\.")):
        await asolve(Q, base_url=url, **FAST)
    assert time.monotonic() - start < 10


async def test_a_failed_run_resumes_from_its_checkpoint_without_answering_anything_twice(proxy):
    proxy.arm("error", status=500, match="Question: gamma")  # one branch keeps failing
    saver = InMemorySaver()
    with pytest.raises(ModelServerError, match=r"resume with `lottery resume t-1` \(or thread_id='t-1'\)"):
        await asolve(Q, base_url=proxy.base_url, checkpointer=saver, thread_id="t-1", **FAST)
    done_before = proxy.delivered()
    assert "gamma" not in done_before and "alpha" in done_before
    proxy.arm("pass")  # the server is healthy again
    result = await asolve(Q, base_url=proxy.base_url, checkpointer=saver, thread_id="t-1", **FAST)
    assert result.answer == EXPECTED and not result.best_effort
    delivered = [(d["step"], d["question"]) for d in proxy.stats()["delivered"]]
    twice = [k for k, n in Counter(delivered).items() if n > 1]
    assert twice == [], f"answered twice: {twice}"
    assert len(delivered) == 8, "1 root plan + 3 plans + 3 solves + 1 merge"


@pytest.mark.parametrize("saver_kind", ["memory", "sqlite"])
async def test_server_killed_mid_run_and_restarted_the_run_resumes_and_answers_nothing_twice(
    tmp_path, saver_kind
):
    stub = stub_server(delay_s=0.6).start()
    proxy = FaultProxy.before(stub.url).start()
    try:
        async with _saver(saver_kind, tmp_path) as saver:
            run = asyncio.create_task(asolve(Q, base_url=proxy.base_url, checkpointer=saver,
                                             thread_id="t-kill", **FAST))
            while len(proxy.delivered()) < 4 and not run.done():  # root plan + 3 plans
                await asyncio.sleep(0.02)
            stub.kill()  # the solves are in flight
            with pytest.raises(ModelServerError):
                await asyncio.wait_for(run, 30)
            assert proxy.delivered("solve") == []
            stub = stub_server(delay_s=0.0, port=stub.port).start()  # back, same port
            result = await asolve(Q, base_url=proxy.base_url, checkpointer=saver,
                                  thread_id="t-kill", **FAST)
        assert result.answer == EXPECTED
        delivered = Counter((d["step"], d["question"]) for d in proxy.stats()["delivered"])
        assert max(delivered.values()) == 1, f"answered twice: {delivered}"
        assert sum(delivered.values()) == 8
    finally:
        proxy.stop()
        stub.stop()


class _saver:
    """An async context manager yielding a checkpointer of the given kind."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind, self.path, self.cm = kind, tmp_path / "checkpoints.sqlite", None

    async def __aenter__(self):
        if self.kind == "memory":
            return InMemorySaver()
        sqlite = pytest.importorskip(
            "langgraph.checkpoint.sqlite.aio",
            reason="langgraph-checkpoint-sqlite is not installed (the persistence issue adds it)")
        self.cm = sqlite.AsyncSqliteSaver.from_conn_string(str(self.path))
        return await self.cm.__aenter__()

    async def __aexit__(self, *exc):
        if self.cm is not None:
            await self.cm.__aexit__(*exc)


def real_server_url() -> str | None:
    """Base URL (…/v1) of a real vLLM server to test against, if one is up.

    ``LOTTERY_TEST_BASE_URL``, when it is set and the server answers.
    """
    url = os.environ.get("LOTTERY_TEST_BASE_URL")
    if not url:
        return None
    try:
        httpx.get(url.rstrip("/") + "/models", timeout=5).raise_for_status()
    except httpx.HTTPError:
        return None
    return url


async def test_faults_in_front_of_a_real_vllm_server_are_survived():
    url = real_server_url()
    if url is None:
        pytest.skip("no real vLLM server: set LOTTERY_TEST_BASE_URL or start `lottery serve`")
    upstream = url.rstrip("/").removesuffix("/v1")
    model = httpx.get(url.rstrip("/") + "/models", timeout=5).json()["data"][0]["id"]
    try:  # a shared CPU server can be saturated by other work: then this test says so
        httpx.post(url.rstrip("/") + "/chat/completions", timeout=90, json={
            "model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]})
    except httpx.TimeoutException:
        pytest.skip(f"the vLLM server at {url} is saturated (a 1-token reply took over 90 s)")
    proxy = FaultProxy.before(upstream).start()
    try:
        proxy.arm("error", status=500, times=1)
        proxy.arm("cut", times=1)
        result = await asolve("Ann has 2 pens and gets 3 more. How many pens does she have?",
                              base_url=proxy.base_url, model=model,
                              request_timeout=300.0, max_calls=6)
        assert result.answer and "5" in result.answer
        assert proxy.stats()["faults"] == {"error": 1, "cut": 1}
    finally:
        proxy.stop()
