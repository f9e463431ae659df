"""What tracing costs a run: a scripted Algorithm 1 run, tracing off vs on, many repetitions.

The run is the one the tracing tests use (a divide into three parallel
sub-problems that retrieve, call the calculator and solve, then a merge: 7
model calls, 24 spans), driven by ``ScriptedChatModel`` with no delay, so the
graph itself is all that is timed and any tracing cost shows at its largest.

Modes, interleaved round by round so drift on a shared machine hits all alike:

- ``uninstrumented``: the graph built without the node wrapper and with the
  model-call hook stubbed out (what the code cost before tracing existed);
- ``off``: the shipped code with no tracer or meter provider (the default);
- ``on``: an SDK tracer provider with an in-memory exporter;
- ``on+metrics``: the same plus an SDK meter provider with an in-memory reader.

    python benchmarks/tracing_overhead.py [--runs 300] [--out results/tracing_overhead]

Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.store.memory import InMemoryStore
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lottery.core import tracing
from lottery.graphs import algorithm1
from lottery.resources import Resources
from lottery.stores.knowledge import Document, InMemoryKnowledgeBase
from lottery.testing import ScriptedChatModel

QUESTION = "What is the capital of France, what is 17 * 23, and what colour is the sky?"
SUBS = {
    "What is the capital of France?": '{"action": "retrieve", "query": "capital of France"}',
    "What is 17 * 23?": ('{"action": "tool", "tool": "calculator", '
                         '"tool_input": {"expression": "17 * 23"}}'),
    "What colour is the sky?": '{"action": "solve"}',
}
DIVIDE = json.dumps({"action": "divide", "subproblems": [{"question": q} for q in SUBS]})
MODES = ("uninstrumented", "off", "on", "on+metrics")


def respond(messages: Sequence[BaseMessage]) -> str:
    system, user = str(messages[0].content), str(messages[-1].content)
    if system.startswith("You plan"):
        return SUBS.get(user.rsplit("Question: ", 1)[-1].strip(), DIVIDE)
    if system.startswith("Combine"):
        return "Answer: Paris, 391, blue"
    return "Answer: " + ("Paris" if "France" in user else "391" if "17" in user else "blue")


class _NoCall:
    def done(self, message: Any) -> None:
        pass


@contextlib.contextmanager
def _no_model_call(self: Any, messages: Any, params: Any) -> Any:
    yield _NoCall()


def build(mode: str) -> Any:
    """The compiled graph for a mode (uninstrumented: without the wrapper)."""
    if mode != "uninstrumented":
        return algorithm1.build_graph().compile(store=InMemoryStore())
    original = algorithm1.traced
    algorithm1.traced = lambda fn: fn  # type: ignore[assignment]
    try:
        return algorithm1.build_graph().compile(store=InMemoryStore())
    finally:
        algorithm1.traced = original


async def one_run(mode: str, graph: Any, providers: dict[str, Any]
                  ) -> tuple[float, float, int]:
    kb = InMemoryKnowledgeBase("geo", [Document("fr", "Paris is the capital of France.")])
    ctx = Resources(chat_model=ScriptedChatModel(respond=respond), knowledge=kb,
                    tracer_provider=providers.get("tracer"),
                    meter_provider=providers.get("meter")).settings
    patch = (contextlib.ExitStack() if mode != "uninstrumented"
             else _patched(tracing.Telemetry, "model_call", _no_model_call))
    with patch:
        start, cpu_start = time.perf_counter(), time.process_time()
        state = await graph.ainvoke({"question": QUESTION}, context=ctx,
                                    config={"recursion_limit": algorithm1.RECURSION_LIMIT})
        elapsed, cpu = (time.perf_counter() - start,
                        time.process_time() - cpu_start)
    assert state["answer"] == "Paris, 391, blue", state["answer"]
    exporter = providers.get("exporter")
    spans = len(exporter.get_finished_spans()) if exporter else 0
    if exporter:
        exporter.clear()
    return elapsed, cpu, spans


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Any:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


def providers_for(mode: str) -> dict[str, Any]:
    if mode in ("uninstrumented", "off"):
        return {}
    exporter = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(exporter))
    out: dict[str, Any] = {"tracer": tracer, "exporter": exporter}
    if mode == "on+metrics":
        out["meter"] = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return out


async def main(runs: int, warmup: int) -> dict[str, Any]:
    graphs = {m: build(m) for m in MODES}
    providers = {m: providers_for(m) for m in MODES}
    wall: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: dict[str, list[float]] = {m: [] for m in MODES}
    spans: dict[str, int] = {}
    for i in range(warmup + runs):
        for mode in MODES if i % 2 == 0 else reversed(MODES):
            gc.collect()
            elapsed, used, n = await one_run(mode, graphs[mode], providers[mode])
            spans[mode] = n
            if i >= warmup:
                wall[mode].append(elapsed * 1000)
                cpu[mode].append(used * 1000)
    base = statistics.median(cpu["uninstrumented"])
    rows = {}
    for mode in MODES:
        c, w = sorted(cpu[mode]), sorted(wall[mode])
        med = statistics.median(c)
        low, high = paired_ci(cpu[mode], cpu["uninstrumented"])
        rows[mode] = {
            "cpu_median_ms": round(med, 3), "cpu_p10_ms": round(c[len(c) // 10], 3),
            "cpu_p90_ms": round(c[9 * len(c) // 10], 3),
            "wall_median_ms": round(statistics.median(w), 3),
            "cpu_overhead_vs_uninstrumented_pct": round(100 * (med - base) / base, 2),
            "cpu_paired_diff_ms_95ci": [round(low, 3), round(high, 3)],
            "cpu_overhead_per_span_us": (round(1000 * (med - base) / spans[mode], 1)
                                         if spans[mode] else None),
            "spans_per_run": spans[mode],
        }
    return {"benchmark": "tracing_overhead", "runs_per_mode": runs, "warmup": warmup,
            "model_calls_per_run": 7, "python": sys.version.split()[0],
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "modes": rows}


def paired_ci(runs: list[float], baseline: list[float], rounds: int = 2000
              ) -> tuple[float, float]:
    """95 % bootstrap interval of the median per-round difference (runs were interleaved)."""
    diffs = [a - b for a, b in zip(runs, baseline, strict=True)]
    rng = random.Random(7)
    medians = sorted(statistics.median(rng.choices(diffs, k=len(diffs))) for _ in range(rounds))
    return medians[int(0.025 * rounds)], medians[int(0.975 * rounds) - 1]


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Scripted Algorithm 1 run (divide into 3 parallel sub-problems: retrieve, tool, solve; "
        f"merge; {result['model_calls_per_run']} model calls), {result['runs_per_mode']} runs "
        f"per mode after {result['warmup']} warm-up, modes interleaved; Python "
        f"{result['python']}, {result['date']}. CPU time of the process per run (robust to "
        f"other load on the machine); wall-clock median for reference.",
        "",
        "| mode | CPU median ms | CPU p10–p90 ms | vs uninstrumented | paired diff, 95 % CI "
        "| per span | spans/run | wall median ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, r in result["modes"].items():
        per_span = (f"{r['cpu_overhead_per_span_us']} µs" if r["cpu_overhead_per_span_us"]
                    else "–")
        ci = r["cpu_paired_diff_ms_95ci"]
        lines.append(f"| {mode} | {r['cpu_median_ms']} | {r['cpu_p10_ms']}–{r['cpu_p90_ms']} | "
                     f"{r['cpu_overhead_vs_uninstrumented_pct']:+.1f} % | "
                     f"{ci[0]:+.3f} … {ci[1]:+.3f} ms | {per_span} | "
                     f"{r['spans_per_run']} | {r['wall_median_ms']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", default="results/tracing_overhead")
    args = parser.parse_args()
    result = asyncio.run(main(args.runs, args.warmup))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
