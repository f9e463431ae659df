"""The bench runner: every item of a suite through ``lottery.api.asolve``, concurrently.

A results folder holds ``config.json`` (what ran), ``rows.jsonl`` (one line per
item, appended and flushed as soon as the item is scored) and ``summary.json``.
A stopped bench run again with the same folder skips the items already in
``rows.jsonl`` and continues where it stopped.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langgraph.store.base import BaseStore, GetOp, ListNamespacesOp, Op, PutOp, Result, SearchOp
from langgraph.store.memory import InMemoryStore

from lottery.api import asolve
from lottery.bench.suites import Item, SuiteData, load_suite
from lottery.core.context import Context
from lottery.errors import ConfigurationError, LotteryError, ModelRequestError, ModelServerError
from lottery.nodes.llm import fit
from lottery.nodes.policy import validate as validate_policy
from lottery.stores.knowledge import InMemoryKnowledgeBase, KnowledgeBase
from lottery.tools.registry import ToolRegistry

STRATEGIES = ("direct", "cot", "pal", "algorithm1")
ABLATIONS = ("tools", "retrieval", "divide", "memory")

ROWS, SUMMARY, CONFIG = "rows.jsonl", "summary.json", "config.json"

MODEL_PARAMS = {"135m": 0.135e9, "0.5b": 0.49e9, "1.5b": 1.54e9, "3b": 3.09e9, "7b": 7.62e9}
"""Parameter counts of the catalogue models, keyed by the size tag in the model name."""

_FAILURES_IN_A_ROW = 3
"""Server failures in a row that stop a bench (a dead server should not 'score' zeros)."""

QUESTION_EXCERPT_CHARS = 80
"""A row names its question by ``id`` and shows only its start: results folders get
committed and shared, the benchmark data must not travel with them (read it by id from the
data folder)."""


def size_tag(model: str) -> str:
    """``1.5b`` for a catalogue model name, else the name (lower case, without its org)."""
    name = model.split("/")[-1].lower()
    return next((tag for tag in sorted(MODEL_PARAMS, key=len, reverse=True) if tag in name), name)


def model_params(model: str, override: float | None = None) -> float | None:
    """Parameters of ``model``: ``override``, else from the size tag in its name, else ``None``."""
    if override:
        return override
    name = model.lower()
    for tag, params in sorted(MODEL_PARAMS.items(), key=lambda kv: -len(kv[0])):
        if f"-{tag}" in name or f"{tag}-" in name or name.endswith(tag):
            return params
    return None


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """What one bench runs; stored as ``config.json`` and checked on resume."""

    suite: str
    strategy: str
    model: str
    out: str
    data: str | None = None
    ablate: tuple[str, ...] = ()
    base_url: str | None = None
    limit: int | None = None
    skip: int = 0
    """Items left out at the start of the suite, before ``limit`` applies (held-out rows)."""
    concurrency: int = 8
    rag: bool = False
    """Baselines only: put the top-k passages retrieved for the question into the prompt."""
    policy: str | None = None
    """Algorithm 1 only: the policy (``auto`` when not given, as ``lottery ask`` runs it)."""
    delegate_model: str | None = None
    """Algorithm 1 only: the delegate model (served at ``delegate_base_url``)."""
    delegate_base_url: str | None = None
    delegate_params: float | None = None
    """Parameters of the delegate model, for compute (default: from its name)."""
    params: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    """Extra :class:`Context` settings (``max_calls``, ``top_k``, ...)."""
    engine: str = "vllm"
    """The engine that served the model: the local server's (``lottery serve``), else
    ``external``. Benches recorded before engines existed (5 Dec 2026) all ran on vLLM."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigurationError(
                f"unknown strategy {self.strategy!r} (choose from {', '.join(STRATEGIES)})")
        bad = [a for a in self.ablate if a not in ABLATIONS]
        if bad:
            raise ConfigurationError(
                f"unknown ablation {bad[0]!r} (choose from {', '.join(ABLATIONS)})")
        if self.ablate and self.strategy != "algorithm1":
            raise ConfigurationError("--ablate applies to --strategy algorithm1 only")
        if self.rag and self.strategy == "algorithm1":
            raise ConfigurationError("--rag applies to the direct and cot baselines only")
        if (self.policy or self.delegate_model) and self.strategy != "algorithm1":
            raise ConfigurationError("--policy and --delegate-model apply to --strategy algorithm1 only")
        if self.policy:
            validate_policy(self.policy)
        if bool(self.delegate_model) != bool(self.delegate_base_url):
            raise ConfigurationError("delegation needs both --delegate-model and --delegate-base-url")
        if self.concurrency < 1:
            raise ConfigurationError(f"--concurrency must be positive, got {self.concurrency}")

    def identity(self) -> dict[str, Any]:
        """The fields that must match for a folder to be resumed."""
        return {"suite": self.suite, "strategy": self.strategy, "model": self.model,
                "ablate": sorted(self.ablate), "rag": self.rag, "settings": self.settings,
                "policy": self.policy, "delegate_model": self.delegate_model,
                "engine": self.engine}

    @property
    def label(self) -> str:
        """``cot``, ``algorithm1-no-tools``, ``cot+rag``, ``algorithm1-sc5`` (answers voted
        over 5 samples per solve), ``algorithm1-auto+delegate-1.5b-cot`` (the delegate
        reasons instead of writing a program, ``delegate_strategy=cot``), ``…-checked-python``
        (``solve_check``), ``pal-0shot`` (``program_shots``): the run's name in reports."""
        name = self.strategy + ("+rag" if self.rag else "")
        if self.strategy == "algorithm1":
            name += f"-{self.policy or 'auto'}"
        if self.delegate_model:
            name += f"+delegate-{size_tag(self.delegate_model)}"
            strategy = self.settings.get("delegate_strategy")
            name += f"-{strategy}" if strategy and strategy != "pal" else ""
        name += "".join(f"-no-{a}" for a in sorted(self.ablate))
        samples = int(self.settings.get("solve_samples") or 1)
        name += f"-sc{samples}" if samples > 1 else ""
        check = self.settings.get("solve_check")
        name += f"-checked-{check}" if check else ""
        shots = self.settings.get("program_shots")
        return name + (f"-{shots}shot" if shots is not None else "")


