"""Progress events a run streams while it works (LangGraph ``custom`` stream mode).

Nodes write one event per decision and per answer through
``runtime.stream_writer``; a Python caller sees them with
``graph.astream(..., stream_mode="custom")`` (or :func:`lottery.api.astream_events`),
a server client with ``client.runs.stream(..., stream_mode="custom")``. When
nobody streams, the writer does nothing.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from lottery.core.state import Decision, Problem


class DecisionEvent(TypedDict):
    """A problem was decided: by the planner, or by a rule (depth limit, budget)."""

    event: Literal["decision"]
    problem: str
    """Id of the problem (``0`` is the root)."""
    depth: int
    question: str
    decision: Decision
    reason: str
    children: NotRequired[list[dict[str, str]]]
    """``{"id", "question"}`` of the sub-problems, for ``divide``."""
    query: NotRequired[str]
    """The retrieval query, for ``retrieve``."""
    tool: NotRequired[str]
    """The tool's name, for ``tool``."""


class AnswerEvent(TypedDict):
    """A problem was answered: by ``solve``, by ``merge``, or from memory M (``reuse``)."""

    event: Literal["answer"]
    problem: str
    depth: int
    question: str
    answer: str | None
    step: Literal["solve", "merge", "reuse"]


def emit_decision(
    runtime: Runtime[Any], problem: Problem, updates: dict[str, dict[str, Any]]
) -> None:
    """Stream the decision that ``updates`` (tree updates of one step) made for ``problem``."""
    own = {**problem, **updates.get(problem["id"], {})}
    if own.get("decision") is None:
        return
    event = DecisionEvent(event="decision", problem=own["id"], depth=own["depth"],
                          question=own["question"], decision=own["decision"],
                          reason=own.get("reason", ""))
    if own["decision"] == "divide":
        event["children"] = [{"id": c, "question": updates.get(c, {}).get("question", "")}
                             for c in own.get("children", [])]
    elif own["decision"] == "retrieve" and own.get("query"):
        event["query"] = own["query"]
    elif own["decision"] == "tool" and own.get("tool_call"):
        event["tool"] = own["tool_call"].get("name", "")
    runtime.stream_writer(event)


def emit_answer(runtime: Runtime[Any], problem: Problem, answer: str | None,
                step: Literal["solve", "merge", "reuse"]) -> None:
    """Stream the answer ``step`` gave ``problem``."""
    runtime.stream_writer(AnswerEvent(event="answer", problem=problem["id"], depth=problem["depth"],
                                      question=problem["question"], answer=answer, step=step))
