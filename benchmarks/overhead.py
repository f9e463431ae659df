"""Framework overhead of Algorithm 1: its own time per node step, and its share of a real run.

Two measurements (issue 9's targets: < 2 ms per node step; < 5 % of a real run's
wall time outside model calls):

- ``scripted``: an instant scripted model (no server) drives a 6-problem tree
  (root divides into 4 sub-problems, one depending on another; each is solved;
  the root merges). Every node execution is one step; the framework's time per
  step is (wall - time inside model calls) / steps, over ``--repeat`` runs.
- ``--base-url URL``: the same graph against a real model server, one question
  at a time (GSM8K items); the share of wall time outside model calls, and of
  it the share inside tools (the program sandbox).

Usage::

    python benchmarks/overhead.py [--repeat 50] [--base-url http://127.0.0.1:8000/v1 --items 3]

Writes ``results/overhead.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import BaseMessage
from langgraph.store.memory import InMemoryStore

from lottery.api import build_graph, make_resources
from lottery.bench.suites import load_suite
from lottery.core.context import Context
from lottery.nodes import prompts
from lottery.testing import ScriptedChatModel

ROOT_Q = "Tom has 3 boxes of 12 apples and Ann has 2 boxes of 15. Who has more, and by how many?"
SUBS = [{"question": "How many apples does Tom have?"},
        {"question": "How many apples does Ann have?"},
        {"question": "Who has more apples, Tom (#1) or Ann (#2)?", "depends_on": [1, 2]},
        {"question": "What is the difference between #1 and #2?", "depends_on": [1, 2]}]


class Timeline(AsyncCallbackHandler):
    """Intervals spent inside model calls and tool runs (LangChain callbacks)."""

    def __init__(self) -> None:
        self.started: dict[UUID, tuple[str, float]] = {}
        self.spans: dict[str, list[tuple[float, float]]] = {"model": [], "tool": []}

    def _open(self, kind: str, run_id: UUID) -> None:
        self.started[run_id] = (kind, time.perf_counter())

    def _close(self, run_id: UUID) -> None:
        if run_id in self.started:
            kind, start = self.started.pop(run_id)
            self.spans[kind].append((start, time.perf_counter()))

    async def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                                  **kwargs: Any) -> None:
        self._open("model", run_id)

    async def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id)

    async def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID,
                            **kwargs: Any) -> None:
        self._open("tool", run_id)

    async def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id)

    async def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._close(run_id)

    def busy(self, *kinds: str) -> float:
        """Seconds covered by the spans of ``kinds`` (overlapping parallel calls count once)."""
        spans = sorted(s for k in kinds for s in self.spans[k])
        total, end = 0.0, float("-inf")
        for a, b in spans:
            if b > end:
                total += b - max(a, end)
                end = b
        return total


async def timed_run(question: str, ctx: Context) -> dict[str, Any]:
    """One Algorithm 1 run: wall time, node steps, time inside model calls and tools."""
    graph = build_graph("algorithm1").compile(store=InMemoryStore())
    timeline = Timeline()
    steps = 0
    start = time.perf_counter()
    async for _ in graph.astream({"question": question}, context=ctx, stream_mode="updates",
                                 config={"callbacks": [timeline], "recursion_limit": 500}):
        steps += 1  # one chunk per node execution (each Send branch is one)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "steps": steps, "model_s": timeline.busy("model"),
            "tool_s": timeline.busy("tool"), "model_or_tool_s": timeline.busy("model", "tool"),
            "model_calls": len(timeline.spans["model"])}


def scripted_model() -> ScriptedChatModel:
    def respond(messages: Sequence[BaseMessage]) -> str:
        system, user = str(messages[0].content), str(messages[-1].content)
        if system.startswith(prompts.PLANNER_SYSTEM[:20]):
            if user.endswith(ROOT_Q):
                return json.dumps({"action": "divide", "reason": "parts", "subproblems": SUBS})
            return json.dumps({"action": "solve", "reason": "simple"})
        return "Answer: 36"

    return ScriptedChatModel(respond=respond)


async def scripted(repeat: int) -> dict[str, Any]:
    await timed_run(ROOT_Q, make_resources(chat_model=scripted_model(), reuse=False).settings)
    runs = [await timed_run(ROOT_Q, make_resources(chat_model=scripted_model(),
                                                  reuse=False).settings)
            for _ in range(repeat)]
    per_step = [(r["wall_s"] - r["model_s"]) / r["steps"] * 1e3 for r in runs]
    per_step_all = [r["wall_s"] / r["steps"] * 1e3 for r in runs]
    return {"runs": repeat, "steps_per_run": runs[0]["steps"],
            "model_calls_per_run": runs[0]["model_calls"],
            "framework_ms_per_step_median": round(statistics.median(per_step), 3),
            "framework_ms_per_step_p95": round(sorted(per_step)[int(0.95 * (len(per_step) - 1))], 3),
            "wall_ms_per_step_median_incl_scripted_model": round(statistics.median(per_step_all), 3),
            "wall_ms_per_run_median": round(statistics.median(r["wall_s"] for r in runs) * 1e3, 2)}


async def real(base_url: str, model: str, items: int) -> dict[str, Any]:
    rows = []
    for item in load_suite("gsm8k", limit=items).items:
        res = make_resources(base_url=base_url, model=model, reuse=False, request_timeout=3000)
        try:
            r = await timed_run(item.question, res.settings)
        finally:
            await res.aclose()
        outside = r["wall_s"] - r["model_s"]
        rows.append({"id": item.id, **{k: round(v, 3) if isinstance(v, float) else v
                                       for k, v in r.items()},
                     "outside_model_share": round(outside / r["wall_s"], 4),
                     "framework_share": round((r["wall_s"] - r["model_or_tool_s"]) / r["wall_s"], 4)})
        print(json.dumps(rows[-1]), flush=True)
    wall = sum(r["wall_s"] for r in rows)
    return {"items": rows, "wall_s": round(wall, 2),
            "outside_model_share": round(sum(r["wall_s"] - r["model_s"] for r in rows) / wall, 4),
            "tool_share": round(sum(r["model_or_tool_s"] - r["model_s"] for r in rows) / wall, 4),
            "framework_share": round(sum(r["wall_s"] - r["model_or_tool_s"] for r in rows) / wall, 4)}


async def main(args: argparse.Namespace) -> None:
    out: dict[str, Any] = {"benchmark": "overhead"}
    if args.out.exists():  # keep the numbers of the half not run this time
        out = {**json.loads(args.out.read_text()), **out}
    if not args.skip_scripted:
        out["scripted"] = await scripted(args.repeat)
        print("scripted:", json.dumps(out["scripted"]), flush=True)
    if args.base_url:
        out["real"] = {"base_url": args.base_url, "model": args.model,
                       **await real(args.base_url, args.model, args.items)}
        print("real:", json.dumps({k: v for k, v in out["real"].items() if k != "items"}))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--skip-scripted", action="store_true")
    parser.add_argument("--base-url")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--items", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("results/overhead.json"))
    asyncio.run(main(parser.parse_args()))
