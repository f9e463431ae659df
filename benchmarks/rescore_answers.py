"""Answer replay: score the stored predictions of bench rows again with today's scorers.

A bench row keeps the model's prediction, so a fix to a scorer (``lottery.bench.scorers``)
can be applied to committed rows without a model: this script scores every row of the
given result folders again, rewrites ``rows.jsonl`` and ``summary.json`` where a score
changed, and prints what changed::

    python benchmarks/rescore_answers.py results/policy-heldout/logicaldeduction-*

(6 Dec 2026: the option scorer read only the letters A-E, so the right F and G answers of
LogicalDeduction's seven-object puzzles, items 101-150, had been scored wrong.)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

from lottery.bench.runner import BenchConfig, read_rows, summarize
from lottery.bench.suites import load_suite


def rescore(folder: Path) -> dict[str, Any]:
    """Score ``folder``'s rows again; rewrite it when any score changed."""
    stored = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    names = {f.name for f in fields(BenchConfig)}
    config = BenchConfig(**{k: (tuple(v) if k == "ablate" else v)
                            for k, v in stored.items() if k in names})
    suite = load_suite(config.suite, config.data, limit=config.limit, skip=config.skip)
    items = {i.id: i for i in suite.items}
    rows = read_rows(folder / "rows.jsonl")
    changed = []
    for row in rows:
        item = items.get(row["id"])
        if item is None or row.get("error"):
            continue
        score = item.score(row.get("prediction"))
        if (score.correct, score.parsed) != (row.get("correct"), row.get("parsed")):
            changed.append((row["id"], row.get("parsed"), score.parsed, score.correct))
            row.update(parsed=score.parsed, correct=score.correct)
            if score.f1 is not None:
                row["f1"] = round(score.f1, 4)
    before = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    if changed:
        (folder / "rows.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows),
            encoding="utf-8")
        summary = summarize(rows, config, total_items=len(suite.items))
        (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n",
                                             encoding="utf-8")
    else:
        summary = before
    return {"folder": str(folder), "changed": changed,
            "accuracy": [before.get("accuracy"), summary.get("accuracy")]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for folder in args.folders:
        report = rescore(folder)
        old, new = report["accuracy"]
        print(f"{folder}: {len(report['changed'])} rows scored differently, "
              f"accuracy {old} -> {new}")
        for item_id, was, now, correct in report["changed"]:
            print(f"  {item_id}: parsed {was!r} -> {now!r} ({'right' if correct else 'wrong'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
