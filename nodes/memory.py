"""Writing intermediate results to the external memory M (a LangGraph ``BaseStore``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langgraph.store.base import BaseStore

from lottery.graphs.state import Problem


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
        await store.aput(problem_namespace(run_id), p["id"], value, index=False)