@dataclass(slots=True)
class BenchRun:
    """Outcome of :func:`run_bench`."""

    summary: dict[str, Any]
    new_rows: int
    skipped: int
    out: Path


class NullStore(BaseStore):
    """A memory M that keeps nothing (the ``memory`` ablation)."""

    def batch(self, ops: Any) -> list[Result]:
        return [_null(op) for op in ops]

    async def abatch(self, ops: Any) -> list[Result]:
        return [_null(op) for op in ops]


def _null(op: Op) -> Result:
    if isinstance(op, SearchOp | ListNamespacesOp):
        return []
    if isinstance(op, GetOp | PutOp):
        return None
    return None


def ablation_settings(ablate: Sequence[str]) -> dict[str, Any]:
    """:class:`Context` settings (and a store) that switch the named abilities off."""
    out: dict[str, Any] = {}
    if "tools" in ablate:
        out["tools"] = ToolRegistry([])
    if "retrieval" in ablate:
        out["knowledge"] = InMemoryKnowledgeBase("empty")
    if "divide" in ablate:
        out["max_depth"] = 0
    if "memory" in ablate:
        out["store"] = NullStore()
        out["reuse"] = False
    return out


async def build_knowledge(suite: SuiteData) -> KnowledgeBase | None:
    """The suite's knowledge base, loaded with all its documents (``None`` if it has none)."""
    if not suite.documents:
        return None
    kb = InMemoryKnowledgeBase(f"bench-{suite.name}")
    report = await kb.aupsert(suite.documents)
    if report.failed:
        first = next(iter(report.failed.items()))
        raise ConfigurationError(
            f"{len(report.failed)} documents of {suite.name} failed to load (first: {first})")
    return kb


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``rows.jsonl``, one per item: a torn last line (the bench was killed
    mid-write) is dropped, and an item written twice (two benches on one folder) counts once,
    as first written."""
    if not path.is_file():
        return []
    rows: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        rows.setdefault(str(row.get("id")), row)
    return list(rows.values())


async def run_bench(
    config: BenchConfig,
    *,
    suite: SuiteData | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    **inject: Any,
) -> BenchRun:
    """Run (or resume) a bench; returns its summary.

    Args:
        config: what to run.
        suite: an already loaded suite (tests); loaded from ``config.data`` otherwise.
        on_start: called with (items to run now, items already done).
        on_row: called with every new row.
        inject: extra settings for ``asolve`` (``chat_model=`` in tests).
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_resume(out, config)
    suite = suite or load_suite(config.suite, config.data, limit=config.limit,
                                 skip=config.skip)
    rows_path = out / ROWS
    _drop_torn_tail(rows_path)
    done = {r["id"] for r in read_rows(rows_path)}
    todo = [item for item in suite.items if item.id not in done]
    if on_start:
        on_start(len(todo), len(suite.items) - len(todo))
    kb = await build_knowledge(suite)
    settings: dict[str, Any] = {"base_url": config.base_url, "model": config.model,
                                "max_input_chars": max(Context.max_input_chars,
                                                       suite.max_input_chars),
                                **config.settings, **inject}
    if config.strategy == "algorithm1":  # the baselines have no policy
        settings["policy"] = config.policy or "auto"
        if config.delegate_model:
            settings.update(delegate_model=config.delegate_model,
                            delegate_base_url=config.delegate_base_url)
    if kb is not None:
        settings["knowledge"] = kb
    settings.update(ablation_settings(config.ablate))
    # One fresh memory M per bench: sub-problems solved for one item may serve later items
    # (that is the memory ability), but nothing leaks in from earlier runs or other benches,
    # as it would from the durable SQL memory that asolve uses by default.
    settings.setdefault("store", InMemoryStore())
    lock, sem = asyncio.Lock(), asyncio.Semaphore(config.concurrency)
    failures: dict[str, Any] = {"in_a_row": 0, "last": ""}
    new_rows = 0

    async def one(item: Item) -> None:
        nonlocal new_rows
        async with sem:
            row = await _run_item(item, config, settings, kb)
        async with lock:
            if isinstance(row, ModelServerError):
                failures["in_a_row"] += 1
                failures["last"] = str(row)
                if failures["in_a_row"] >= _FAILURES_IN_A_ROW:
                    raise ModelServerError(
                        f"the model server failed {_FAILURES_IN_A_ROW} items in a row (last: "
                        f"{failures['last']}); check it, then run the same command again to resume")
                return
            failures["in_a_row"] = 0
            with rows_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            new_rows += 1
        if on_row:
            on_row(row)

    tasks = [asyncio.create_task(one(item)) for item in todo]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        ids = {i.id for i in suite.items}
        summary = summarize([r for r in read_rows(rows_path) if r["id"] in ids], config,
                            total_items=len(suite.items))
        (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return BenchRun(summary, new_rows, len(suite.items) - len(todo), out)


def _drop_torn_tail(path: Path) -> None:
    """Cut a half-written last line (a killed bench) so the next row starts on its own line."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def _check_resume(out: Path, config: BenchConfig) -> None:
    path = out / CONFIG
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        mine = config.identity()
        theirs = {k: stored.get(k) for k in mine}
        theirs["ablate"] = sorted(theirs.get("ablate") or [])
        theirs["settings"] = theirs.get("settings") or {}
        theirs["rag"] = bool(theirs.get("rag"))
        theirs["engine"] = theirs.get("engine") or "vllm"  # folders from before engines
        if theirs != mine:
            diff = ", ".join(f"{k}={theirs[k]!r}" for k in mine if theirs[k] != mine[k])
            raise ConfigurationError(
                f"{out} holds a different bench ({diff}); choose another --out to keep both")
        return
    data = {**asdict(config), "ablate": sorted(config.ablate), "created": time.time()}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


async def _run_item(item: Item, config: BenchConfig, settings: dict[str, Any],
                    kb: KnowledgeBase | None) -> dict[str, Any] | ModelServerError:
    """Solve and score one item; the error when the model server failed (retried on resume)."""
    question = item.question
    if config.rag and kb is not None:
        top_k = int(config.settings.get("top_k", 4))
        hits = await kb.asearch(item.question, k=top_k)
        passages = "\n".join(f"[{i}] {h.text[:1500]}" for i, h in enumerate(hits, start=1))
        question = f"Passages:\n{passages}\n\nQuestion: {item.question}"
    start = time.perf_counter()
    kwargs = dict(settings)
    store = kwargs.pop("store", None)
    try:
        result = await asolve(question, strategy=config.strategy, store=store, **kwargs)  # type: ignore[arg-type]
    except ModelRequestError as exc:  # refused (e.g. a prompt over the window): the item's
        return _row(item, None, error=f"{type(exc).__name__}: {exc}",  # answer, not a retry
                    wall=time.perf_counter() - start)
    except ModelServerError as exc:
        return exc
    except LotteryError as exc:
        return _row(item, None, error=f"{type(exc).__name__}: {exc}",
                    wall=time.perf_counter() - start)
    u, root = result.usage, result.tree.get("0") or {}
    return _row(item, result.answer, wall=u.wall_time_s, calls=u.calls,
                prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
                tree_size=len(result.tree),
                depth=max((p["depth"] for p in result.tree.values()), default=0),
                best_effort=result.best_effort, fallbacks=u.fallbacks, repairs=u.repairs,
                decision=root.get("decision"),
                **({"check": root["check"]} if "check" in root else {}),
                **_policy_fields(result, root))


def _policy_fields(result: Any, root: dict[str, Any]) -> dict[str, Any]:
    """What a row records of a policy run: the class, the rung that answered, how sure it
    was, whether it was accepted, and what the delegate model spent."""
    if result.policy is None:
        return {}
    u = result.usage
    rungs = root.get("rungs") or []
    return {"policy": result.policy, "rung": rungs[-1] if rungs else "attempt",
            "rungs": rungs, "confidence": result.confidence, "accepted": root.get("accepted"),
            # every answer the root received, for selection rules tried offline
            "candidates": [[c["kind"], fit([c["answer"]], 80)[0]]
                           for c in root.get("candidates") or []],
            "delegated": u.delegate_calls > 0, "delegate_calls": u.delegate_calls,
            "delegate_prompt_tokens": u.delegate_prompt_tokens,
            "delegate_completion_tokens": u.delegate_completion_tokens}


def _row(item: Item, prediction: str | None, *, wall: float, error: str | None = None,
         **usage: Any) -> dict[str, Any]:
    score = item.score(prediction)
    row: dict[str, Any] = {
        "id": item.id, "question": fit([item.question], QUESTION_EXCERPT_CHARS)[0],
        "gold": item.gold_text(),
        "prediction": prediction, "parsed": score.parsed, "correct": score.correct,
    }
    if score.f1 is not None:
        row["f1"] = round(score.f1, 4)
    row.update({"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "tree_size": 0,
                **usage, "wall_time_s": round(wall, 3)})
    if item.meta:
        row["meta"] = item.meta
    if error:
        row["error"] = error
    return row


def summarize(rows: list[dict[str, Any]], config: BenchConfig, *,
              total_items: int | None = None) -> dict[str, Any]:
    """Accuracy, F1, cost and compute of a set of rows."""
    n, counts = len(rows), tally(rows)
    tokens = counts["prompt_tokens"] + counts["completion_tokens"]
    delegate_tokens = sum(r.get("delegate_prompt_tokens", 0) + r.get("delegate_completion_tokens", 0)
                          for r in rows)
    params = model_params(config.model, config.params)
    delegate_params = (model_params(config.delegate_model, config.delegate_params)
                       if config.delegate_model else None)
    compute = None
    if params and (delegate_params or not delegate_tokens):
        # params x tokens, each model's tokens at its own size (the delegate's are in both)
        compute = params * (tokens - delegate_tokens) + (delegate_params or 0) * delegate_tokens
    f1s = [r["f1"] for r in rows if "f1" in r]
    summary: dict[str, Any] = {
        "suite": config.suite, "model": config.model, "engine": config.engine,
        "strategy": config.strategy, "label": config.label, "ablate": sorted(config.ablate),
        "rag": config.rag,
        **counts, "items_planned": total_items if total_items is not None else n,
        "complete": total_items is None or n >= total_items,
        "f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
        "best_effort": sum(1 for r in rows if r.get("best_effort")),
        "params": params,
        "compute": compute,
        "settings": config.settings,
        "policy": config.policy or ("auto" if config.strategy == "algorithm1" else None),
        "delegate_model": config.delegate_model,
        "delegate_params": delegate_params,
        "delegated": sum(1 for r in rows if r.get("delegated")),
        "delegate_tokens": delegate_tokens,
        "calibration": calibration(rows),
        "classes": classes(rows),
        "answers": answer_distribution(rows),
    }
    if n:
        summary.update(
            calls_per_item=round(summary["calls"] / n, 2),
            tokens_per_item=round(tokens / n, 1),
            wall_time_per_item_s=round(summary["wall_time_s"] / n, 2),
            compute_per_item=compute / n if compute is not None else None,
            delegated_fraction=round(summary["delegated"] / n, 4),
            tree_size_per_item=round(sum(r.get("tree_size", 0) for r in rows) / n, 2),
        )
    return summary


def tally(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What every bench summary counts over its rows: items, correct answers, accuracy with
    its 95% interval, errors, calls, tokens and the summed wall time of the items."""
    n = len(rows)
    correct = sum(1 for r in rows if r.get("correct"))
    return {"items": n, "correct": correct, "accuracy": round(correct / n, 4) if n else None,
            "accuracy_ci95": wilson(correct, n),
            "errors": sum(1 for r in rows if r.get("error")),
            "calls": sum(r.get("calls", 0) for r in rows),
            "prompt_tokens": sum(r.get("prompt_tokens", 0) for r in rows),
            "completion_tokens": sum(r.get("completion_tokens", 0) for r in rows),
            "wall_time_s": round(sum(r.get("wall_time_s", 0.0) for r in rows), 2)}


def classes(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per policy class that ran (``auto`` picks one per question): items and right answers,
    so that what ``auto`` chose for a suite is seen beside how each choice did."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        if r.get("policy"):
            c = out.setdefault(r["policy"], {"items": 0, "correct": 0})
            c["items"] += 1
            c["correct"] += bool(r.get("correct"))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["items"]))


