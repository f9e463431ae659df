"""Ordering ablation: how much of the ``ordering`` policy's answer the model decides.

The translation of an ordering puzzle (:func:`lottery.nodes.formalize.formalize_order`)
lets a statement that names one end itself point only to that end. This probe runs the
translation and the ``order`` tool alone (no fallback) on LogicalDeduction items, two ways:

- ``as built``: the schema leaves one end where the sentence names exactly one;
- ``model decides``: both ends are always offered; the model alone picks every direction.

For each it counts the answers the solver gave and the right ones, and for ``as built``
how many direction choices the sentence's words made (one end left) and how many the model
made::

    lottery serve --detach
    python benchmarks/order_ablation.py --items 100    # -> results/order-ablation.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from lottery.api import make_resources
from lottery.bench.runner import wilson
from lottery.bench.suites import load_suite
from lottery.core.context import Context
from lottery.nodes import formalize
from lottery.nodes.llm import Reply
from lottery.tools.order import decide

REPO = Path(__file__).resolve().parent.parent


async def run(ctx: Context, items: int, *, forcing: bool) -> dict[str, Any]:
    res = make_resources(ctx)
    suite = load_suite("logicaldeduction", limit=items)
    counted = {"one end left": 0, "both ends": 0}
    original = formalize.ends_allowed

    def allowed(first: str, last: str, sentence: str) -> list[str]:
        ends = original(first, last, sentence) if forcing else [first, last]
        counted["one end left" if len(ends) == 1 else "both ends"] += 1
        return ends

    formalize.ends_allowed = allowed  # type: ignore[assignment]
    total = Reply()
    semaphore = asyncio.Semaphore(8)

    async def one(question: str) -> str:
        async with semaphore:
            puzzle = formalize.ordering(question)
            if puzzle is None:
                return "not a puzzle"
            args = await formalize.formalize_order(res, puzzle, total)
            return decide(args) if args is not None else "no translation"

    try:
        answers = await asyncio.gather(*(one(i.question) for i in suite.items))
    finally:
        formalize.ends_allowed = original  # type: ignore[assignment]
    right = sum(a == i.gold for a, i in zip(answers, suite.items, strict=True))
    return {"variant": "as built" if forcing else "model decides", "items": len(answers),
            "answered": sum(len(a) == 1 for a in answers), "right": right,
            "accuracy": right / len(answers), "ci95": wilson(right, len(answers)),
            "direction_choices": counted,
            "tokens_per_item": round((total.usage["prompt_tokens"]
                                      + total.usage["completion_tokens"]) / len(answers))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "order-ablation.json")
    args = parser.parse_args(argv)
    ctx = Context(base_url=args.base_url, model=args.model)
    rows = [asyncio.run(run(ctx, args.items, forcing=f)) for f in (True, False)]
    report = {"benchmark": "order-ablation", "suite": "logicaldeduction", "engine": "vllm",
              "model": args.model, "rows": rows}
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for r in rows:
        low, high = r["ci95"] or (0.0, 0.0)
        print(f"{r['variant']:14} {r['right']}/{r['items']} right ({low:.0%}-{high:.0%}), "
              f"{r['answered']} answered, "
              f"directions {r['direction_choices']}, {r['tokens_per_item']} tokens/item")
    return 0


if __name__ == "__main__":
    sys.exit(main())
