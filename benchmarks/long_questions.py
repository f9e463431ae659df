"""Long questions: where the small model's attempt stops paying for itself in a cascade.

Two tables from committed rows, no server needed (the questions are read from the datasets,
``--data`` / ``LOTTERY_DATA``):

- **agreement by length**: over the ``algorithm1-auto`` rows without a delegate (items
  1-300: ``results/policy``, ``policy-heldout``, ``policy-fresh``), how often the 0.5B's
  chain of thought and its program agree (the attempt the cascade accepts), and how often
  that agreed answer is right, by the question's length in words;
- **threshold sweep**: the program-first cascade row on items 1-100 (0.5B ``auto`` + 1.5B
  program delegate, run before ``Policy.delegate_from_words``) replayed with every question
  of at least N words sent to the delegate at once, its answer and tokens taken from the
  1.5B's own program row (``pal-0shot``, the prompt the delegate gets). Compute is params x
  (prompt + completion) tokens, as in ``lottery bench report``.

    python benchmarks/long_questions.py     # -> results/long-questions.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cascade_frontier import LARGE, SMALL, load_rows, number, tokens  # benchmarks/

from lottery.bench.runner import MODEL_PARAMS, wilson
from lottery.bench.suites import load_suite

REPO = Path(__file__).resolve().parent.parent
AUTO = {"results/policy": "", "results/policy-heldout": "-items101-200",
        "results/policy-fresh": "-items201-300"}
CASCADE = "algorithm1-auto+delegate-1.5b-pal-before-long-questions"  # in results/policy-archive
BUCKETS = ((0, 30), (30, 40), (40, 50), (50, 60), (60, 10_000))
THRESHOLDS = (30, 35, 40, 45, 50, 60, None)


def _agreed(row: dict[str, Any]) -> bool:
    """The attempt's chain of thought and its (first) program printed the same number."""
    words = [a for kind, a in row["candidates"] if kind == "words"]
    programs = [a for kind, a in row["candidates"] if kind == "program"]
    return bool(words and programs) and number(words[0]) is not None \
        and number(words[0]) == number(programs[0])


def _large_tokens(row: dict[str, Any]) -> int:
    return row["delegate_prompt_tokens"] + row["delegate_completion_tokens"]


def _small_tokens(row: dict[str, Any]) -> int:
    return tokens(row) - _large_tokens(row)


def agreement(suite: str, words: dict[str, int]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for folder, suffix in AUTO.items():
        rows.update(load_rows(REPO / folder, suite, SMALL, f"algorithm1-auto{suffix}"))
    out = []
    for lo, hi in BUCKETS:
        ids = [i for i in rows if lo <= words[i] < hi]
        agreed = [i for i in ids if _agreed(rows[i])]
        right = sum(rows[i]["correct"] for i in agreed)
        out.append({"words": [lo, hi], "items": len(ids), "agreed": len(agreed),
                    "agreed_right": right,
                    "agreed_share_ci95": wilson(len(agreed), len(ids)) if ids else None})
    return out


def sweep(suite: str, words: dict[str, int]) -> dict[str, Any]:
    small, large = MODEL_PARAMS["0.5b"], MODEL_PARAMS["1.5b"]
    cascade = load_rows(REPO / "results/policy-archive", suite, SMALL, CASCADE)
    alone = load_rows(REPO / "results/policy", suite, LARGE, "pal-0shot")
    cot = load_rows(REPO / "results/policy", suite, LARGE, "cot")
    ids = sorted(cascade)
    n = len(ids)
    base = sum(large * tokens(cot[i]) for i in ids) / n
    points = []
    for threshold in THRESHOLDS:
        direct = [i for i in ids if threshold is not None and words[i] >= threshold]
        right = sum(alone[i]["correct"] if i in direct else cascade[i]["correct"] for i in ids)
        compute = sum(large * tokens(alone[i]) if i in direct else small * _small_tokens(cascade[i])
                      + large * _large_tokens(cascade[i]) for i in ids) / n
        delegated = sum(1 for i in ids if i in direct or cascade[i]["delegated"])
        points.append({"from_words": threshold, "direct": len(direct),
                       "delegated": round(delegated / n, 4), "accuracy": round(right / n, 4),
                       "accuracy_ci95": wilson(right, n), "compute_per_item": round(compute),
                       "compute_vs_large_cot": round(compute / base, 3)})
    return {"items": n, "large_cot_accuracy": round(sum(cot[i]["correct"] for i in ids) / n, 4),
            "large_cot_compute_per_item": round(base), "points": points}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", default=["gsm8k", "svamp"])
    parser.add_argument("--data", default=None, help="datasets folder (default: LOTTERY_DATA)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "long-questions.json")
    args = parser.parse_args(argv)
    report = []
    for suite in args.suites:
        words = {it.id: len(it.question.split()) for it in load_suite(suite, args.data).items}
        report.append({"suite": suite, "agreement": agreement(suite, words),
                       "sweep": sweep(suite, words)})
    args.out.write_text(json.dumps({"benchmark": "long-questions", "suites": report},
                                   indent=2) + "\n")
    for s in report:
        print(f"{s['suite']}: the attempt's answer and program agree (items 1-300), by words")
        for b in s["agreement"]:
            lo, hi = b["words"]
            print(f"  {lo:>3}-{hi if hi < 10_000 else '':<4} {b['items']:4d} items, agreed "
                  f"{b['agreed']:3d}, right {b['agreed_right']:3d}")
        sw = s["sweep"]
        print(f"{s['suite']}: cascade replay on items 1-{sw['items']} (1.5B CoT "
              f"{100 * sw['large_cot_accuracy']:.1f})")
        for p in sw["points"]:
            lo, hi = (round(100 * v) for v in p["accuracy_ci95"])
            print(f"  from {str(p['from_words'] or '-'):>3} words: direct {p['direct']:3d}  "
                  f"{100 * p['accuracy']:5.1f} ({lo}-{hi})  {p['compute_vs_large_cot']:.3f}x  "
                  f"delegated {100 * p['delegated']:.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
