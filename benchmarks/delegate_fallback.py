"""The delegate's chain of thought after a program with no count: replayed, then measured.

With the 1.5B delegate writing a program (``delegate_strategy="pal"``), a program that
prints no whole number, or one that misfits the question ("-19" apples), is followed by
the delegate's chain of thought (``nodes/solve._delegate_answer``). Three tables from
committed rows, no server needed (questions from the datasets, ``--data`` /
``LOTTERY_DATA``):

- **replay**: the cascade rows run before that rule (``results/policy-archive/*-before-
  delegate-cot``, items 1-100, 101-200, 201-300), with the answer and tokens of the 1.5B's
  own CoT row (the same prompt the delegate then gets) put in wherever the rule fires;
- **measured**: the cascade rows rerun with the rule, beside the 1.5B CoT on the same items;
- **pooled**: each suite's 300 dev items as one row (the three slices together), cascade
  against the 1.5B CoT, with 95% Wilson intervals. Compute is params x (prompt +
  completion) tokens summed over both models, as in ``lottery bench report``.

    python benchmarks/delegate_fallback.py     # -> results/delegate-fallback.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cascade_frontier import LARGE, SMALL, load_rows, tokens  # benchmarks/

from lottery.bench.runner import MODEL_PARAMS, wilson
from lottery.bench.suites import load_suite
from lottery.nodes.policy import confirmable
from lottery.nodes.solve import misfits_question

REPO = Path(__file__).resolve().parent.parent
SLICES = {"1-100": ("results/policy", ""), "101-200": ("results/policy-heldout", "-items101-200"),
          "201-300": ("results/policy-fresh", "-items201-300")}
CASCADE = "algorithm1-auto+delegate-1.5b-pal"
BEFORE = "-before-delegate-cot"  # the archived rows, in results/policy-archive


def fires(row: dict[str, Any], question: str) -> bool:
    """Whether the rule would have asked the delegate's chain of thought on this row: it was
    delegated and the delegate's program printed no whole number that fits the question."""
    printed = [a for kind, a in row["candidates"] if kind == "delegate"]
    if not row["delegated"] or not printed:
        return False
    answer = printed[-1].strip()
    fits = [answer] if answer and not misfits_question(answer, question) else []
    return not confirmable(fits, "number")


def compute(row: dict[str, Any]) -> float:
    large = row.get("delegate_prompt_tokens", 0) + row.get("delegate_completion_tokens", 0)
    return MODEL_PARAMS["0.5b"] * (tokens(row) - large) + MODEL_PARAMS["1.5b"] * large


def _point(rows: dict[str, dict[str, Any]], right: int, spent: float,
           base: float) -> dict[str, Any]:
    n = len(rows)
    return {"items": n, "correct": right, "accuracy": round(right / n, 4),
            "accuracy_ci95": wilson(right, n), "compute": spent,
            "compute_vs_large_cot": round(spent / base, 3)}


def one_slice(suite: str, items: str, questions: dict[str, str]) -> dict[str, Any]:
    folder, suffix = SLICES[items]
    cot = load_rows(REPO / folder, suite, LARGE, f"cot{suffix}")
    base = sum(MODEL_PARAMS["1.5b"] * tokens(r) for r in cot.values())
    out: dict[str, Any] = {"items": items,
                           "large_cot": _point(cot, sum(r["correct"] for r in cot.values()),
                                               base, base)}
    archive = REPO / "results/policy-archive"
    rerun = (archive / f"{suite}-{SMALL}-{CASCADE}{suffix}{BEFORE}").is_dir()
    # not rerun yet: the row in place is still the one from before the rule
    before = (load_rows(archive, suite, SMALL, f"{CASCADE}{suffix}{BEFORE}") if rerun
              else load_rows(REPO / folder, suite, SMALL, f"{CASCADE}{suffix}"))
    fired = [i for i, r in before.items() if fires(r, questions[i])]
    right = sum(cot[i]["correct"] if i in fired else r["correct"] for i, r in before.items())
    spent = sum(compute(r) for r in before.values())
    out["before"] = _point(before, sum(r["correct"] for r in before.values()), spent, base)
    out["replay"] = {**_point(before, right, spent + sum(
        MODEL_PARAMS["1.5b"] * tokens(cot[i]) for i in fired), base),
        "fires": len(fired), "right_before": sum(before[i]["correct"] for i in fired),
        "large_cot_right": sum(cot[i]["correct"] for i in fired)}
    if rerun:
        after = load_rows(REPO / folder, suite, SMALL, f"{CASCADE}{suffix}")
        if len(after) == len(cot):
            out["measured"] = {
                **_point(after, sum(r["correct"] for r in after.values()),
                         sum(compute(r) for r in after.values()), base),
                "delegated": sum(1 for r in after.values() if r["delegated"]),
                "delegate_twice": sum(1 for r in after.values() if r["delegate_calls"] >= 2)}
    return out


