"""Load, CI-sized: concurrent questions through one process against a real HTTP model server."""

from __future__ import annotations

import importlib.util
import json

import pytest

from lottery import solve
from tests.integration.servers import REPO, stub_server

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("planner_policy")]
"""The scripted model server answers planner decisions: runs follow the planner policy."""


def _load_module():
    spec = importlib.util.spec_from_file_location("load", REPO / "benchmarks" / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("checkpointer", ["none", "sqlite"])
def test_forty_concurrent_questions_all_complete_with_every_tree_stored(tmp_path, checkpointer):
    if checkpointer == "sqlite":
        pytest.importorskip("langgraph.checkpoint.sqlite.aio",
                            reason="langgraph-checkpoint-sqlite is not installed (persistence issue)")
    load = _load_module()
    stub = stub_server(delay_s=0.05).start()
    out = tmp_path / "load.json"
    try:
        report = load.main(["--base-url", f"{stub.url}/v1", "--model", "stub", "-n", "40",
                            "--checkpointer", checkpointer, "--deadline", "240",
                            "--out", str(out)])
    finally:
        stub.stop()
    assert json.loads(out.read_text()) == report
    assert report["completed"] == 40, report
    assert report["failed_cleanly"] == {} and report["unclean_failures"] == []
    assert report["trees_stored"] == 40, "every run's tree is in memory M (and its checkpoint)"
    assert report["latency_p95_s"] >= report["latency_p50_s"] > 0
    assert report["peak_rss_mib"] < 1024


def test_load_refuses_a_server_that_is_not_on_localhost():
    load = _load_module()
    with pytest.raises(SystemExit, match="127.0.0.1"):
        load.main(["--base-url", "http://example.com/v1", "-n", "1"])


def test_solve_can_be_called_again_in_the_same_process():
    # Each solve() runs its own event loop; pooled connections of an earlier loop must not
    # be reused (they failed with "Event loop is closed").
    stub = stub_server().start()
    try:
        answers = [solve(f"What is {i}?", base_url=f"{stub.url}/v1", model="stub").answer
                   for i in range(3)]
    finally:
        stub.stop()
    assert answers == [f"ans(What is {i}?)" for i in range(3)]
