"""Cascade frontier: what a 0.5B -> 1.5B cascade can reach, replayed from committed rows.

For each suite it reads the single-call rows of ``results/policy`` (the 0.5B's CoT and
program rows, the 1.5B's CoT and program rows (3 worked examples, and none where that row
exists), made on the same 100 items) and replays
the cascade the ``math`` policy runs with a delegate: the small model's chain of thought
and its program; accepted when they agree, otherwise the larger model's answer. Compute
is params x (prompt + completion) tokens per item, summed over both models, as in
``lottery bench report``. The replay uses the rows' own answers and tokens, so it shows
what a cheaper or stricter acceptance rule could gain before any server time is spent;
the measured ``algorithm1-auto+delegate`` rows are the check on it::

    python benchmarks/cascade_frontier.py svamp gsm8k   # -> results/cascade-frontier.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lottery.bench.runner import MODEL_PARAMS, read_rows, wilson

REPO = Path(__file__).resolve().parent.parent
SMALL, LARGE = "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"


def load_rows(results: Path, suite: str, model: str, strategy: str) -> dict[str, dict[str, Any]]:
    path = results / f"{suite}-{model}-{strategy}" / "rows.jsonl"
    if not path.exists():
        raise SystemExit(f"missing {path}: run `lottery bench` for it first")
    return {r["id"]: r for r in read_rows(path)}


def number(answer: Any) -> float | None:
    try:
        return round(float(str(answer).replace(",", "").replace("$", "").strip()), 4)
    except ValueError:
        return None


def tokens(row: dict[str, Any]) -> int:
    return row["prompt_tokens"] + row["completion_tokens"]


def frontier(results: Path, suite: str, program: str) -> dict[str, Any]:
    """The single calls and the cascades of one suite (``program``: the small model's program
    row, e.g. ``pal-0shot``)."""
    small, large = MODEL_PARAMS["0.5b"], MODEL_PARAMS["1.5b"]
    rows = {"0.5B cot": (load_rows(results, suite, SMALL, "cot"), small),
            f"0.5B {program}": (load_rows(results, suite, SMALL, program), small),
            "1.5B cot": (load_rows(results, suite, LARGE, "cot"), large),
            "1.5B pal": (load_rows(results, suite, LARGE, "pal"), large)}
    if (results / f"{suite}-{LARGE}-pal-0shot" / "rows.jsonl").exists():
        rows["1.5B pal-0shot"] = (load_rows(results, suite, LARGE, "pal-0shot"), large)
    ids = sorted(set.intersection(*(set(r) for r, _ in rows.values())))
    n = len(ids)

    def point(name: str, right: int, compute: float, **extra: Any) -> dict[str, Any]:
        return {"name": name, "n": n, "accuracy": round(right / n, 4),
                "accuracy_ci95": wilson(right, n), "compute_per_item": round(compute / n), **extra}

    out = [point(name, sum(r[i]["correct"] for i in ids), sum(p * tokens(r[i]) for i in ids))
           for name, (r, p) in rows.items()]
    cot, prog = rows["0.5B cot"][0], rows[f"0.5B {program}"][0]
    agree = [i for i in ids if number(cot[i]["parsed"]) is not None
             and number(cot[i]["parsed"]) == number(prog[i]["parsed"])]
    for delegate in (d for d in ("1.5B cot", "1.5B pal", "1.5B pal-0shot") if d in rows):
        big = rows[delegate][0]
        right = sum(cot[i]["correct"] if i in agree else big[i]["correct"] for i in ids)
        compute = sum(small * (tokens(cot[i]) + tokens(prog[i]))
                      + (0 if i in agree else large * tokens(big[i])) for i in ids)
        out.append(point(f"0.5B cot + {program}, else {delegate}", right, compute,
                         delegated=round(1 - len(agree) / n, 4)))
    accepted_right = sum(cot[i]["correct"] for i in agree)
    return {"suite": suite, "items": n, "points": out, "accepted": len(agree),
            "accepted_right": accepted_right,
            "large_cot_right_on_accepted": sum(rows["1.5B cot"][0][i]["correct"] for i in agree)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suites", nargs="+")
    parser.add_argument("--program", default="pal-0shot", help="the small model's program row")
    parser.add_argument("--results", type=Path, default=REPO / "results" / "policy")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "cascade-frontier.json")
    args = parser.parse_args(argv)
    report = [frontier(args.results, s, args.program) for s in args.suites]
    args.out.write_text(json.dumps({"benchmark": "cascade-frontier", "suites": report},
                                   indent=2) + "\n")
    for s in report:
        print(f"{s['suite']} ({s['items']} items; accepted {s['accepted']}, right "
              f"{s['accepted_right']}, the 1.5B CoT right on them {s['large_cot_right_on_accepted']})")
        for p in s["points"]:
            lo, hi = (round(100 * v) for v in p["accuracy_ci95"])
            extra = f"  delegated {100 * p['delegated']:.0f}%" if "delegated" in p else ""
            print(f"  {p['name']:34s} {100 * p['accuracy']:5.1f} ({lo}-{hi})  "
                  f"{p['compute_per_item']:.3g}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
