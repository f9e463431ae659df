"""Sub-problem reuse: answers in memory M are served without model calls (schedule's hook)."""

from __future__ import annotations

import pytest
from langgraph.store.memory import InMemoryStore

from lottery import asolve
from lottery.nodes.memory import answer_namespace, normalize_question, question_key
from tests.unit.scripted import decision, scripted, step_of

pytestmark = pytest.mark.usefixtures("planner_policy", "reuse_unchecked")
"""These tests script the model planner's decisions: runs follow the planner policy."""

FRANCE = "What is the population of France?"


def divide(*subs: str | tuple[str, list[int]]) -> str:
    items = [{"question": s} if isinstance(s, str) else {"question": s[0], "depends_on": s[1]}
             for s in subs]
    return decision("divide", subproblems=items)


PLANS = {
    "How many people live in France and Germany together?":
        divide(FRANCE, "What is the population of Germany?"),
    "How many people live in France and Italy together?":
        divide(FRANCE, "What is the population of Italy?"),
}


def asked(model) -> list[tuple[str, str]]:
    """(step, question) of every call the model answered."""
    out = []
    for call in model.calls:
        user = str(call["messages"][1].content)
        out.append((step_of(call["messages"]), user.rsplit("Question: ", 1)[-1].strip()))
    return out


async def test_second_run_sharing_a_subproblem_makes_fewer_model_calls_and_reports_the_saving():
    store = InMemoryStore()
    first = await asolve("How many people live in France and Germany together?",
                         chat_model=scripted(plans=PLANS), store=store)
    second_model = scripted(plans=PLANS)
    second = await asolve("How many people live in France and Italy together?",
                          chat_model=second_model, store=store)
    # France's plan + solve (2 calls) are not made again.
    assert second.usage.calls == first.usage.calls - 2
    assert second.usage.reuse_hits == 1 and second.usage.saved_calls == 2
    assert ("plan", "What is the population of Italy?") in asked(second_model)
    assert ("plan", FRANCE) not in asked(second_model)
    assert ("solve", FRANCE) not in asked(second_model)
    reused = second.tree["0.1"]
    assert reused["decision"] == "reuse" and reused["status"] == "done" and reused["calls"] == 0
    assert reused["reused_from"] == {"run_id": first.run_id, "problem_id": "0.1", "calls": 2}
    assert second.answer == "42"


async def test_no_reuse_setting_asks_the_model_again():
    store = InMemoryStore()
    first = await asolve("How many people live in France and Germany together?",
                         chat_model=scripted(plans=PLANS), store=store)
    again = await asolve("How many people live in France and Italy together?",
                         chat_model=scripted(plans=PLANS), store=store, reuse=False)
    assert again.usage.calls == first.usage.calls
    assert again.usage.reuse_hits == 0 and again.tree["0.1"]["decision"] == "solve"


async def test_expired_answers_are_solved_again():
    store = InMemoryStore()
    await asolve("How many people live in France and Germany together?",
                 chat_model=scripted(plans=PLANS), store=store)
    ns, key = answer_namespace("qwen2.5-coder-0.5b-instruct", "default"), question_key(FRANCE)
    item = await store.aget(ns, key)
    await store.aput(ns, key, {**item.value, "created_at": item.value["created_at"] - 3600})
    late = await asolve("How many people live in France and Italy together?",
                        chat_model=scripted(plans=PLANS), store=store, reuse_ttl_s=60)
    assert late.usage.reuse_hits == 0
    fresh_enough = await asolve("How many people live in France and Italy together?",
                                chat_model=scripted(plans=PLANS), store=store, reuse_ttl_s=7200)
    assert fresh_enough.usage.reuse_hits == 2  # France, and Italy from the run just before


async def _aged_store(age_s: float) -> InMemoryStore:
    """A store holding the France answer as if remembered ``age_s`` seconds ago."""
    store = InMemoryStore()
    await asolve("How many people live in France and Germany together?",
                 chat_model=scripted(plans=PLANS), store=store)
    ns, key = answer_namespace("qwen2.5-coder-0.5b-instruct", "default"), question_key(FRANCE)
    item = await store.aget(ns, key)
    await store.aput(ns, key, {**item.value, "created_at": item.value["created_at"] - age_s})
    return store


