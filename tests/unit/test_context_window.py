"""Prompts stay inside the model's window however long earlier answers and evidence grow."""

from __future__ import annotations

import pytest

from lottery import asolve
from lottery.core.context import Context
from lottery.nodes.llm import SAFE_CHARS_PER_TOKEN, fit, room
from lottery.stores import Document, InMemoryKnowledgeBase
from tests.unit.scripted import decision, scripted, step_of

pytestmark = pytest.mark.usefixtures("planner_policy")
"""These tests script the model planner's decisions: runs follow the planner policy."""

RAMBLE = "and then the story goes on " * 200  # ~5,400 characters: a model that never stops


def test_fit_keeps_what_fits_unchanged():
    assert fit(["a", "bb", "ccc"], 6) == ["a", "bb", "ccc"]


def test_fit_cuts_the_longest_to_one_length_and_keeps_short_items_whole():
    shown = fit(["1977", "x" * 1000, "y" * 500, "Paris"], 400)
    assert shown[0] == "1977" and shown[3] == "Paris"
    assert len(shown[1]) == len(shown[2]) and shown[1].endswith("…")
    assert sum(map(len, shown)) <= 400


def test_room_is_the_window_less_the_answer_and_the_fixed_text():
    ctx = Context(context_window=1000, max_completion_tokens=200)
    assert 0 < room(ctx, "x" * 100) <= (1000 - 200) * SAFE_CHARS_PER_TOKEN - 100
    assert room(ctx, "x" * 10**6) == 0


async def test_long_sub_answers_and_evidence_are_shortened_to_the_window():
    q = "Which year comes up in these four reports?"
    subs = [{"question": f"What does report {i} say?"} for i in (1, 2, 3)] + [
        {"question": "In which year was the author of report 4 born?"},
        {"question": "Summarise #1, #2 and #3 with the year #4.", "depends_on": [1, 2, 3, 4]}]
    kb = InMemoryKnowledgeBase("reports", [Document(f"r{i}", f"Report {i}. {RAMBLE}")
                                           for i in (1, 2, 3)])

    def plans(question):
        if question == q:
            return decision("divide", subproblems=subs)
        if question.startswith("What does report"):
            return decision("retrieve", query=question)
        return decision("solve")

    def answers(step, user):
        if step == "merge":
            return "Answer: 1977" if "-> 1977" in user else "Answer: ?"
        if "born" in user.splitlines()[-1]:
            return "Answer: 1977"
        return "Answer: " + RAMBLE

    window, answer_tokens = 2048, 256
    model = scripted(plans=plans, answers=answers)
    result = await asolve(q, chat_model=model, knowledge=kb, context_window=window,
                          max_completion_tokens=answer_tokens, max_calls=40, max_tokens=10**6)
    assert result.answer == "1977"  # the short answer survived every cut whole
    limit = (window - answer_tokens) * SAFE_CHARS_PER_TOKEN
    for call in model.calls:
        prompt = sum(len(str(m.content)) for m in call["messages"])
        assert prompt <= limit, f"a {step_of(call['messages'])} prompt of {prompt} characters"
    summary = next(c for c in model.calls if step_of(c) == "solve"
                   and str(c["messages"][-1].content).endswith("with the year 1977."))
    # A ramble is too long to write into "#k": it reaches the step as an earlier result,
    # cut to the window, not dropped.
    prompt = "\n".join(str(m.content) for m in summary["messages"])
    assert all(f"What does report {i} say? -> {RAMBLE[:40]}" in prompt for i in (1, 2, 3))
    assert RAMBLE not in prompt and "…" in prompt


def test_fit_counts_what_each_item_brings_along():
    shown = fit(["x" * 100, "y" * 100], 120, per_item=10)
    assert sum(map(len, shown)) + 2 * 10 <= 120
