"""Writing intermediate results to the external memory M (a LangGraph ``BaseStore``)."""

from __future__ import annotations

import hashlib
import time
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from langgraph.store.base import BaseStore

from lottery.core.context import Context
from lottery.core.state import Problem
from lottery.sanitize import json_safe


def problem_namespace(run_id: str) -> tuple[str, ...]:
    """Namespace of a run's problem records in M."""
    return ("runs", run_id, "problems")


async def remember(store: BaseStore | None, run_id: str, problems: Iterable[Problem]) -> None:
    """Store each problem's question, decision, evidence and answer under its id."""
    if store is None:  # compiled without a store: nothing to write to
        return
    for p in problems:
        value: dict[str, Any] = {
            "question": p["question"],
            "parent": p["parent"],
            "depth": p["depth"],
            "decision": p["decision"],
            "evidence": p["evidence"],
            "tool_call": p["tool_call"],
            "children": p["children"],
            "answer": p["answer"],
            "status": p["status"],
        }
        await store.aput(problem_namespace(run_id), p["id"], json_safe(value), index=False)


# -- answers of solved problems, reused by later problems and runs --------------------------

def normalize_question(question: str) -> str:
    """The form under which equal questions meet: NFKC, case-folded, single spaces, no end mark."""
    text = unicodedata.normalize("NFKC", question).casefold()
    text = " ".join(text.split())
    return text.rstrip(" ?.!;:").strip()


def answer_namespace(model: str, knowledge_base: str) -> tuple[str, ...]:
    """Namespace of remembered answers: one per model and knowledge base."""
    # Namespace labels may not contain dots (model names often do).
    return ("answers", quote(model, safe="").replace(".", "%2E"),
            quote(knowledge_base, safe="").replace(".", "%2E"))


def question_key(question: str) -> str:
    """Key of a question's remembered answer in memory M: a hash of its normalised form."""
    return hashlib.sha256(normalize_question(question).encode("utf-8")).hexdigest()[:40]


async def recall_answer(
    store: BaseStore | None, ctx: Context, question: str, *, now: float | None = None
) -> dict[str, Any] | None:
    """The remembered answer to ``question`` (same model, same knowledge base, not expired,
    checked and at least ``reuse_min_confidence`` sure unless that is 0)."""
    if store is None or not ctx.reuse:
        return None
    item = await store.aget(answer_namespace(ctx.model, ctx.knowledge_base), question_key(question))
    if item is None:
        return None
    value = item.value
    if value.get("normalized") != normalize_question(question) or not value.get("answer"):
        return None
    if ctx.reuse_min_confidence and not (
            value.get("accepted") and float(value.get("confidence") or 0) >= ctx.reuse_min_confidence):
        return None  # unchecked, or not sure enough for this run
    age = (now if now is not None else time.time()) - float(value.get("created_at", 0))
    if ctx.reuse_ttl_s and age > ctx.reuse_ttl_s:
        return None
    return value


async def memorize_answer(
    store: BaseStore | None, ctx: Context, run_id: str, problem: Problem, cost: int
) -> None:
    """Remember a solved problem's answer and what it cost (``cost`` model calls)."""
    if store is None or not problem.get("answer"):
        return
    value = {
        "question": problem["question"],
        "normalized": normalize_question(problem["question"]),
        "answer": problem["answer"],
        "decision": problem["decision"],
        "run_id": run_id,
        "problem_id": problem["id"],
        "confidence": problem.get("confidence"),
        "accepted": bool(problem.get("accepted")),
        "checked_by": run_id if problem.get("accepted") else None,
        "calls": cost,
        "model": ctx.model,
        "knowledge_base": ctx.knowledge_base,
        "created_at": time.time(),
    }
    await store.aput(answer_namespace(ctx.model, ctx.knowledge_base),
                     question_key(problem["question"]), json_safe(value), index=False)
