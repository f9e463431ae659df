"""Pydantic models of everything a model must answer in a fixed shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

_ACTION_SYNONYMS = {
    "answer": "solve", "direct": "solve", "solve_directly": "solve", "respond": "solve",
    "search": "retrieve", "lookup": "retrieve", "look_up": "retrieve", "retrieval": "retrieve",
    "decompose": "divide", "split": "divide", "subdivide": "divide", "plan": "divide",
    "use_tool": "tool", "call_tool": "tool", "calculate": "tool", "compute": "tool",
}


class SubProblem(BaseModel):
    """One sub-question of a divide decision."""

    question: str = Field(min_length=1)
    depends_on: list[int] = Field(
        default_factory=list,
        description="1-based numbers of earlier sub-questions whose answers this one uses.",
    )

    @field_validator("depends_on", mode="before")
    @classmethod
    def _ints(cls, v: Any) -> list[int]:
        if v is None:
            return []
        if isinstance(v, int | str):
            v = [v]
        if not isinstance(v, list | tuple):  # junk (a float, an object): no dependencies
            return []
        out = []
        for item in v:
            text = str(item).strip().lstrip("#")
            if text.isdigit():
                out.append(int(text))
        return out


class PlannerDecision(BaseModel):
    """The planner's structured decision for one problem."""

    action: Literal["solve", "retrieve", "tool", "divide"]
    reason: str = ""
    query: str | None = None
    tool: str | None = None
    tool_input: dict[str, Any] | None = None
    subproblems: list[SubProblem] = Field(default_factory=list)

    @field_validator("action", mode="before")
    @classmethod
    def _action(cls, v: Any) -> Any:
        if isinstance(v, str):
            key = v.strip().lower().replace(" ", "_").replace("-", "_")
            return _ACTION_SYNONYMS.get(key, key)
        return v

    @field_validator("tool_input", mode="before")
    @classmethod
    def _tool_input(cls, v: Any) -> Any:
        if isinstance(v, str):  # a bare string is the tool's single argument
            return {"__text__": v}
        return v

    @field_validator("subproblems", mode="before")
    @classmethod
    def _subproblems(cls, v: Any) -> Any:
        if v is None:
            return []
        if not isinstance(v, list | tuple):
            return v  # not a list: pydantic reports it, and the planner repairs or falls back
        return [{"question": s} if isinstance(s, str) else s for s in v]


TOOL_ARGUMENT: dict[str, Any] = {"anyOf": [{"type": "string", "maxLength": 400}, {"type": "number"},
                                          {"type": "boolean"}]}
"""One value of a tool's arguments in a planner decision (programs come in a later step)."""


def planner_json_schema(*, allow_divide: bool, tools: bool, max_fanout: int = 6,
                        retrieve: bool = True, divide_only: bool = False) -> dict[str, Any]:
    """A compact JSON schema for constrained decoding of a planner decision.

    Lengths are bounded (``maxLength``, ``maxItems``): a small model under a
    grammar otherwise tends to repeat list items or text until ``max_tokens``
    cuts the JSON off (seen with SmolLM2-135M on vLLM/xgrammar).
    """
    actions = (["solve"] + (["retrieve"] if retrieve else []) + (["tool"] if tools else [])
               + (["divide"] if allow_divide else []))
    if divide_only:  # a policy's divide rung: the decision is made, only the split is asked
        actions = ["divide"]
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": actions},
            "reason": {"type": "string", "maxLength": 300},
            "query": {"type": "string", "maxLength": 300},
            "tool": {"type": "string"},
            # Flat arguments only: an open object let a small model nest "tool_input" inside
            # itself until max_tokens (seen with SmolLM2-135M).
            "tool_input": {"type": "object", "additionalProperties": TOOL_ARGUMENT,
                           "maxProperties": 4},
            "subproblems": {
                "type": "array",
                "maxItems": max_fanout,
                "items": {
                    "type": "object",
                    "properties": {
                        "question": {"type": "string", "minLength": 1, "maxLength": 400},
                        "depends_on": {"type": "array", "items": {"type": "integer"},
                                       "maxItems": max_fanout},
                    },
                    "required": ["question"],
                },
            },
        },
        "required": ["action", "reason"],
    }


SHORT_ANSWER_CHARS = 80
"""The longest short answer: a name, a date, a title; graders compare it with a gold span."""


class ShortAnswer(BaseModel):
    """An answer alone, as exact match and F1 grade it against a gold span."""

    answer: str = Field(min_length=1, max_length=SHORT_ANSWER_CHARS)

    @classmethod
    def json_schema(cls, choices: Sequence[str] = ()) -> dict[str, Any]:
        """The schema the server constrains decoding to: one of ``choices`` when the question
        offers them ("yes"/"no", or the two names of "Which ..., A or B?"), else a bounded
        string (a small model otherwise repeats its sentence inside the JSON)."""
        answer: dict[str, Any] = ({"type": "string", "enum": list(choices)} if choices else
                                  {"type": "string", "minLength": 1,
                                   "maxLength": SHORT_ANSWER_CHARS})
        return {"type": "object", "additionalProperties": False, "required": ["answer"],
                "properties": {"answer": answer}}
