"""The ``deduction`` policy: clauses written sentence by sentence, the ``rules`` tool decides.

The solver is exact and runs as is; the model is scripted per sentence, so a test decides
which clause each sentence becomes (a right one, a broken one, none).
"""

from __future__ import annotations

import json

import pytest

from lottery import asolve
from lottery.errors import ToolArgumentsError
from lottery.nodes.formalize import clause_schema, deduction, things
from lottery.nodes.policy import classify, score
from lottery.testing import ScriptedChatModel
from lottery.tools import default_registry
from lottery.tools.rules import RulesArgs, decide


def st(subject: str, verb: str, obj: str, negated: bool = False) -> dict[str, object]:
    return {"subject": subject, "verb": verb, "object": obj, "negated": negated}


def theory(*clauses: dict[str, object], query: dict[str, object]) -> RulesArgs:
    return RulesArgs.model_validate({"clauses": list(clauses), "query": query})


FACT_BIG = {"if": [], "then": st("Bob", "is", "big")}
BIG_RED = {"if": [st("someone", "is", "big")], "then": st("someone", "is", "red")}
RED_SEES_CAT = {"if": [st("something", "is", "red")], "then": st("it", "sees", "the cat")}


# -- the solver ------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    (st("bob", "see", "cats"), "True"),      # two rules chained; case, "the", plural s
    (st("Bob", "is", "red", True), "False"),  # its negation is derived
    (st("Bob", "is", "blue"), "Unknown"),    # neither: open world
])
def test_the_solver_chains_rules_over_the_named_things(query, expected):
    assert decide(theory(FACT_BIG, BIG_RED, RED_SEES_CAT, query=query)) == expected


def test_a_negated_condition_needs_a_stated_negation_open_world():
    rule = {"if": [st("someone", "is", "big"), st("someone", "is", "kind", True)],
            "then": st("someone", "is", "rough")}
    assert decide(theory(FACT_BIG, rule, query=st("Bob", "is", "rough"))) == "Unknown"
    not_kind = {"if": [], "then": st("Bob", "is", "kind", True)}
    assert decide(theory(FACT_BIG, not_kind, rule, query=st("Bob", "is", "rough"))) == "True"
    negative_head = {"if": [st("someone", "is", "big")], "then": st("they", "are", "cold", True)}
    assert decide(theory(FACT_BIG, negative_head, query=st("Bob", "is", "cold"))) == "False"


def test_the_rules_tool_rejects_a_malformed_theory_in_one_line():
    registry = default_registry()
    with pytest.raises(ToolArgumentsError) as error:
        registry.validate("rules", {"clauses": [{"then": {"subject": "Bob"}}], "query": {}})
    assert "\n" not in str(error.value).strip()


async def test_the_rules_tool_runs_from_the_registry():
    registry = default_registry()
    args = theory(FACT_BIG, BIG_RED, query=st("Bob", "is", "red")).model_dump(by_alias=True)
    result = await registry.arun("rules", args)
    assert result.ok and result.output == "True"


# -- reading the question --------------------------------------------------------------------

QUESTION = (
    "Bob is big. Rough people are cold. If someone is big then they are rough. "
    "The bald eagle is not big.\n\nQuestion: Based on the above information, is the "
    "following statement true, false, or unknown? Bob is cold.\nOptions:\nA) True\nB) False\n"
    "C) Unknown\nReply with the letter of the correct option.")
CLAUSES = {
    "Bob is big.": FACT_BIG,
    "Rough people are cold.": {"if": [st("someone", "is", "rough")],
                               "then": st("someone", "is", "cold")},
    "If someone is big then they are rough.": {"if": [st("someone", "is", "big")],
                                               "then": st("someone", "is", "rough")},
    "The bald eagle is not big.": {"if": [], "then": st("bald eagle", "is", "big", True)},
    "Bob is cold.": {"if": [], "then": st("Bob", "is", "cold")},
}


