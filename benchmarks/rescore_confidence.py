"""Confidence replay: the calibration of committed policy rows under today's confidence rule.

Every ``algorithm1-*`` row of ``results/policy`` keeps the candidates its root problem
collected (kind and answer). The rows' answers do not depend on how confident the policy
says it is, so the confidence rule (``lottery.nodes.policy.score``) can be replayed on them
without a model: this script scores them with today's rule, reports how many rows keep the
confidence they were stored with, and writes both calibration tables (as stored, as
replayed)::

    python benchmarks/rescore_confidence.py          # -> results/calibration-replay.json

Rows answered by a merge keep their stored confidence (the rule did not change for them);
``planner`` rows have no confidence. A ``math`` row whose attempt was an agreeing pair scores
2/3 here: the program that confirms it (``Policy.quorum``) is not in rows run before that
rule; ``benchmarks/confirm_replay.py`` draws it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lottery.bench.runner import calibration, read_rows
from lottery.bench.suites import load_suite
from lottery.core.state import Candidate
from lottery.nodes.policy import POLICIES, judge

REPO = Path(__file__).resolve().parent.parent


def rescore(row: dict[str, Any], question: str = "",
            extra: Sequence[Candidate] = ()) -> float | None:
    """The row's confidence under today's rule (``question``: the item's full text), with
    ``extra`` candidates added to the stored ones."""
    policy = POLICIES.get(row.get("policy") or "")
    candidates = [Candidate(kind=k, answer=a) for k, a in row.get("candidates") or []]
    if policy is None or policy.planner or not candidates or row.get("rung") == "divide" \
            or any(c["kind"] == "merge" for c in candidates):
        return row.get("confidence")
    verdict = judge(policy, [*candidates, *extra], question)
    return verdict.confidence if verdict else row.get("confidence")


def replay(folder: Path) -> dict[str, Any]:
    rows = read_rows(folder / "rows.jsonl")
    suite = json.loads((folder / "config.json").read_text(encoding="utf-8"))["suite"]
    questions = {item.id: item.question for item in load_suite(suite).items}
    new = [{**r, "confidence": rescore(r, questions.get(r["id"], ""))} for r in rows]
    same = sum(1 for r, o in zip(rows, new, strict=True)
               if r.get("confidence") is not None and o["confidence"] is not None
               and abs(r["confidence"] - o["confidence"]) < 1e-3)
    stored = sum(1 for r in rows if r.get("confidence") is not None)
    return {"row": folder.name, "items": len(rows), "unchanged": f"{same}/{stored}",
            "stored": calibration(rows), "replayed": calibration(new)}


def _high(buckets: list[dict[str, Any]]) -> str:
    top = [b for b in buckets if b["from"] >= 0.8]
    if not top:
        return "none at >= 0.8"
    b = top[0]
    return f"{100 * b['accuracy']:.1f}% of {b['items']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO / "results" / "policy")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "calibration-replay.json")
    args = parser.parse_args(argv)
    folders = sorted(p.parent for p in args.results.glob("*-algorithm1-*/rows.jsonl"))
    report = [replay(f) for f in folders]
    args.out.write_text(json.dumps({"benchmark": "calibration-replay", "rows": report},
                                   indent=2) + "\n")
    print("| row | confidence unchanged | confidence >= 0.8 right (stored) | (today's rule) |")
    print("|---|---:|---:|---:|")
    for r in report:
        print(f"| {r['row']} | {r['unchanged']} | {_high(r['stored'])} | {_high(r['replayed'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
