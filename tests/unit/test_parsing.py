"""Tolerant parsing of what small models write."""

from __future__ import annotations

import pytest

from lottery.nodes.llm import extract_json_object, final_answer, parse_structured
from lottery.nodes.schemas import PlannerDecision

pytestmark = pytest.mark.usefixtures("planner_policy")
"""These tests script the model planner's decisions: runs follow the planner policy."""


@pytest.mark.parametrize("text", [
    '{"action": "solve", "reason": "x"}',
    'Sure! Here is my decision:\n```json\n{"action": "solve", "reason": "x"}\n```',
    "{'action': 'solve', 'reason': 'x', 'query': None}",
    '{"action": "solve", "reason": "brace } in a string"}',
    '{"action": "solve", "reason": "x"',  # truncated by max_tokens
])
def test_extracts_a_json_object_from_typical_small_model_output(text):
    assert extract_json_object(text)["action"] == "solve"


@pytest.mark.parametrize("text", ["", "no json here", "[1, 2]", "{not: valid: at all"])
def test_returns_none_when_there_is_no_object(text):
    assert extract_json_object(text) is None


def test_action_synonyms_and_string_subproblems_are_accepted():
    parsed, error = parse_structured(
        '{"action": "Decompose", "subproblems": ["a?", {"question": "b #1?", "depends_on": ["#1"]}]}',
        PlannerDecision,
    )
    assert error is None and parsed.action == "divide"
    assert [s.question for s in parsed.subproblems] == ["a?", "b #1?"]
    assert parsed.subproblems[1].depends_on == [1]


def test_an_unknown_action_is_an_error_not_a_decision():
    parsed, error = parse_structured('{"action": "fly"}', PlannerDecision)
    assert parsed is None and "action" in error


@pytest.mark.parametrize("text,answer", [
    ("Step 1...\nAnswer: 42", "42"),
    ("**Final Answer:** Paris", "Paris"),
    ("Answer: 1\nwait\nAnswer: 2", "2"),
    ("just this line", "just this line"),
    ("The final answer is \\(\\boxed{401}\\).", "401"),
    ("so \\boxed{\\frac{1}{2}} here\nAnswer: wrong", "\\frac{1}{2}"),
    ("", ""),
])
def test_final_answer_is_the_last_answer_line(text, answer):
    assert final_answer(text) == answer


def test_planner_schema_keeps_tool_arguments_flat_and_few():
    from lottery.nodes.schemas import planner_json_schema

    tool_input = planner_json_schema(allow_divide=True, tools=True)["properties"]["tool_input"]
    # A small model nested "tool_input" in itself, then repeated keys, until max_tokens.
    assert tool_input["maxProperties"] == 4
    kinds = {v["type"] for v in tool_input["additionalProperties"]["anyOf"]}
    assert "object" not in kinds and "array" not in kinds
