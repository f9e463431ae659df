"""Compare direct, chain-of-thought and tool-using runs on GSM8K, SVAMP and the logic sets.

Runs against a REAL OpenAI-compatible server (the shared vLLM server with the
default 0.5B model). Methods:

- ``direct``: one call, short answer (``strategy="direct"``).
- ``cot``: one call, think step by step (``strategy="cot"``).
- ``program``: the tool path of Algorithm 1 for one problem: one greedy program
  (``python`` for math, ``logic`` for the logic sets), run in the sandbox, one fix
  on error.
- ``program_vote``: the same with N sampled programs in one request, executed
  and voted on (programs that fail have no vote), one fix when none runs.
- ``algorithm1``: the full graph (planner chooses solve/retrieve/tool/divide).

Usage::

    python benchmarks/tools_bench.py --base-url http://127.0.0.1:8000/v1 \
        --sets gsm8k,svamp --methods cot,program,program_vote --limit 30 --concurrency 10

Writes every item's record and a summary to ``results/tools-<timestamp>.json`` and
prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from lottery.api import asolve, make_resources
from lottery.bench.runner import tally
from lottery.bench.suites import Item, load_suite
from lottery.nodes.programs import run_programs

REPO = Path(__file__).resolve().parents[1]
LOGIC_SETS = ("prontoqa", "proofwriter", "folio", "logicaldeduction", "arlsat")


async def run_one(method: str, item: Item, args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    record: dict[str, Any] = {"id": item.id, "gold": item.gold_text(), "method": method}
    try:
        if method in ("direct", "cot", "algorithm1"):
            res = await asolve(item.question, strategy=method, base_url=args.base_url,
                               model=args.model)
            record.update(answer=res.answer, calls=res.usage.calls,
                          prompt_tokens=res.usage.prompt_tokens,
                          completion_tokens=res.usage.completion_tokens)
            if method == "algorithm1":
                record["decision"] = res.root.get("decision")
                record["tool"] = (res.root.get("tool_call") or {}).get("name")
        else:
            samples = args.samples if method == "program_vote" else 1
            res = make_resources(base_url=args.base_url, model=args.model,
                                 program_samples=samples)
            tool = "python" if item.kind == "numeric" else "logic"
            out = await run_programs(res, tool, item.question, [], allowance=2)
            record.update(answer=out.answer, votes=out.votes, runs=len(out.runs),
                          ran_ok=sum(r.ok for r in out.runs), calls=out.reply.usage["calls"],
                          prompt_tokens=out.reply.usage["prompt_tokens"],
                          completion_tokens=out.reply.usage["completion_tokens"],
                          candidates=[r.output if r.ok else f"error: {r.error}"
                                      for r in out.runs])
    except Exception as exc:  # a benchmark records failures and goes on
        record.update(answer=None, error=f"{type(exc).__name__}: {exc}"[:300])
    record["correct"] = item.score(record.get("answer")).correct
    record["wall_time_s"] = round(time.perf_counter() - start, 2)
    return record


def summarize(records: list[dict[str, Any]], wall: float) -> list[dict[str, Any]]:
    """Accuracy (with its 95% interval) and cost per (set, method) over the records so far,
    counted as ``lottery bench`` counts them."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["set"], r["method"]), []).append(r)
    return [{"set": s, "method": m, **tally(recs),
             "mean_item_wall_s": round(sum(r["wall_time_s"] for r in recs) / len(recs), 1),
             "elapsed_s": round(wall, 1)} for (s, m), recs in sorted(groups.items())]


async def main(args: argparse.Namespace) -> int:
    sets = [s for part in args.sets.split(",") for s in (LOGIC_SETS if part == "logic" else [part])]
    methods = args.methods.split(",")
    sem = asyncio.Semaphore(args.concurrency)
    records: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    started = time.strftime("%Y%m%d-%H%M%S")
    out_path = REPO / "results" / f"tools-{started}.json"
    out_path.parent.mkdir(exist_ok=True)

    async def guarded(method: str, item: Item) -> dict[str, Any]:
        async with sem:
            rec = await run_one(method, item, args)
            rec["set"] = item_set[item.id]
            print(f"{rec['set']:>16} {method:>13} {rec['id']:>24} "
                  f"{'OK ' if rec['correct'] else 'bad'} {str(rec.get('answer'))[:30]!r} "
                  f"{rec['wall_time_s']}s", file=sys.stderr, flush=True)
            return rec

    item_set: dict[str, str] = {}
    per_set = []
    for name in sets:
        items = load_suite(name, limit=args.limit).items  # the data of `lottery bench`
        for it in items:
            item_set[it.id] = name
        per_set.append(items)
    # Round-robin over sets, then methods per item, so a cut-short run is still balanced.
    jobs = [(method, items[i]) for i in range(max(map(len, per_set), default=0))
            for items in per_set if i < len(items) for method in methods]
    t0 = time.perf_counter()

    async def job(method: str, item: Item) -> None:
        records.append(await guarded(method, item))
        summary[:] = summarize(records, time.perf_counter() - t0)
        out_path.write_text(json.dumps({"args": vars(args), "started": started,
                                        "summary": summary, "records": records}, indent=1))

    # Every (set, method, item) at once under one concurrency limit: if a run is cut
    # short, each method has results on the same kind of items so far.
    await asyncio.gather(*(job(m, it) for m, it in jobs))
    print("\n| set | method | n | accuracy % (95% CI) | calls | prompt tok | completion tok | "
          "item wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for s in summary:
        lo, hi = (round(100 * v) for v in s["accuracy_ci95"])
        print(f"| {s['set']} | {s['method']} | {s['items']} | {100 * s['accuracy']:.1f} "
              f"({lo}-{hi}) | {s['calls']} | {s['prompt_tokens']} | {s['completion_tokens']} | "
              f"{s['mean_item_wall_s']} |")
    print(f"\nwrote {out_path}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("LOTTERY_BASE_URL"))
    parser.add_argument("--model", default=os.environ.get("LOTTERY_MODEL",
                                                          "qwen2.5-coder-0.5b-instruct"))
    parser.add_argument("--sets", default="gsm8k,svamp,logic")
    parser.add_argument("--methods", default="direct,cot,program,program_vote")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=10)
    sys.exit(asyncio.run(main(parser.parse_args())))
