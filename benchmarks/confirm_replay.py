"""Confirmation replay: the committed math rows under the quorum of three (``Policy.quorum``).

Under the ``math`` policy a chain of thought and a program that agree are 2/3 sure until a
third answer agrees: the attempt asks for one more program, greedy, written after the worked
examples of ``prompts.PAL_EXAMPLES`` (``nodes/solve.py``). The
rows of ``results/policy*`` were run before that rule. Their answers do not depend on it (an
agreeing pair is accepted either way), so the rule can be replayed on them: this script draws
the confirming program for every row whose attempt was an agreeing pair, through the same
call the solve node makes (``run_programs``, one program, all worked examples), once per
item, and scores
each row again with it::

    lottery serve --detach   # the 0.5B on :8000
    python benchmarks/confirm_replay.py      # -> results/confirm-replay.json

The draws are kept in ``results/confirm-draws.jsonl`` (a rerun draws only what is missing).
Per row it reports the calibration as stored, with the quorum but no draw (the pair alone),
and as the code runs: with the draw, except on rows with a delegate (no draw there); and the
compute the draws add (0.49e9 x their tokens).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from rescore_confidence import rescore  # benchmarks/, this script's folder
from rich.progress import Progress

from lottery.api import make_resources
from lottery.bench.runner import MODEL_PARAMS, calibration, read_rows
from lottery.bench.suites import load_suite
from lottery.core.context import Context
from lottery.core.state import Candidate
from lottery.nodes import prompts
from lottery.nodes.llm import answer_key
from lottery.nodes.policy import POLICIES, wants_confirmation
from lottery.nodes.programs import run_programs

REPO = Path(__file__).resolve().parent.parent
SUITES = ("gsm8k", "svamp")


def candidates_of(row: dict[str, Any]) -> list[Candidate]:
    return [Candidate(kind=k, answer=a) for k, a in row.get("candidates") or []]


def is_pair(row: dict[str, Any]) -> bool:
    """The row's attempt was an agreeing chain of thought and program (nothing after)."""
    policy = POLICIES.get(row.get("policy") or "")
    return (policy is not None and policy.quorum > 2 and row.get("rung") == "attempt"
            and wants_confirmation(policy, candidates_of(row)))


def confidence(row: dict[str, Any], question: str, draw: dict[str, Any] | None) -> float | None:
    """The row's confidence under the quorum, with the drawn program when there is one."""
    printed = draw["output"] if draw is not None else None
    return rescore(row, question, [Candidate(kind="program", answer=printed)] if printed else [])


def agrees(row: dict[str, Any], draw: dict[str, Any] | None) -> bool:
    """The drawn program printed the pair's answer."""
    pair = candidates_of(row)[0]["answer"]
    return draw is not None and draw["output"] is not None and \
        answer_key(draw["output"], "number") == answer_key(pair, "number")


async def draw_all(ctx: Context, todo: list[tuple[str, str, str]], path: Path) -> None:
    """The confirming program per (suite, id, question), appended to ``path`` as it comes."""
    res = make_resources(ctx)
    semaphore = asyncio.Semaphore(8)
    with path.open("a", encoding="utf-8") as out, Progress() as progress:
        task = progress.add_task("confirming programs", total=len(todo))

        async def one(suite: str, item: str, question: str) -> None:
            async with semaphore:
                outcome = await run_programs(res, "python", question, [], allowance=1,
                                             samples=1, shots=len(prompts.PAL_EXAMPLES))
            ok = [r.output.strip() for r in outcome.runs if r.ok]
            usage = outcome.reply.usage
            out.write(json.dumps({"suite": suite, "id": item, "output": ok[0] if ok else None,
                                  "tokens": usage["prompt_tokens"] + usage["completion_tokens"]})
                      + "\n")
            out.flush()
            progress.advance(task)

        await asyncio.gather(*(one(*t) for t in todo))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--draws", type=Path, default=REPO / "results" / "confirm-draws.jsonl")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "confirm-replay.json")
    args = parser.parse_args(argv)
    # the rows run before the rule (results/policy-fresh ran with it; archived rows are gone)
    folders = sorted(p.parent for s in SUITES for p in REPO.glob(
        f"results/policy*/{s}-*-algorithm1-auto*/rows.jsonl")
        if p.parent.parent.name in ("policy", "policy-heldout", "policy-repeat"))
    questions = {(s, i.id): i.question for s in SUITES for i in load_suite(s).items}
    rows = {f: read_rows(f / "rows.jsonl") for f in folders}
    configs = {f: json.loads((f / "config.json").read_text()) for f in folders}
    suite_of = {f: c["suite"] for f, c in configs.items()}
    # with a delegate configured the solve node draws no confirming program (the pair stays
    # at 2/3): those rows are replayed without one
    folders = [f for f in folders if not configs[f].get("delegate_model")] + \
        [f for f in folders if configs[f].get("delegate_model")]
    drawn = {(d["suite"], d["id"]): d for d in read_rows(args.draws)} if args.draws.exists() else {}
    todo = sorted({(suite_of[f], r["id"], questions[suite_of[f], r["id"]])
                   for f in folders for r in rows[f]
                   if is_pair(r) and not configs[f].get("delegate_model")} - {
        (s, i, questions[s, i]) for s, i in drawn})
    if todo:
        asyncio.run(draw_all(Context(base_url=args.base_url, model=args.model), todo, args.draws))
        drawn = {(d["suite"], d["id"]): d for d in read_rows(args.draws)}
    report = []
    for f in folders:
        suite, stored = suite_of[f], rows[f]
        pairs = [r for r in stored if is_pair(r)]
        alone = [{**r, "confidence": confidence(r, questions[suite, r["id"]], None)} for r in stored]
        delegating = bool(configs[f].get("delegate_model"))
        draws = {} if delegating else {r["id"]: drawn[suite, r["id"]] for r in pairs}
        confirmed = [{**r, "confidence": confidence(r, questions[suite, r["id"]],
                                                    draws.get(r["id"]))} for r in stored]
        tokens = sum(d["tokens"] for d in draws.values())
        report.append({
            "row": f"{f.parent.name}/{f.name}", "items": len(stored), "pairs": len(pairs),
            "delegate": configs[f].get("delegate_model"),
            "pairs_confirmed": sum(1 for r in pairs if agrees(r, draws.get(r["id"]))),
            "added_calls_per_item": round(len(pairs) / len(stored), 3),
            "added_compute_per_item": round(MODEL_PARAMS["0.5b"] * tokens / len(stored)),
            "stored": calibration(stored), "pair_alone": calibration(alone),
            "confirmed": calibration(confirmed)})
    args.out.write_text(json.dumps({"benchmark": "confirm-replay", "engine": "vllm",
                                    "model": args.model, "rows": report}, indent=2) + "\n")
    print("| row | pairs | confirmed | >= 0.8 right: stored | pair alone | as the code runs "
          "| compute added per item |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in report:
        print(f"| {r['row']} | {r['pairs']} | {r['pairs_confirmed']} | {_high(r['stored'])} | "
              f"{_high(r['pair_alone'])} | {_high(r['confirmed'])} | "
              f"{r['added_compute_per_item']:.2e} |")
    return 0


def _high(buckets: list[dict[str, Any]]) -> str:
    top = [b for b in buckets if b["from"] >= 0.8]
    if not top:
        return "none"
    b = top[0]
    low, high = b["accuracy_ci95"]
    return f"{100 * b['accuracy']:.1f}% of {b['items']} ({100 * low:.0f}-{100 * high:.0f})"


if __name__ == "__main__":
    sys.exit(main())
