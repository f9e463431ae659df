"""Scale-out on the real graph server: two Aegra workers on ONE PostgreSQL, one killed mid-load.

Aegra does not take over a dead worker's runs; the client (lottery.remote) continues each
broken run on the other worker from its checkpoint (or from its input when it had none).
Bounded: 50 runs against a scripted model server, all on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.integration.servers import REPO, stub_server

pytestmark = pytest.mark.integration


def _load_module():
    spec = importlib.util.spec_from_file_location("scale_out", REPO / "benchmarks" / "scale_out.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fifty_runs_on_two_workers_survive_killing_one_with_none_lost(tmp_path: Path):
    pytest.importorskip("aegra_api", reason="Aegra not installed: pip install -e '.[server]'")
    from tests.integration.postgres import create_database, postgres_server

    scale_out = _load_module()
    stub = stub_server(delay_s=0.15).start()
    out = tmp_path / "scale_out.json"
    try:
        with postgres_server() as server_url:
            database = create_database(server_url).replace("postgresql+psycopg://", "postgresql://")
            report = scale_out.main(["--base-url", f"{stub.url}/v1", "--database-url", database,
                                     "-n", "50", "--concurrency", "10", "--kill-after", "10",
                                     "--deadline", "240", "--out", str(out)])
    finally:
        stub.stop()
    assert json.loads(out.read_text()) == report
    assert report["killed_worker_after_s"] is not None
    assert report["interrupted_by_the_kill"] >= 1, "the kill must hit runs in flight"
    assert report["completed"] == 50 and report["lost"] == 0, report["lost_runs"]
    assert report["wrong_answers"] == 0, "a continued run ends with the same answer"