def test_a_true_false_unknown_question_splits_into_theory_statement_and_letters():
    problem = deduction(QUESTION)
    assert problem is not None and problem.sentences == tuple(list(CLAUSES)[:-1])
    assert problem.statement == "Bob is cold."
    assert problem.answer("True") == "A" and problem.answer("Unknown") == "C"
    assert classify(QUESTION, has_knowledge=False) == "deduction"
    plain = deduction("Bob is big. All big things are red. Is it true, false, or unknown? Bob is red.")
    assert plain is not None and plain.sentences == ("Bob is big.", "All big things are red.")
    assert plain.answer("True") == "True"  # no options: the word itself
    assert deduction("Is the statement true, false, or unknown? Bob is big.") is None
    assert deduction("Which book is leftmost? Options: A) red B) blue") is None


def test_things_are_names_and_the_nouns_and_not_a_capitalised_adjective():
    assert things(" ".join(CLAUSES)) == ["Bob", "bald eagle"]


def test_a_sentence_schema_offers_only_its_own_words_and_its_own_shape():
    named = things(" ".join(CLAUSES))
    fact = clause_schema("Bob is big.", named)["properties"]
    assert fact["if"]["maxItems"] == 0  # a fact has no conditions
    then = fact["then"]["properties"]
    assert then["subject"]["enum"] == ["Bob"] and then["negated"] == {"enum": [False]}
    assert set(then["object"]["enum"]) == {"Bob", "big"}
    rule = clause_schema("Rough people are cold.", named)["properties"]
    assert rule["if"]["minItems"] == 1 and rule["if"]["maxItems"] == 1
    assert rule["then"]["properties"]["subject"]["enum"] == ["someone"]
    negated = clause_schema("The bald eagle is not big.", named)["properties"]["then"]
    assert negated["properties"]["negated"] == {"type": "boolean"}
    assert negated["properties"]["subject"]["enum"] == ["bald eagle"]


# -- the policy, end to end on the scripted model --------------------------------------------

def clause_model(clauses: dict[str, object]) -> ScriptedChatModel:
    """Each ``formalize`` call gets the clause scripted for its sentence; a chain of thought
    answers B."""
    def respond(messages, step) -> str:
        if step == "formalize":
            sentence = str(messages[-1].content)
            clause = clauses[sentence]
            return clause if isinstance(clause, str) else json.dumps(clause)
        return "Let me think.\nAnswer: B"

    return ScriptedChatModel(respond=respond)


async def test_the_solver_decides_with_one_call_per_sentence_and_no_chain_of_thought():
    m = clause_model(CLAUSES)
    result = await asolve(QUESTION, chat_model=m, durable=False)
    assert result.answer == "A" and result.confidence == 0.9 and not result.best_effort
    assert [c["step"] for c in m.calls] == ["formalize"] * len(CLAUSES)
    assert result.usage.calls == len(CLAUSES)
    schemas = [c["kwargs"]["extra_body"]["response_format"]["json_schema"]["schema"]
               for c in m.calls]
    assert all(s["properties"]["then"]["properties"]["subject"]["enum"] for s in schemas)
    shown = [e for p in result.tree.values() for e in p["evidence"] if e["source"] == "tool:rules"]
    assert shown and shown[0]["content"].splitlines() == [
        "True: Bob is cold", "Bob is big", "someone is rough -> someone is cold",
        "someone is big -> someone is rough", "NOT bald eagle is big"]


async def test_an_unknown_is_answered_less_sure_than_a_proof():
    clauses = {**CLAUSES, "Bob is cold.": {"if": [], "then": st("Bob", "is", "cold", True)},
               "If someone is big then they are rough.": {"if": [], "then": st("Bob", "is", "big")}}
    result = await asolve(QUESTION, chat_model=clause_model(clauses), durable=False)
    assert result.answer == "C" and result.confidence == 0.7