def pooled(slices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The measured slices as one row, beside the 1.5B CoT on the same items."""
    if any("measured" not in s for s in slices):
        return None
    n = sum(s["measured"]["items"] for s in slices)
    cascade = sum(s["measured"]["correct"] for s in slices)
    cot = sum(s["large_cot"]["correct"] for s in slices)
    ratio = sum(s["measured"]["compute"] for s in slices) / sum(
        s["large_cot"]["compute"] for s in slices)
    return {"items": n, "cascade": {"correct": cascade, "accuracy": round(cascade / n, 4),
                                    "accuracy_ci95": wilson(cascade, n),
                                    "compute_vs_large_cot": round(ratio, 3)},
            "large_cot": {"correct": cot, "accuracy": round(cot / n, 4),
                          "accuracy_ci95": wilson(cot, n)}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="*", default=["gsm8k", "svamp"])
    parser.add_argument("--data", default=None, help="datasets folder (default: LOTTERY_DATA)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "delegate-fallback.json")
    args = parser.parse_args(argv)
    report = []
    for suite in args.suites:
        questions = {it.id: it.question for it in load_suite(suite, args.data).items}
        slices = [one_slice(suite, items, questions) for items in SLICES]
        report.append({"suite": suite, "slices": slices, "pooled": pooled(slices)})
    args.out.write_text(json.dumps({"benchmark": "delegate-fallback", "suites": report},
                                   indent=2) + "\n")
    for s in report:
        print(f"{s['suite']}: accuracy % (95% CI), compute vs the 1.5B CoT")
        for sl in s["slices"]:
            cells = [f"1.5B CoT {_show(sl['large_cot'])}"]
            for key in ("before", "replay", "measured"):
                if key in sl:
                    cells.append(f"{key} {_show(sl[key])}")
            if "replay" in sl:
                r = sl["replay"]
                cells.append(f"fires {r['fires']} (right before {r['right_before']}, "
                             f"1.5B CoT {r['large_cot_right']})")
            print(f"  items {sl['items']:>7}: " + "; ".join(cells))
        if s["pooled"]:
            p = s["pooled"]
            lo, hi = (round(100 * v, 1) for v in p["cascade"]["accuracy_ci95"])
            clo, chi = (round(100 * v, 1) for v in p["large_cot"]["accuracy_ci95"])
            print(f"  pooled {p['items']}: cascade {100 * p['cascade']['accuracy']:.1f} "
                  f"({lo}-{hi}) at {p['cascade']['compute_vs_large_cot']:.2f}x; "
                  f"1.5B CoT {100 * p['large_cot']['accuracy']:.1f} ({clo}-{chi})")
    return 0


def _show(point: dict[str, Any]) -> str:
    lo, hi = (round(100 * v) for v in point["accuracy_ci95"])
    return f"{100 * point['accuracy']:.1f} ({lo}-{hi}) {point['compute_vs_large_cot']:.2f}x"


if __name__ == "__main__":
    sys.exit(main())