_OPTION = re.compile(r"[A-J]")


def answer_distribution(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]] | None:
    """For an option suite (every gold answer a letter): how often each letter was the gold
    answer and how often it was given (``none``: no option read), so that a model answering
    one letter throughout shows as such. ``None`` for other suites."""
    if not rows or not all(_OPTION.fullmatch(str(r.get("gold", ""))) for r in rows):
        return None
    gold = Counter(str(r["gold"]) for r in rows)
    given = Counter(str(r.get("parsed") or "none") for r in rows)
    return {"gold": dict(sorted(gold.items())), "given": dict(sorted(given.items()))}


CONFIDENCE_BUCKETS = (0.0, 0.5, 0.8, 1.0001)
"""Edges of the calibration buckets: [0, 0.5), [0.5, 0.8), [0.8, 1]."""


def calibration(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Accuracy by confidence bucket (rows with a confidence only): a confidence of 0.8 or
    more should be right at least 80% of the time."""
    out = []
    for low, high in zip(CONFIDENCE_BUCKETS, CONFIDENCE_BUCKETS[1:], strict=False):
        inside = [r for r in rows if r.get("confidence") is not None
                  and low <= r["confidence"] < high and not r.get("error")]
        if inside:
            right = sum(1 for r in inside if r.get("correct"))
            out.append({"from": low, "to": min(high, 1.0), "items": len(inside),
                        "accuracy": round(right / len(inside), 4),
                        "accuracy_ci95": wilson(right, len(inside))})
    return out


def wilson(k: int, n: int, z: float = 1.96) -> list[float] | None:
    """95% Wilson interval of a proportion (small benches: read accuracies with it)."""
    if not n:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]
