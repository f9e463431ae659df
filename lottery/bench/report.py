"""``lottery bench report``: a Markdown table and PNG plots comparing bench results.

Compute is what the hypothesis is about: model parameters x tokens processed
(prompt + completion), per item. A small model that needs more calls can still
cost less than a large model answering once; the plots show where each run
lands on accuracy against that cost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lottery.bench.runner import (
    MODEL_PARAMS,
    SUMMARY,
    BenchConfig,
    model_params,
    read_rows,
    size_tag,
    summarize,
)
from lottery.errors import ConfigurationError


def find_summaries(paths: Iterable[str | Path]) -> list[Path]:
    """Every bench folder under ``paths`` (a folder holding ``rows.jsonl`` or ``summary.json``)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise ConfigurationError(f"{path} does not exist")
        if (path / SUMMARY).is_file() or (path / "rows.jsonl").is_file():
            found.append(path)
            continue
        found.extend(sorted({p.parent for p in path.rglob("config.json")}))
    if not found:
        raise ConfigurationError(
            "no bench results found: give folders written by `lottery bench --out DIR`")
    return found


def load_results(paths: Iterable[str | Path], *,
                 params: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The summary of each bench folder, recomputed from its rows (params overridable per model)."""
    results = []
    for folder in find_summaries(paths):
        config_path = folder / "config.json"
        cfg = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        stored = (json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
                  if (folder / SUMMARY).is_file() else {})
        model = cfg.get("model") or stored.get("model", "?")
        override = (params or {}).get(model) or cfg.get("params")
        config = BenchConfig(
            suite=cfg.get("suite") or stored.get("suite", "?"),
            strategy=cfg.get("strategy") or stored.get("strategy", "direct"),
            model=model, out=str(folder), ablate=tuple(cfg.get("ablate") or ()),
            rag=bool(cfg.get("rag")), params=override, settings=cfg.get("settings") or {},
            # benches from before policies ran the model planner
            policy=cfg.get("policy", "planner" if cfg.get("strategy") == "algorithm1" else None),
            delegate_model=cfg.get("delegate_model"), delegate_base_url=cfg.get("delegate_base_url"),
            delegate_params=cfg.get("delegate_params"), engine=cfg.get("engine") or "vllm",
        )
        summary = summarize(read_rows(folder / "rows.jsonl"), config,
                            # a bench stopped before its first summary: planned as its limit
                            total_items=stored.get("items_planned") or cfg.get("limit"))
        summary["folder"] = str(folder)
        results.append(summary)
    results.sort(key=lambda s: (s["suite"], model_params(s["model"]) or 0, s["label"]))
    return results


def _fmt_compute(value: float | None) -> str:
    return f"{value:.2e}" if value else "n/a"


def _pct(value: float | None) -> str:
    return f"{100 * value:.1f}" if value is not None else "n/a"


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    """One row per bench: accuracy (with its 95% interval), F1, cost and compute per item."""
    lines = [
        "| suite | model | engine | strategy | n | accuracy % (95% CI) | F1 | calls/item "
        "| tokens/item | compute/item (params x tokens) | wall s/item | errors | delegated % |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in results:
        ci = s.get("accuracy_ci95")
        ci_text = f" ({100 * ci[0]:.0f}-{100 * ci[1]:.0f})" if ci else ""
        partial = "" if s.get("complete", True) else f" of {s.get('items_planned')}"
        lines.append(
            f"| {s['suite']} | {s['model']} | {s.get('engine', 'vllm')} | {s['label']} | "
            f"{s['items']}{partial} | {_pct(s['accuracy'])}{ci_text} | "
            f"{_pct(s.get('f1')) if s.get('f1') is not None else '-'} | "
            f"{s.get('calls_per_item', 'n/a')} | {s.get('tokens_per_item', 'n/a')} | "
            f"{_fmt_compute(s.get('compute_per_item'))} | {s.get('wall_time_per_item_s', 'n/a')} | "
            f"{s.get('errors', 0)} | {_pct(s.get('delegated_fraction')) if s.get('delegate_model') else '-'}"
            " |"
        )
    return "\n".join(lines) + "\n"


def calibration_table(results: Sequence[dict[str, Any]]) -> str:
    """Accuracy by confidence bucket, per bench that recorded confidences (policy runs):
    a confidence of 0.8 or more should be right at least 80% of the time."""
    lines = ["| suite | model | strategy | confidence | n | accuracy % (95% CI) |",
             "|---|---|---|---|---:|---:|"]
    for s in results:
        for b in s.get("calibration") or []:
            ci = b.get("accuracy_ci95")
            ci_text = f" ({100 * ci[0]:.0f}-{100 * ci[1]:.0f})" if ci else ""
            lines.append(f"| {s['suite']} | {s['model']} | {s['label']} | "
                         f"{b['from']:.1f}-{b['to']:.1f} | {b['items']} | "
                         f"{_pct(b['accuracy'])}{ci_text} |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def choices_table(results: Sequence[dict[str, Any]]) -> str:
    """Per policy run, the classes ``auto`` chose and how each did; per run of an option
    suite, the letters given against the gold letters (a constant answer shows at once)."""
    lines = ["| suite | model | strategy | classes chosen (right/items) | answers given | gold |",
             "|---|---|---|---|---|---|"]
    for s in results:
        if not s.get("classes") and not s.get("answers"):
            continue
        chosen = ", ".join(f"{c} {v['correct']}/{v['items']}"
                           for c, v in (s.get("classes") or {}).items()) or "-"
        answers = s.get("answers") or {}
        given, gold = (", ".join(f"{k} {v}" for k, v in (answers.get(part) or {}).items()) or "-"
                       for part in ("given", "gold"))
        lines.append(f"| {s['suite']} | {s['model']} | {s['label']} | {chosen} | {given} | "
                     f"{gold} |")
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def _short_model(model: str) -> str:
    tag = size_tag(model)
    return tag.upper() if tag in MODEL_PARAMS else tag


def plot(results: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    """Write ``accuracy.png``, ``accuracy_vs_compute.png`` and ``cost.png`` to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    out.mkdir(parents=True, exist_ok=True)
    runs = [s for s in results if s.get("accuracy") is not None]
    if not runs:
        raise ConfigurationError("no scored rows to plot yet")
    suites = sorted({s["suite"] for s in runs})
    keys = sorted({(_short_model(s["model"]), s["label"]) for s in runs},
                  key=lambda k: (k[0], k[1]))
    names = [f"{m} {label}" for m, label in keys]
    colors = plt.get_cmap("tab10")
    written = []

    # 1. accuracy per suite, one bar per model x strategy
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(suites) * max(1, len(keys)) / 2), 4.2))
    width = 0.8 / len(keys)
    for j, key in enumerate(keys):
        xs, ys, errs = [], [], [[], []]
        for i, suite in enumerate(suites):
            hit = [s for s in runs if s["suite"] == suite
                   and (_short_model(s["model"]), s["label"]) == key]
            if not hit:
                continue
            s = hit[0]
            acc = 100 * s["accuracy"]
            lo, hi = (100 * v for v in s["accuracy_ci95"])
            xs.append(i + (j - (len(keys) - 1) / 2) * width)
            ys.append(acc)
            errs[0].append(acc - lo)
            errs[1].append(hi - acc)
            ax.annotate(f"{acc:.0f}%\nn={s['items']}", (xs[-1], acc), ha="center",
                        va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")
        ax.bar(xs, ys, width=width * 0.95, label=names[j], color=colors(j), yerr=errs,
               capsize=3, error_kw={"elinewidth": 0.8, "alpha": 0.6})
    ax.set_xticks(range(len(suites)), suites)
    ax.set_ylabel("accuracy (%) with 95% CI")
    ax.set_ylim(0, 105)
    ax.set_title("Accuracy per suite, model and strategy")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    written.append(_save(fig, out / "accuracy.png"))

    # 2. accuracy against compute (params x tokens per item), one panel per suite, log x
    ncols = min(3, len(suites))
    nrows = -(-len(suites) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols + 3.2, 3.0 * nrows),
                             squeeze=False, layout="constrained")
    markers = "osD^v<>p*hXP"
    palette = plt.get_cmap("tab20")
    handles: dict[str, Any] = {}
    for i, suite in enumerate(suites):
        ax = axes[i // ncols][i % ncols]
        for j, key in enumerate(keys):
            for s in runs:
                if s["suite"] != suite or (_short_model(s["model"]), s["label"]) != key \
                        or not s.get("compute_per_item"):
                    continue
                acc = 100 * s["accuracy"]
                lo, hi = (100 * v for v in s["accuracy_ci95"])
                handles[names[j]] = ax.errorbar(
                    s["compute_per_item"], acc, yerr=[[acc - lo], [hi - acc]],
                    color=palette(j % 20), marker=markers[j % len(markers)], markersize=6,
                    elinewidth=0.7, capsize=2, alpha=0.9, linestyle="none")
        ax.set_xscale("log")
        # ticks at 1, 2 and 5 of each decade, written short: "2e+11"
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.0e}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(0, 105)
        ax.set_title(suite, fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.tick_params(labelsize=7)
    for k in range(len(suites), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    fig.supxlabel("compute per item = parameters x tokens processed (log)", fontsize=8)
    fig.supylabel("accuracy (%), 95% CI", fontsize=8)
    fig.suptitle("Accuracy against compute (up and left is better)", fontsize=10)
    fig.legend(list(handles.values()), list(handles), loc="outside right center", fontsize=7)
    written.append(_save(fig, out / "accuracy_vs_compute.png"))

    # 3. model calls and wall time per item
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    labels, calls, walls, cols = [], [], [], []
    for j, key in enumerate(keys):
        for suite in suites:
            for s in runs:
                if s["suite"] == suite and (_short_model(s["model"]), s["label"]) == key:
                    labels.append(f"{suite}\n{names[j]}")
                    calls.append(s.get("calls_per_item", 0))
                    walls.append(s.get("wall_time_per_item_s", 0))
                    cols.append(colors(j))
    ax1.barh(labels, calls, color=cols)
    ax1.set_xlabel("model calls per item")
    ax2.barh(labels, walls, color=cols)
    ax2.set_xlabel("wall time per item (s, under the bench's concurrency)")
    for ax in (ax1, ax2):
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    ax2.set_yticklabels([])
    fig.suptitle("What each run cost")
    fig.tight_layout()
    written.append(_save(fig, out / "cost.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(paths: Sequence[str | Path], out: Path, *,
                 params: dict[str, float] | None = None) -> dict[str, Any]:
    """Table (``report.md``) and plots in ``out``; returns what was written."""
    results = load_results(paths, params=params)
    table = markdown_table(results)
    out.mkdir(parents=True, exist_ok=True)
    pngs = plot(results, out)
    body = ["# Bench report", "", table, ""]
    calibrated = calibration_table(results)
    if calibrated:
        body += ["## Calibration", "", calibrated, ""]
    chosen = choices_table(results)
    if chosen:
        body += ["## What each run chose and answered", "", chosen, ""]
    body += [f"![{p.stem}]({p.name})" for p in pngs]
    (out / "report.md").write_text("\n".join(body) + "\n", encoding="utf-8")
    return {"table": table, "results": results, "files": [str(out / "report.md"),
                                                          *map(str, pngs)]}