async def test_a_clause_that_does_not_parse_falls_back_to_the_chain_of_thought():
    m = clause_model({**CLAUSES, "Rough people are cold.": "not json"})
    result = await asolve(QUESTION, chat_model=m, durable=False)
    assert result.answer == "B"  # the chain of thought's
    assert "solve" in [c["step"] for c in m.calls]


async def test_a_budget_smaller_than_the_theory_skips_the_solver_and_is_kept():
    m = clause_model(CLAUSES)
    result = await asolve(QUESTION, chat_model=m, durable=False, max_calls=3)
    assert "formalize" not in [c["step"] for c in m.calls]
    assert result.usage.calls <= 3


def test_the_solver_decision_is_the_answer_unless_a_delegate_answered():
    proof = [{"kind": "proof", "answer": "A"}]
    verdict = score([{"kind": "words", "answer": "B"}, *proof], "letter", checked=True)
    assert verdict.answer == "A" and verdict.confidence == 0.9 and verdict.support == 1.0
    delegated = score([*proof, {"kind": "delegate", "answer": "C"}], "letter", checked=True)
    assert delegated.answer == "C"


# -- ordering puzzles: the order tool ----------------------------------------------------------

from lottery.nodes.formalize import ends_allowed, ordering  # noqa: E402
from lottery.tools.order import OrderArgs, must_hold  # noqa: E402
from lottery.tools.order import decide as decide_order  # noqa: E402

SHELF = ["green book", "blue book", "white book"]


def placed(kind: str, obj: str, other: str = "", place: int = 0) -> dict[str, object]:
    return {"kind": kind, "object": obj, "other": other, "place": place}


def test_the_order_tool_answers_the_option_that_holds_in_every_allowed_order():
    options = {"A": placed("place", "green book", place=1), "B": placed("place", "blue book", place=1),
               "C": placed("place", "white book", place=1)}
    args = OrderArgs.model_validate({"objects": SHELF, "options": options, "statements": [
        placed("before", "white book", "green book"), placed("after", "blue book", "white book"),
        placed("place", "green book", place=3)]})
    assert must_hold(args) == (["C"], 1) and decide_order(args) == "C"
    loose = args.model_copy(update={"statements": args.statements[:1]})
    assert must_hold(loose) == ([], 3) and decide_order(loose) == "none"  # three orders left
    clash = args.model_copy(update={"statements": [*args.statements, args.options["A"]]})
    assert must_hold(clash) == ([], 0) and decide_order(clash) == "none"  # a contradiction


async def test_the_order_tool_refuses_an_object_it_was_not_given():
    result = await default_registry().arun("order", {
        "objects": SHELF, "statements": [placed("before", "red book", "blue book")],
        "options": {"A": placed("place", "blue book", place=1)}})
    assert not result.ok and "unknown object: 'red book'" in result.error


PUZZLE = (
    "On a shelf, there are three books: a green book, a blue book, and a white book. The "
    "white book is to the left of the green book. The blue book is the rightmost.\n\n"
    "Question: Which of the following is true?\nOptions:\nA) The green book is the leftmost.\n"
    "B) The blue book is the leftmost.\nC) The white book is the leftmost.\n"
    "Reply with the letter of the correct option.")


def test_an_ordering_puzzle_is_split_into_objects_statements_and_end_words():
    puzzle = ordering(PUZZLE)
    assert puzzle is not None and puzzle.objects == tuple(SHELF)
    assert puzzle.statements == ("The white book is to the left of the green book.",
                                 "The blue book is the rightmost.")
    assert set(puzzle.words) == {"left", "leftmost", "rightmost"}
    assert classify(PUZZLE, has_knowledge=False) == "ordering"
    assert ordering(QUESTION) is None


