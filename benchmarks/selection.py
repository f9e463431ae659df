"""Selection: can anything the small model gives us pick its right answer among its samples?

The finding on GSM8K (docs/benchmarks.md, "Does the small model win?") is that the 0.5B
model often *has* the right answer among several sampled solutions but no vote picks it.
This probe measures how much of that oracle each selection rule recovers, using only what
the model and a calculator give:

- ``greedy``: the temperature-0 answer alone;
- ``majority``: the most common final answer (self-consistency, ties to greedy);
- ``confidence``: votes weighted by each sample's mean token probability (the model's
  own confidence, as in confidence-weighted self-consistency);
- ``best_confidence``: the single sample with the highest mean token log-probability;
- ``finished``: majority over samples that ended by themselves (not cut by max tokens);
- ``arithmetic``: majority over samples whose written equations (``3 * 12 = 36``) all
  evaluate right, checked by evaluating them (all samples when none passes);
- ``oracle``: the right answer is among the samples (the ceiling of any selection).

Each item gets one greedy and ``--samples - 1`` sampled solutions (the solve node's
prompt, one request with ``n``), with token log-probabilities.

Usage::

    python benchmarks/selection.py --base-url http://127.0.0.1:8000/v1 --suite gsm8k --limit 30

Writes ``results/selection-<suite>.json`` (per rule: items right; per item: the samples).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import math
import operator
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI
from rich.progress import Progress

from lottery.bench.scorers import parse_number
from lottery.bench.suites import Item, load_suite
from lottery.nodes import prompts
from lottery.nodes.llm import final_answer

RULES = ("greedy", "majority", "confidence", "best_confidence", "finished", "arithmetic")

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}
_NUM = r"\d[\d,]*(?:\.\d+)?"
_EQUATION = re.compile(
    rf"((?:\(\s*)*{_NUM}(?:\s*\)*\s*[-+*/]\s*(?:\(\s*)*{_NUM}\s*\)*)+)\s*=\s*({_NUM})")


def _value(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _value(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_value(node.left), _value(node.right))
    raise ValueError("not arithmetic")


def wrong_equations(text: str) -> int:
    """Equations in a solution whose left side does not evaluate to its right side."""
    text = (text.replace("\\times", "*").replace("×", "*").replace("\\cdot", "*")
            .replace("÷", "/").replace("\\div", "/"))
    text = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", text)
    text = re.sub(r"(?<=\d)\s*x\s*(?=\d)", " * ", text).replace("$", "").replace("\\", " ")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    wrong = 0
    for m in _EQUATION.finditer(text):
        try:
            left = _value(ast.parse(m.group(1).replace(",", ""), mode="eval"))
        except (ValueError, SyntaxError, ZeroDivisionError):
            continue
        wrong += not math.isclose(left, float(m.group(2).replace(",", "")), rel_tol=1e-2,
                                  abs_tol=0.01)
    return wrong


def _key(answer: str) -> float | None:
    value = parse_number(answer)
    return None if value is None else round(value, 4)


def select(samples: list[dict[str, Any]], rule: str) -> float | None:
    """The value ``rule`` picks among one item's samples (the greedy one first)."""
    usable = [s for s in samples if _key(s["answer"]) is not None]
    if not usable:
        return None
    if rule == "greedy":
        return _key(samples[0]["answer"])
    if rule == "best_confidence":
        return _key(max(usable, key=lambda s: s["mean_logprob"])["answer"])
    if rule == "finished":
        usable = [s for s in usable if s["finish"] == "stop"] or usable
    if rule == "arithmetic":
        usable = [s for s in usable if s["wrong_equations"] == 0] or usable
    votes: dict[float, float] = defaultdict(float)
    first: dict[float, int] = {}
    for i, s in enumerate(usable):
        key = _key(s["answer"])
        assert key is not None
        votes[key] += math.exp(s["mean_logprob"]) if rule == "confidence" else 1.0
        first.setdefault(key, i)
    return max(votes, key=lambda k: (votes[k], -first[k]))


