"""Parallelism: 8 independent sub-problems in one Algorithm 1 run vs. one after another.

Issue 9's target: a question that divides into 8 independent sub-problems runs
>= 4x faster in aggregate than the same sub-problems one after another against
the same vLLM server (the server batches concurrent requests).

The root's planner decision is fixed (it divides into the 8 questions below) so
that both sides solve exactly the same sub-problems; every other call (the
sub-problems' planners, their tools or answers, the final merge) goes to the
real server. Sequential: each sub-question as its own run (``max_depth=0``, as
the sub-problems at depth 1 of ``max_depth=1``), one after another. Reuse of
answered sub-problems is off on both sides.

Usage::

    python benchmarks/parallelism.py --base-url http://127.0.0.1:8000/v1

Writes ``results/parallelism.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_openai import ChatOpenAI

from lottery.api import asolve
from lottery.nodes import prompts

SUBS = ["What is the capital of France?", "What is 17 times 3?",
        "Which planet is closest to the Sun?", "What is the chemical symbol of gold?",
        "How many days are in a leap year?", "What is 144 divided by 12?",
        "Who wrote Romeo and Juliet?", "What is the boiling point of water in Celsius?"]
ROOT = "Answer these eight questions: " + " ".join(SUBS)


class RootDivides(ChatOpenAI):
    """The real server for every call except the root's planner decision (fixed: divide)."""

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        system, user = str(messages[0].content), str(messages[-1].content)
        if system.startswith(prompts.PLANNER_SYSTEM[:20]) and user == f"Question: {ROOT}":
            decision = {"action": "divide", "reason": "eight independent questions",
                        "subproblems": [{"question": q} for q in SUBS]}
            return ChatResult(generations=[ChatGeneration(message=AIMessage(json.dumps(decision)))])
        return await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)


async def main(args: argparse.Namespace) -> None:
    def model() -> RootDivides:
        return RootDivides(base_url=args.base_url, model=args.model, api_key="EMPTY",
                           temperature=0, max_retries=0, timeout=3000)

    common = {"durable": False, "reuse": False, "max_fanout": 8, "request_timeout": 3000}
    # Warm the server's prefix cache for the planner prompt so neither side pays it alone.
    await asolve(SUBS[0], chat_model=model(), max_depth=0, **common)

    answered: list[float] = []  # when each sub-problem's answer arrived

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "answer" and event["depth"] == 1:
            answered.append(time.perf_counter())

    start = time.perf_counter()
    par = await asolve(ROOT, chat_model=model(), max_depth=1, on_event=on_event, **common)
    parallel_s = time.perf_counter() - start
    subs_parallel_s = max(answered) - start
    print(f"parallel: {parallel_s:.1f} s ({subs_parallel_s:.1f} s until the 8 sub-problems were "
          f"answered), {par.usage.calls} calls", flush=True)

    seq_calls, start = 0, time.perf_counter()
    answers, seq_each, tokens = [], [], []
    for q in SUBS:
        t0 = time.perf_counter()
        r = await asolve(q, chat_model=model(), max_depth=0, **common)
        seq_each.append(time.perf_counter() - t0)
        seq_calls += r.usage.calls
        tokens.append(r.usage.completion_tokens)
        answers.append(r.answer)
    sequential_s = time.perf_counter() - start
    print(f"sequential: {sequential_s:.1f} s, {seq_calls} calls", flush=True)

    children = [c for pid, c in sorted(par.tree.items()) if c.get("parent") == "0"]
    out = {"benchmark": "parallelism", "base_url": args.base_url, "model": args.model,
           "sub_problems": len(SUBS), "parallel_s": round(parallel_s, 2),
           "parallel_calls": par.usage.calls, "sequential_s": round(sequential_s, 2),
           "sequential_calls": seq_calls, "speedup": round(sequential_s / parallel_s, 2),
           "sub_problems_parallel_s": round(subs_parallel_s, 2),
           "speedup_sub_problems": round(sequential_s / subs_parallel_s, 2),
           "sequential_each_s": [round(t, 2) for t in seq_each],
           "completion_tokens_each": tokens,
           # A batch lasts as long as its longest answer: at equal speed per sequence the
           # speedup cannot pass (sum of answer lengths) / (longest answer).
           "length_bound_speedup": round(sum(tokens) / max(tokens), 2),
           "parallel_answers": [c.get("answer") for c in children],
           "sequential_answers": answers, "merged_answer": par.answer}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(f"speedup {out['speedup']}x whole run, {out['speedup_sub_problems']}x for the sub-problems "
          f"(target >= 4x; answer lengths bound it at {out['length_bound_speedup']}x at equal "
          f"per-sequence speed); wrote {args.out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--out", type=Path, default=Path("results/parallelism.json"))
    asyncio.run(main(parser.parse_args()))