@pytest.mark.parametrize(("first", "last", "sentence", "allowed"), [
    ("oldest", "newest", "The sedan is newer than the bus.", ["newest"]),
    ("left", "right", "The owl is the rightmost.", ["right"]),
    ("cheapest", "expensive", "The plums are less expensive than the kiwis.", ["cheapest", "expensive"]),
    ("first", "last", "Ana finished above Eli.", ["first", "last"]),
])
def test_a_statement_that_names_one_end_may_only_point_to_it(first, last, sentence, allowed):
    assert ends_allowed(first, last, sentence) == allowed


def order_model(ends: dict[str, str], answers: dict[str, dict[str, object]]) -> ScriptedChatModel:
    def respond(messages, step) -> str:
        if step != "formalize":
            return "Let me think.\nAnswer: A"
        user = str(messages[-1].content)
        if not user.startswith("Ends:"):
            return json.dumps(ends)
        return json.dumps(answers[user.split("Sentence: ", 1)[1]])

    return ScriptedChatModel(respond=respond)


ORDER_ANSWERS = {
    "The white book is to the left of the green book.": {"nearer": "left"},
    "The blue book is the rightmost.": {"place": 1, "from": "rightmost"},
    "The green book is the leftmost.": {"place": 1, "from": "left"},
    "The blue book is the leftmost.": {"place": 1, "from": "left"},
    "The white book is the leftmost.": {"place": 1, "from": "left"},
}


async def test_the_order_solver_answers_a_puzzle_with_one_call_per_statement_and_option():
    m = order_model({"first": "left", "last": "rightmost"}, ORDER_ANSWERS)
    result = await asolve(PUZZLE, chat_model=m, durable=False)
    assert result.answer == "C" and result.confidence == 0.9
    assert [c["step"] for c in m.calls] == ["formalize"] * 6  # ends, 2 statements, 3 options
    forced = m.calls[2]["kwargs"]["extra_body"]["response_format"]["json_schema"]["schema"]
    assert forced["properties"]["from"] == {"enum": ["rightmost"]}  # the sentence names it


async def test_a_puzzle_without_two_ends_goes_to_the_chain_of_thought():
    m = order_model({"first": "left", "last": "left"}, ORDER_ANSWERS)
    result = await asolve(PUZZLE, chat_model=m, durable=False)
    assert [c["step"] for c in m.calls] == ["formalize", "solve"] and result.answer == "A"


# -- arithmetic: the calculator, no model call ---------------------------------------------

from lottery.nodes.formalize import expression  # noqa: E402


@pytest.mark.parametrize(("question", "expected"), [
    ("What is 17 * 23 + 4?", "17 * 23 + 4"), ("Calculate (48 - 12) / 4", "(48 - 12) / 4"),
    ("2^10 =", "2^10"), ("What is 1999?", None), ("What is 2 + 2 apples?", None),
    ("Tom has 3 apples and buys 4 more. What is 3 + 4?", None)])
def test_only_a_question_that_is_nothing_but_arithmetic_is_an_expression(question, expected):
    assert expression(question) == expected


async def test_a_bare_arithmetic_question_is_computed_exactly_without_the_model():
    # the 0.5B's chain of thought wrote 401, 405 and 455 for this one (6 Dec 2026)
    m = ScriptedChatModel(respond=lambda messages, step: "Answer: 401")
    result = await asolve("What is 17 * 23 + 4?", chat_model=m, durable=False)
    assert result.answer == "395" and result.confidence == 1.0 and not result.best_effort
    assert m.calls == [] and result.usage.calls == 0
    shown = [e["content"] for p in result.tree.values() for e in p["evidence"]]
    assert "17 * 23 + 4 = 395" in shown


async def test_a_word_problem_with_the_same_numbers_still_goes_to_the_model():
    m = ScriptedChatModel(respond=lambda messages, step: "Answer: 395")
    await asolve("Ann has 17 boxes of 23 pens and 4 more pens. How many pens does she have?",
                 chat_model=m, durable=False)
    assert m.calls
