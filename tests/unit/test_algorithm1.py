"""Algorithm 1 driven by a scripted model: each decision path, parallelism, limits, memory."""

from __future__ import annotations

import json

import pytest
from langgraph.store.memory import InMemoryStore

from lottery import asolve
from lottery.errors import ConfigurationError
from lottery.nodes import prompts
from lottery.nodes.memory import problem_namespace
from lottery.stores import Document, InMemoryKnowledgeBase
from lottery.testing import ScriptedChatModel
from tests.unit.scripted import decision, scripted, step_of

pytestmark = pytest.mark.usefixtures("planner_policy")
"""These tests script the model planner's decisions: runs follow the planner policy."""

Q = "What is the capital of the country where the Eiffel Tower stands?"


def planner_calls(model) -> int:
    return sum(1 for c in model.calls if step_of(c["messages"]) == "plan")


async def test_solves_directly_when_planner_says_solve():
    model = scripted(answers={Q: "Paris"})
    result = await asolve(Q, chat_model=model)
    assert result.answer == "Paris"
    assert result.root["decision"] == "solve"
    assert result.root["status"] == "done"
    assert result.usage.calls == 2
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert not result.best_effort


async def test_retrieves_then_solves_with_the_documents_as_evidence():
    kb = InMemoryKnowledgeBase("facts", [
        Document("eiffel", "The Eiffel Tower is a landmark in Paris, France."),
        Document("rome", "The Colosseum is in Rome."),
    ])
    model = scripted(
        plans={Q: decision("retrieve", query="Eiffel Tower location")},
        answers=lambda step, user: "Answer: Paris" if "Eiffel Tower is a landmark" in user else "Answer: ?",
    )
    result = await asolve(Q, chat_model=model, knowledge=kb)
    assert result.answer == "Paris"
    root = result.root
    assert root["decision"] == "retrieve" and root["query"] == "Eiffel Tower location"
    assert root["evidence"][0]["ref"] == "eiffel"
    assert root["evidence"][0]["source"] == "kb:facts"


async def test_uses_a_tool_then_solves_with_its_result():
    q = "What is 17 * 23 + 4?"
    model = scripted(
        plans={q: decision("tool", tool="calculator", tool_input={"expression": "17 * 23 + 4"})},
        # The solve prompt shows what the number is the result of, not a bare number.
        answers=lambda step, user: "Answer: " + (
            "395" if "(tool:calculator) 17 * 23 + 4 -> 395" in user else "?"),
    )
    result = await asolve(q, chat_model=model)
    assert result.answer == "395"
    call = result.root["tool_call"]
    assert call["name"] == "calculator" and call["result"]["ok"] and call["result"]["output"] == "395"


async def test_divides_into_three_parallel_subproblems_and_merges():
    subs = ["How tall is tower A?", "How tall is tower B?", "How tall is tower C?"]
    q = "Which of the towers A, B and C is tallest?"
    heights = {"How tall is tower A?": "100 m", "How tall is tower B?": "300 m",
               "How tall is tower C?": "200 m"}

    def answers(step, user):
        if step == "merge":
            assert all(h in user for h in heights.values())
            return "B is 300 m, the tallest.\nAnswer: B"
        return "Answer: " + next(h for s, h in heights.items() if s in user)

    model = scripted(plans={q: decision("divide", subproblems=[{"question": s} for s in subs])},
                     answers=answers, delay_s=0.2)
    result = await asolve(q, chat_model=model)
    assert result.answer == "B"
    assert result.root["children"] == ["0.1", "0.2", "0.3"]
    assert [result.tree[c]["answer"] for c in result.root["children"]] == ["100 m", "300 m", "200 m"]
    assert model.max_concurrency >= 3, "independent sub-problems must run in parallel"


async def test_dependent_subproblem_receives_its_predecessors_answer():
    q = "How old will the president of France be in 2030?"
    subs = [{"question": "Who is the president of France?"},
            {"question": "In which year was #1 born?", "depends_on": [1]},
            {"question": "What is 2030 minus #2?", "depends_on": [2]}]
    answers = {"Who is the president of France?": "Emmanuel Macron",
               "In which year was Emmanuel Macron born?": "1977",
               "What is 2030 minus 1977?": "53"}

    def respond_answers(step, user):
        if step == "merge":
            return "Answer: 53"
        q_line = [ln for ln in user.splitlines() if ln.startswith("Question: ")][-1][10:]
        return "Answer: " + answers.get(q_line, "unknown")

    model = scripted(plans={q: decision("divide", subproblems=subs)}, answers=respond_answers)
    result = await asolve(q, chat_model=model)
    tree = result.tree
    assert tree["0.2"]["depends_on"] == ["0.1"]
    assert tree["0.2"]["question"] == "In which year was Emmanuel Macron born?"
    assert tree["0.2"]["template"] == "In which year was #1 born?"
    assert tree["0.3"]["question"] == "What is 2030 minus 1977?"
    assert tree["0.3"]["answer"] == "53"
    assert result.answer == "53"