async def test_lottery_reuse_0_in_the_environment_turns_reuse_off(monkeypatch):
    store = await _aged_store(0)
    monkeypatch.setenv("LOTTERY_REUSE", "0")
    again = await asolve("How many people live in France and Italy together?",
                         chat_model=scripted(plans=PLANS), store=store)
    assert again.usage.reuse_hits == 0 and again.tree["0.1"]["decision"] != "reuse"


@pytest.mark.parametrize(("ttl", "hits"), [("0", 1), ("60", 0), ("", 1)])
async def test_lottery_reuse_ttl_s_from_the_environment_and_0_never_expires(
        monkeypatch, ttl, hits):
    store = await _aged_store(10 * 365 * 86400)  # remembered ten years ago
    if ttl:
        monkeypatch.setenv("LOTTERY_REUSE_TTL_S", ttl)
    late = await asolve("How many people live in France and Italy together?",
                        chat_model=scripted(plans=PLANS), store=store)
    assert late.usage.reuse_hits == hits


@pytest.mark.parametrize("setting", [{"model": "another-model"}, {"knowledge_base": "other-kb"}])
async def test_answers_of_another_model_or_knowledge_base_are_not_reused(setting):
    store = InMemoryStore()
    await asolve("How many people live in France and Germany together?",
                 chat_model=scripted(plans=PLANS), store=store)
    other = await asolve("How many people live in France and Italy together?",
                         chat_model=scripted(plans=PLANS), store=store, **setting)
    assert other.usage.reuse_hits == 0


async def test_questions_meet_after_normalisation_but_the_root_is_always_solved():
    assert normalize_question("  What is the population of FRANCE ?? ") == normalize_question(FRANCE)
    store = InMemoryStore()
    plans = {**PLANS, "Compare France and Spain.": divide("what is the  population of france",
                                                           "What is the population of Spain?")}
    await asolve("How many people live in France and Germany together?",
                 chat_model=scripted(plans=plans), store=store)
    model = scripted(plans=plans)
    result = await asolve("Compare France and Spain.", chat_model=model, store=store)
    assert result.tree["0.1"]["decision"] == "reuse"
    repeat = scripted(plans=plans)
    again = await asolve("Compare France and Spain.", chat_model=repeat, store=store)
    assert again.root["decision"] == "divide"  # the question itself is answered anew
    assert ("plan", "Compare France and Spain.") in asked(repeat)


async def test_a_reused_answer_feeds_the_subproblems_that_depend_on_it():
    store = InMemoryStore()
    await asolve("How many people live in France and Germany together?",
                 chat_model=scripted(plans=PLANS), store=store)
    plans = {"Double France.": divide(FRANCE, ("What is twice #1?", [1]))}
    model = scripted(plans=plans, answers={FRANCE: "68 million", "What is twice 42?": "84"})
    result = await asolve("Double France.", chat_model=model, store=store)
    assert result.tree["0.1"]["decision"] == "reuse"
    assert result.tree["0.2"]["question"] == "What is twice 42?"
    assert result.tree["0.2"]["answer"] == "84"


async def test_when_every_subproblem_is_reused_the_parent_merges_at_once():
    store = InMemoryStore()
    await asolve("How many people live in France and Germany together?",
                 chat_model=scripted(plans=PLANS), store=store)
    plans = {"Germany and France?": divide("What is the population of Germany?", FRANCE)}
    model = scripted(plans=plans)
    result = await asolve("Germany and France?", chat_model=model, store=store)
    assert [s for s, _ in asked(model)] == ["plan", "merge"]
    assert result.usage.reuse_hits == 2 and result.usage.saved_calls == 4
    assert result.root["status"] == "done"


async def test_a_reused_divided_problem_saves_its_whole_subtree():
    store = InMemoryStore()
    inner = "How many people live in France and Germany together?"
    plans = {**PLANS, "Outer?": divide(inner, "What is 1+1?")}
    await asolve(inner, chat_model=scripted(plans=plans), store=store)  # 6 calls: 1+2+2+1
    result = await asolve("Outer?", chat_model=scripted(plans=plans), store=store)
    assert result.tree["0.1"]["decision"] == "reuse"
    assert result.usage.saved_calls == 6