async def sample_item(client: AsyncOpenAI, item: Item, args: argparse.Namespace
                      ) -> list[dict[str, Any]]:
    messages = [{"role": "system", "content": prompts.SOLVE_SYSTEM},
                {"role": "user", "content": prompts.SOLVE_USER.format(
                    evidence="", related="", question=item.question)}]
    common = dict(model=args.model, messages=messages, max_tokens=args.max_tokens,
                  logprobs=True)
    greedy, sampled = await asyncio.gather(
        client.chat.completions.create(**common, temperature=0),
        client.chat.completions.create(**common, temperature=args.temperature,
                                       n=args.samples - 1))
    out = []
    for choice in greedy.choices + sampled.choices:
        logprobs = [t.logprob for t in (choice.logprobs.content or [])] if choice.logprobs else []
        text = choice.message.content or ""
        out.append({"answer": final_answer(text), "finish": choice.finish_reason,
                    "mean_logprob": sum(logprobs) / max(len(logprobs), 1),
                    "wrong_equations": wrong_equations(text), "tokens": len(logprobs)})
    return out


async def main(args: argparse.Namespace) -> None:
    suite = load_suite(args.suite, args.data, limit=args.limit)
    client = AsyncOpenAI(base_url=args.base_url, api_key="EMPTY", timeout=3000)
    gate = asyncio.Semaphore(args.concurrency)
    records: list[dict[str, Any]] = [{} for _ in suite.items]
    started = time.perf_counter()

    with Progress() as progress:
        bar = progress.add_task(f"{args.suite}: {args.samples} samples per item",
                                total=len(suite.items))

        async def one(i: int, item: Item) -> None:
            async with gate:
                samples = await sample_item(client, item, args)
            records[i] = {"id": item.id, "gold": item.gold, "samples": samples,
                          "right": [item.score(s["answer"]).correct for s in samples]}
            progress.advance(bar)

        await asyncio.gather(*(one(i, item) for i, item in enumerate(suite.items)))

    right = {rule: sum(1 for r, item in zip(records, suite.items, strict=True)
                       if (v := select(r["samples"], rule)) is not None
                       and item.score(str(v)).correct) for rule in RULES}
    right["oracle"] = sum(any(r["right"]) for r in records)
    samples = [(s, ok) for r in records for s, ok in zip(r["samples"], r["right"], strict=True)]

    def share_wrong_eq(ok: bool) -> float:
        group = [s for s, o in samples if o == ok]
        return round(sum(s["wrong_equations"] > 0 for s in group) / max(len(group), 1), 3)

    def mean_logprob(ok: bool) -> float:
        group = [s["mean_logprob"] for s, o in samples if o == ok]
        return round(sum(group) / max(len(group), 1), 4)

    result = {
        "benchmark": "selection", "suite": args.suite, "model": args.model,
        "base_url": args.base_url, "items": len(records), "samples_per_item": args.samples,
        "temperature": args.temperature, "wall_s": round(time.perf_counter() - started, 1),
        "right": right, "accuracy": {k: round(v / len(records), 4) for k, v in right.items()},
        "signal": {"right_samples": sum(ok for _, ok in samples), "samples": len(samples),
                   "mean_logprob_right": mean_logprob(True),
                   "mean_logprob_wrong": mean_logprob(False),
                   "share_with_wrong_equation_right": share_wrong_eq(True),
                   "share_with_wrong_equation_wrong": share_wrong_eq(False)},
        "records": records,
    }
    out = Path(args.out or f"results/selection-{args.suite}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "records"}))
    else:
        for rule, n in right.items():
            print(f"{rule:>16}: {n} of {len(records)}")
        print(f"written to {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--suite", default="gsm8k", choices=["gsm8k", "svamp"])
    parser.add_argument("--data", default=None,
                        help="datasets folder (default: $LOTTERY_DATA, else ../shared/datasets)")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--out", default=None)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    asyncio.run(main(parser.parse_args()))
