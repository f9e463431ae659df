"""Helpers of the program tools: finding the program in a reply, and voting on answers."""

from __future__ import annotations

import pytest

from lottery.nodes.programs import ProgramOutcome, _vote, extract_code, normalize, program_messages
from lottery.tools.registry import ToolResult


@pytest.mark.parametrize("reply,code", [
    ("Here:\n```python\nprint(1)\n```\nDone.", "print(1)"),
    ("```py\nx = 2\nprint(x)\n```", "x = 2\nprint(x)"),
    ("```python\nprint(3)\n", "print(3)"),  # truncated reply: the fence never closed
    ("print(4)", "print(4)"),
    ("The answer is four.", None),
    ("", None),
])
def test_extracts_the_program_from_a_reply(reply, code):
    assert extract_code(reply) == code


@pytest.mark.parametrize("a,b", [("42", "42.0"), ("$1,200", "1200"), ("18", " 18. "),
                                 ("True", "true")])
def test_equal_answers_vote_together(a, b):
    assert normalize(a) == normalize(b)


def result(output: str | None) -> ToolResult:
    ok = output is not None
    return ToolResult("python", {"code": f"print({output!r})"}, ok, output or "",
                      None if ok else "boom", 0.0)


def test_vote_picks_the_most_common_executed_answer_and_ignores_failures():
    outcome = ProgramOutcome(answer=None, program=None,
                             runs=[result("7"), result(None), result("18"), result("18.0"),
                                   result(None), result("9")])
    _vote(outcome)
    assert outcome.answer == "18" and outcome.votes == 2
    assert outcome.program == "print('18')"


def test_vote_has_no_answer_when_nothing_ran():
    outcome = ProgramOutcome(answer=None, program=None, runs=[result(None), result(None)])
    _vote(outcome)
    assert outcome.answer is None


def test_program_prompt_ends_with_the_question_and_known_results():
    messages = program_messages("python", "How many?", [{"id": "0.1", "question": "q1",
                                                          "answer": "5"}])
    assert "Known: q1 -> 5" in messages[-1].content and messages[-1].content.endswith("How many?")
    assert "```python" in messages[2].content  # few-shot answers are programs