async def test_max_depth_forces_a_direct_solve_at_the_limit():
    q = "Compare two things."

    def plans(question):
        return decision("divide", subproblems=[{"question": f"{question} part {i}"} for i in (1, 2)])

    model = scripted(plans=plans)
    result = await asolve(q, chat_model=model, max_depth=1)
    assert planner_calls(model) == 1, "sub-problems at the depth limit are solved without planning"
    for cid in result.root["children"]:
        child = result.tree[cid]
        assert child["depth"] == 1 and child["decision"] == "solve" and child["children"] == []
        assert "depth limit" in child["reason"]
    direct = await asolve(q, chat_model=scripted(plans=plans), max_depth=0)
    assert direct.usage.calls == 1 and direct.root["decision"] == "solve"


async def test_budget_exhaustion_ends_with_a_marked_best_effort_answer():
    def plans(question):  # a model that always divides
        return decision("divide", subproblems=[{"question": f"{question}/{i}"} for i in (1, 2, 3)])

    model = scripted(plans=plans)
    result = await asolve("Explain everything.", chat_model=model, max_depth=3, max_calls=5)
    assert result.usage.calls <= 5
    assert len(model.calls) == result.usage.calls
    assert result.best_effort and result.stop_reason == "budget"
    assert result.answer  # still an answer: the root answered from what was known


async def test_token_budget_is_respected_too():
    def plans(question):
        return decision("divide", subproblems=[{"question": f"{question}/{i}"} for i in (1, 2)])

    result = await asolve("Explain everything.", chat_model=scripted(plans=plans),
                          max_depth=4, max_tokens=1500, max_completion_tokens=100)
    assert result.best_effort and result.answer
    per_call = result.usage.total_tokens / result.usage.calls
    assert result.usage.total_tokens <= 1500 + per_call, "at most one call's worth over the budget"


async def test_malformed_planner_output_is_repaired_once():
    q = "What is 2 + 2?"
    replies = iter(["I think we should maybe solve it?", decision("solve")])
    model = scripted(plans=lambda question: next(replies), answers={q: "4"})
    result = await asolve(q, chat_model=model)
    assert result.answer == "4"
    assert result.usage.repairs == 1 and result.usage.fallbacks == 0
    assert result.root["decision"] == "solve" and result.root["reason"] == "scripted solve"


async def test_unrepairable_planner_output_falls_back_to_solving_directly():
    model = scripted(plans=lambda question: "{{{ not json", answers={"Hi?": "Hello"})
    result = await asolve("Hi?", chat_model=model)
    assert result.answer == "Hello"
    assert result.usage.fallbacks == 1
    assert "unusable" in result.root["reason"]


@pytest.mark.parametrize("junk", [
    '{"action": "fly"}',
    '{"action": "divide", "subproblems": []}',
    '{"action": "tool", "tool": "no_such_tool"}',
    '```json\n{"action": "divide", "subproblems": ["only one"]}\n```',
    "[1, 2, 3]",
    "",
])
async def test_no_malformed_decision_crashes_a_run(junk):
    model = scripted(plans=lambda question: junk)
    result = await asolve("Anything?", chat_model=model)
    assert result.answer == "42"
    assert result.root["decision"] == "solve"


async def test_every_intermediate_result_is_in_memory():
    q = "Sum the populations of A and B."
    model = scripted(plans={q: decision("divide", subproblems=[
        {"question": "Population of A?"}, {"question": "Population of B?"}])})
    store = InMemoryStore()
    result = await asolve(q, chat_model=model, store=store)
    items = {item.key: item.value for item in await store.asearch(problem_namespace(result.run_id))}
    assert set(items) == set(result.tree) == {"0", "0.1", "0.2"}
    for pid, value in items.items():
        assert value["answer"] == result.tree[pid]["answer"]
        assert value["question"] == result.tree[pid]["question"]
    assert items["0"]["children"] == ["0.1", "0.2"]


async def test_planner_json_schema_is_requested_from_the_server():
    model = scripted()
    await asolve("Hi?", chat_model=model)
    plan_call = next(c for c in model.calls if step_of(c["messages"]) == "plan")
    fmt = plan_call["kwargs"]["extra_body"]["response_format"]
    assert fmt["type"] == "json_schema"
    assert "divide" in json.dumps(fmt["json_schema"]["schema"])


