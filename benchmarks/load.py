"""Load: N concurrent short questions through ONE process against a local model server.

Reports throughput, p50/p95 latency, peak RSS and failures, checks that every
finished run's problem tree is in memory M (and, with a checkpointer, in its
checkpoint), and writes the figures to a JSON file under ``results/``::

    python benchmarks/load.py --base-url http://127.0.0.1:8000/v1 -n 100
    python benchmarks/load.py --base-url http://127.0.0.1:8000/v1 -n 40 --checkpointer sqlite

Bounded on purpose: at most 1000 questions, a deadline for the whole load, and
only servers on 127.0.0.1/localhost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import resource
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from langgraph.store.memory import InMemoryStore

from lottery import asolve
from lottery.errors import LotteryError
from lottery.nodes.memory import problem_namespace

MAX_QUESTIONS = 1000
LOCAL = re.compile(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?(/|$)")


def questions(n: int) -> list[str]:
    """``n`` short, distinct questions with known answers."""
    return [f"What is {7 + i} plus {3 * i + 1}?" for i in range(n)]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def run_load(
    base_url: str, *, n: int = 100, model: str | None = None, strategy: str = "algorithm1",
    concurrency: int | None = None, deadline_s: float = 900.0, checkpointer: str = "none",
    checkpoint_path: Path | None = None, **settings: Any,
) -> dict[str, Any]:
    """Send ``n`` questions at once (at most ``concurrency`` in flight) and measure."""
    if not LOCAL.match(base_url):
        raise SystemExit(f"refusing {base_url}: load tests only run against 127.0.0.1/localhost")
    if not 1 <= n <= MAX_QUESTIONS:
        raise SystemExit(f"-n must be between 1 and {MAX_QUESTIONS}")
    store = InMemoryStore()
    gate = asyncio.Semaphore(concurrency or n)
    latencies: list[float] = []
    failures: dict[str, int] = {}
    unclean: list[str] = []
    results = []
    rss_start = peak_rss_mib()

    async with AsyncExitStack() as stack:
        saver = await _checkpointer(stack, checkpointer, checkpoint_path)

        async def one(i: int, question: str) -> None:
            async with gate:
                start = time.perf_counter()
                try:
                    result = await asolve(question, strategy=strategy, base_url=base_url, model=model,
                                          store=store, checkpointer=saver,
                                          thread_id=f"load-{i}" if saver else None, **settings)
                except LotteryError as exc:
                    failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                    return
                except Exception as exc:  # counted, not raised: the report must say it happened
                    unclean.append(f"{type(exc).__name__}: {exc}"[:300])
                    return
                latencies.append(time.perf_counter() - start)
                results.append(result)

        wall_start = time.perf_counter()
        tasks = [asyncio.create_task(one(i, q)) for i, q in enumerate(questions(n))]
        done, pending = await asyncio.wait(tasks, timeout=deadline_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        wall = time.perf_counter() - wall_start

        stored = 0
        for r in results:
            items = await store.asearch(problem_namespace(r.run_id), limit=1000)
            in_checkpoint = True
            if saver is not None:
                tup = await saver.aget_tuple({"configurable": {"thread_id": r.run_id}})
                in_checkpoint = tup is not None and set(
                    tup.checkpoint["channel_values"].get("problems", {})) == set(r.tree)
            stored += {i.key for i in items} >= set(r.tree) and in_checkpoint

    calls = sum(r.usage.calls for r in results)
    return {
        "benchmark": "load", "base_url": base_url, "model": model, "strategy": strategy,
        "questions": n, "concurrency": concurrency or n, "checkpointer": checkpointer,
        "completed": len(results), "failed_cleanly": failures, "unclean_failures": unclean,
        "timed_out": len(pending), "trees_stored": stored,
        "correct": sum(_correct(r.question, r.answer) for r in results),
        "best_effort": sum(r.best_effort for r in results),
        "wall_s": round(wall, 2),
        "throughput_questions_per_s": round(len(results) / wall, 3) if wall else None,
        "model_calls": calls, "calls_per_s": round(calls / wall, 3) if wall else None,
        "latency_p50_s": _round(percentile(latencies, 0.50)),
        "latency_p95_s": _round(percentile(latencies, 0.95)),
        "latency_max_s": round(max(latencies), 2) if latencies else None,
        "peak_rss_mib": round(peak_rss_mib(), 1), "rss_at_start_mib": round(rss_start, 1),
        "python": platform.python_version(), "settings": settings,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _correct(question: str, answer: str | None) -> bool:
    a, b = map(int, re.findall(r"\d+", question)[:2])
    return str(a + b) in (answer or "")


async def _checkpointer(stack: AsyncExitStack, kind: str, path: Path | None) -> Any:
    if kind == "none":
        return None
    if kind == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()
    if kind == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        if path is None:
            path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "checkpoints.sqlite"
        target = path
        target.unlink(missing_ok=True)
        return await stack.enter_async_context(AsyncSqliteSaver.from_conn_string(str(target)))
    raise SystemExit(f"unknown checkpointer {kind!r}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="model server on 127.0.0.1 (…/v1)")
    parser.add_argument("--model", default=None)
    parser.add_argument("-n", type=int, default=100, help="questions (default 100, at most 1000)")
    parser.add_argument("--concurrency", type=int, default=None, help="in flight at once (default n)")
    parser.add_argument("--strategy", default="algorithm1")
    parser.add_argument("--max-calls", type=int, default=6, help="budget of model calls per question")
    parser.add_argument("--request-timeout", type=float, default=600.0)
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds for the whole load")
    parser.add_argument("--checkpointer", choices=["none", "memory", "sqlite"], default="none")
    parser.add_argument("--out", type=Path, default=Path("results/load.json"))
    args = parser.parse_args(argv)
    report = asyncio.run(run_load(
        args.base_url, n=args.n, model=args.model, strategy=args.strategy,
        concurrency=args.concurrency, deadline_s=args.deadline, checkpointer=args.checkpointer,
        max_calls=args.max_calls, request_timeout=args.request_timeout))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    sys.exit(0 if main()["unclean_failures"] == [] else 1)
