"""Scale-out: two graph-server workers on ONE PostgreSQL, one killed in the middle of the load.

Starts two ``python -m lottery.server`` workers (Aegra) on 127.0.0.1 sharing one
database, sends ``-n`` Algorithm 1 runs spread over both (at most ``--concurrency`` at
once), SIGKILLs the first worker (its whole process group) once ``--kill-after`` runs
have completed, and lets the client (:func:`lottery.remote.arun_on_server`) finish every
run on the surviving worker. Reports how each run ended (first try, continued from its
checkpoint, restarted from its input), runs lost, wrong answers, latency and the runs
the dead worker left marked as running, and writes them to a JSON file::

    python benchmarks/scale_out.py --base-url http://127.0.0.1:8123/v1 \\
        --database-url postgresql://user@127.0.0.1:5432/aegra -n 50

The model server must answer the scripted planner prompts (tests/integration/openai_stub.py);
the test suite runs this with a throw-away PostgreSQL (tests/integration/test_scale_out.py).
Bounded on purpose: at most 200 runs, a deadline, servers on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lottery.errors import RemoteRunError
from lottery.remote import arun_on_server
from lottery.testing import server_process

REPO = Path(__file__).resolve().parent.parent
MAX_RUNS = 200
LOCAL = re.compile(r"^(https?|postgresql(\+\w+)?)://([^@/]*@)?(127\.0\.0\.1|localhost)(:\d+)?(/|$)")


def question(i: int) -> tuple[str, str]:
    """A question the scripted model divides in two and merges, and its answer."""
    parts = [f"How tall is tower A{i}?", f"How tall is tower B{i}?"]
    return (f"Which of the towers A{i} and B{i} is taller? | " + " | ".join(parts),
            "+".join(f"ans({p})" for p in parts))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def worker(env: dict[str, str], log: Path, timeout_s: float = 120) -> Iterator[tuple[str, subprocess.Popen]]:
    """One graph-server worker on a free port; yields its URL and process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "lottery.server", "--host", "127.0.0.1", "--port", str(port)]
    with server_process(cmd, cwd=REPO, env=env, health=f"{url}/health", log=log,
                        timeout_s=timeout_s) as proc:
        yield url, proc


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run_scale_out(base_url: str, database_url: str, *, n: int = 50, concurrency: int = 10,
                        kill_after: int = 10, deadline_s: float = 300,
                        workdir: Path | None = None) -> dict[str, Any]:
    """Two workers, ``n`` runs, the first worker killed after ``kill_after`` completions."""
    for url in (base_url, database_url):
        if not LOCAL.match(url):
            raise SystemExit(f"refusing {url}: scale-out runs only against 127.0.0.1/localhost")
    if not 1 <= n <= MAX_RUNS:
        raise SystemExit(f"-n must be between 1 and {MAX_RUNS}")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="scale-out-"))
    key = secrets.token_hex(16)
    env = {**os.environ, "DATABASE_URL": database_url, "AEGRA_CONFIG": "langgraph.json",
           "LOTTERY_API_KEYS": f"bench:{key}", "LOTTERY_BASE_URL": base_url,
           "LOTTERY_MODEL": "scripted", "LOTTERY_POLICY": "planner",
           "LOTTERY_HOME": str(workdir / "home"), "OTEL_TRACES_EXPORTER": "none",
           "OTEL_METRICS_EXPORTER": "none"}
    with contextlib.ExitStack() as stack:
        # one after the other: each runs the database migrations at start
        first_url, first = stack.enter_context(worker(env, workdir / "worker-1.log"))
        second_url, _ = stack.enter_context(worker(env, workdir / "worker-2.log"))
        urls = [first_url, second_url]
        gate = asyncio.Semaphore(concurrency)
        done = asyncio.Event()
        completed = 0
        killed_at: float | None = None
        outcomes: list[dict[str, Any]] = []
        start = time.perf_counter()

        async def one(i: int) -> None:
            nonlocal completed
            text, expected = question(i)
            order = urls[i % 2:] + urls[:i % 2]  # spread over both workers
            async with gate:
                t0 = time.perf_counter()
                try:
                    run = await arun_on_server(order, "algorithm1", {"question": text},
                                               api_key=key, attempts=3, timeout_s=120)
                except RemoteRunError as exc:
                    outcomes.append({"run": i, "lost": True, "error": str(exc)[:300]})
                    return
                outcomes.append({"run": i, "lost": False, "how": run.how,
                                 "first_worker": order[0] == first_url, "thread_id": run.thread_id,
                                 "right": run.values.get("answer") == expected,
                                 "answer": str(run.values.get("answer"))[:200],
                                 "attempts": run.attempts, "latency_s": time.perf_counter() - t0})
                completed += 1
                if completed >= kill_after:
                    done.set()

        async def killer() -> None:
            nonlocal killed_at
            await done.wait()
            os.killpg(first.pid, signal.SIGKILL)
            killed_at = time.perf_counter() - start

        kill_task = asyncio.create_task(killer())
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), deadline_s)
        kill_task.cancel()
        wall = time.perf_counter() - start
        zombies = await _left_running(second_url, key, [o["thread_id"] for o in outcomes
                                                         if o.get("how", "first try") != "first try"])
    hows = Counter(o.get("how", "lost") for o in outcomes)
    latencies = [o["latency_s"] for o in outcomes if not o["lost"]]
    return {
        "benchmark": "scale_out", "workers": 2, "server": "aegra (python -m lottery.server)",
        "database": "one PostgreSQL", "runs": n, "concurrency": concurrency,
        "killed_worker_after_s": round(killed_at, 2) if killed_at is not None else None,
        "completed": sum(not o["lost"] for o in outcomes),
        "lost": sum(o["lost"] for o in outcomes),
        "wrong_answers": sum(not o.get("right", True) for o in outcomes),
        "first_try": hows["first try"],
        "continued_from_checkpoint": hows["continued from checkpoint"],
        "restarted_from_input": hows["restarted from input"],
        "found_finished": hows["finished"],
        "interrupted_by_the_kill": sum(o.get("how", "") != "first try" for o in outcomes),
        "runs_left_marked_running": zombies,
        "wall_s": round(wall, 2), "runs_per_s": round(n / wall, 2),
        "latency_p50_s": round(percentile(latencies, 0.5) or 0, 3),
        "latency_p95_s": round(percentile(latencies, 0.95) or 0, 3),
        "lost_runs": [o for o in outcomes if o["lost"]],
        "wrong_runs": [o for o in outcomes if not o.get("right", True)],
    }


async def _left_running(url: str, key: str, thread_ids: list[str]) -> int:
    """Runs of the interrupted threads still marked pending/running (the dead worker's)."""
    from langgraph_sdk import get_client

    client = get_client(url=url, api_key=key)
    left = 0
    for thread_id in thread_ids:
        runs = await client.runs.list(thread_id)
        left += sum(r["status"] in ("pending", "running") for r in runs)
    return left


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="scripted model server, 127.0.0.1")
    parser.add_argument("--database-url", required=True, help="postgresql://... on 127.0.0.1")
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--kill-after", type=int, default=10, help="completed runs before the kill")
    parser.add_argument("--deadline", type=float, default=300)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "scale_out.json")
    args = parser.parse_args(argv)
    report = asyncio.run(run_scale_out(args.base_url, args.database_url, n=args.n,
                                       concurrency=args.concurrency, kill_after=args.kill_after,
                                       deadline_s=args.deadline))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "lost_runs"}, indent=2))
    return report


if __name__ == "__main__":
    main()