@pytest.mark.parametrize("strategy", ["direct", "cot"])
async def test_baselines_answer_with_one_call_and_the_same_output_shape(strategy):
    model = scripted(answers=lambda step, user: "Let me think.\nAnswer: 7")
    result = await asolve("What is 3 + 4?", chat_model=model, strategy=strategy)
    assert result.answer == "7"
    assert result.usage.calls == 1
    assert result.root["status"] == "done" and result.strategy == strategy


async def test_the_program_baseline_answers_with_what_the_executed_program_printed():
    # the program prints 6 * 7 while its text claims 41: the executed output is the answer
    code = "```python\nprint(6 * 7)  # Answer: 41\n```"
    model = scripted(answers=lambda step, user: code if step == "program" else "Answer: 41")
    result = await asolve("What is 6 * 7?", chat_model=model, strategy="pal", durable=False)
    assert result.answer == "42"
    assert [step_of(c) for c in model.calls] == ["program"]
    assert result.usage.calls == 1 and result.root["status"] == "done"


async def test_the_program_baseline_sends_a_failing_program_back_once():
    replies = iter(["```python\nprint(1 / 0)\n```", "```python\nprint(7)\n```"])
    model = scripted(answers=lambda step, user: next(replies))
    result = await asolve("What is 3 + 4?", chat_model=model, strategy="pal", durable=False)
    assert result.answer == "7"
    fix = model.calls[1]["messages"][-1].content
    assert "ZeroDivisionError" in fix, fix
    assert result.usage.calls == 2


async def test_model_text_that_is_not_valid_unicode_is_stored_not_crashed_on():
    model = scripted(answers=lambda step, user: "Answer: \ud800 caf\udce9")
    result = await asolve("Say something odd?", chat_model=model)  # durable: stored in SQLite
    assert result.answer == "? caf?"


async def test_solve_samples_answers_with_what_most_replies_agree_on():
    replies = iter(["Answer: 41", "Answer: $42.00", "Answer: 42", "Answer: 7", "Answer: 42"])
    model = scripted(answers=lambda step, user: next(replies))
    result = await asolve("What is 6 * 7?", chat_model=model, solve_samples=5, durable=False)
    assert result.answer in {"$42.00", "42"}, "42 by value: three of five replies"
    solves = [c for c in model.calls if step_of(c["messages"]) == "solve"]
    assert sorted(c["kwargs"].get("n", 1) for c in solves) == [1, 4], "greedy + 4 in one request"
    assert result.usage.calls == 3, "planner + the two solve requests"


async def test_solve_samples_tie_goes_to_the_greedy_reply():
    replies = iter(["Answer: 5", "Answer: 9"])
    model = scripted(answers=lambda step, user: next(replies))
    result = await asolve("Which?", chat_model=model, solve_samples=2, durable=False)
    greedy = next(c for c in model.calls
                  if step_of(c["messages"]) == "solve" and "n" not in c["kwargs"])
    assert result.answer == greedy["reply"].removeprefix("Answer: ")


async def test_solve_samples_must_be_positive():
    with pytest.raises(ConfigurationError, match="solve_samples must be positive"):
        await asolve("Which?", chat_model=scripted(), solve_samples=0, durable=False)


async def test_solve_check_runs_programs_and_keeps_the_answer_they_confirm():
    """The reasoning's majority (41) loses to the one reasoned answer a program confirms."""
    replies = iter(["Answer: 41", "Answer: 41", "Answer: So he pays $42 in all."])
    solve = scripted(answers=lambda step, user: next(replies)).respond

    def model_reply(messages):
        if str(messages[0].content) == prompts.PAL_SYSTEM:
            return "```python\nprint(6 * 7)\n```"
        return solve(messages)

    model = ScriptedChatModel(respond=model_reply)
    result = await asolve("What is 6 * 7?", chat_model=model, solve_samples=3,
                          solve_check="python", program_samples=2, durable=False)
    assert result.answer == "42"
    check = result.root["check"]
    assert check["answers"] == ["41", "41", "So he pays $42 in all."]
    assert check["programs"] == ["42", "42"] and check["support"] == {"words": 1, "programs": 2}
    assert result.root["evidence"][-1]["source"] == "tool:python"
    assert result.usage.calls == 5, "planner + greedy and sampled answers + greedy and sampled programs"


async def test_solve_check_must_name_a_program_tool():
    with pytest.raises(ConfigurationError, match="solve_check must be python, logic or empty"):
        await asolve("Which?", chat_model=scripted(), solve_check="calculator", durable=False)
