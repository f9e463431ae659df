"""Runaway recursion: endless divides, cycles and huge fan-outs are stopped by the limits."""

from __future__ import annotations

import json

import pytest

from lottery import asolve
from tests.unit.scripted import decision, scripted, step_of

pytestmark = pytest.mark.usefixtures("planner_policy")
"""These tests script the model planner's decisions: runs follow the planner policy."""


def _plans(model) -> int:
    return sum(1 for c in model.calls if step_of(c["messages"]) == "plan")


async def test_a_model_that_divides_forever_is_stopped_by_depth_then_budget_with_a_marker():
    def plans(question):  # every problem, at every level, "needs" three more
        return decision("divide", subproblems=[f"{question[:40]} / step {i}" for i in (1, 2, 3)])

    model = scripted(plans=plans)
    result = await asolve("Explain the universe.", chat_model=model, max_depth=8, max_calls=20)
    assert result.usage.calls <= 20 and len(model.calls) == result.usage.calls
    assert result.best_effort and result.stop_reason == "budget"
    assert result.answer, "a best-effort answer, not nothing"
    assert "budget nearly spent" in result.root["reason"]


async def test_endless_divides_within_a_budget_end_at_the_depth_limit():
    def plans(question):
        return decision("divide", subproblems=[f"{question[:30]}.a", f"{question[:30]}.b"])

    model = scripted(plans=plans)
    result = await asolve("Go deep.", chat_model=model, max_depth=2, max_calls=100, max_tokens=10**6)
    assert max(p["depth"] for p in result.tree.values()) == 2
    assert len(result.tree) == 1 + 2 + 4
    leaves = [p for p in result.tree.values() if p["depth"] == 2]
    assert all("depth limit" in p["reason"] for p in leaves)
    assert result.root["status"] == "done" and not result.best_effort


async def test_a_thousand_subproblems_at_once_are_cut_to_the_fan_out_limit_and_marked():
    q = "List everything."
    model = scripted(plans={q: decision("divide", subproblems=[f"item {i}?" for i in range(1000)])})
    result = await asolve(q, chat_model=model, max_fanout=5)
    assert result.root["children"] == [f"0.{i}" for i in range(1, 6)]
    assert "kept 5 of 1000 sub-problems" in result.root["reason"]
    assert result.root["status"] == "done" and result.answer


async def test_dependencies_on_itself_or_later_siblings_cannot_deadlock_the_tree():
    q = "Tangle."
    subs = [{"question": "first uses #2", "depends_on": [2, 1]},
            {"question": "second uses #2 and #3", "depends_on": [2, 3]},
            {"question": "third uses #1", "depends_on": [1, 3, 9, -1]}]
    model = scripted(plans={q: decision("divide", subproblems=subs)})
    result = await asolve(q, chat_model=model)
    tree = result.tree
    assert tree["0.1"]["depends_on"] == [] and tree["0.2"]["depends_on"] == []
    assert tree["0.3"]["depends_on"] == ["0.1"]
    assert all(tree[c]["status"] == "done" for c in result.root["children"])
    assert result.answer and not result.best_effort


async def test_a_subproblem_that_repeats_its_parent_is_stopped_by_the_depth_limit():
    q = "Same again?"
    model = scripted(plans=lambda question: decision("divide", subproblems=[q, q]))
    result = await asolve(q, chat_model=model, max_depth=3, max_calls=200, max_tokens=10**6)
    assert max(p["depth"] for p in result.tree.values()) == 3
    assert _plans(model) == 1 + 2 + 4, "levels 0-2 are planned; level 3 is solved directly"
    assert result.answer


async def test_blank_subquestions_are_dropped_and_the_rest_renumbered():
    q = "Two parts."
    model = scripted(plans={q: json.dumps({"action": "divide", "reason": "",
                                           "subproblems": ["  ", "part A?", "\n", "part B?"]})})
    result = await asolve(q, chat_model=model)
    assert [result.tree[c]["question"] for c in result.root["children"]] == ["part A?", "part B?"]


async def test_an_empty_merge_keeps_the_subanswers_instead_of_losing_them():
    q = "Both?"
    model = scripted(plans={q: decision("divide", subproblems=["A?", "B?"])},
                     answers=lambda step, user: "" if step == "merge" else "Answer: yes")
    result = await asolve(q, chat_model=model)
    assert result.answer == "yes; yes"
    assert result.usage.fallbacks == 1


async def test_a_ten_thousand_sub_problem_reply_still_ends_in_a_best_effort_answer():
    # The reply alone spends the whole token budget; the root's last call is kept anyway.
    q = "Compare everything."
    plans = {q: decision("divide", subproblems=[{"question": f"Part {i}?"} for i in range(10000)])}
    model = scripted(plans=plans)
    result = await asolve(q, chat_model=model, durable=False, max_calls=8)
    assert result.answer == "42" and result.best_effort and result.stop_reason == "budget"
    assert result.usage.calls <= 8 and len(result.tree) <= 1 + 6  # the fan-out limit held
