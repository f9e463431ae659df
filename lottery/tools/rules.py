"""The ``rules`` tool: decide a statement from facts and if-then rules (forward chaining).

The solver of the ``deduction`` policy (Logic-LM's symbolic step): the model writes each
sentence of a problem down as a clause (:mod:`lottery.nodes.formalize`), this tool decides.
Open world with explicit negation, as in ProofWriter: the statement is ``True`` when the
clauses derive it, ``False`` when they derive its negation, ``Unknown`` otherwise. A rule
has one variable (``someone``, ``something``, ``they``, ``it`` ... in any position), bound to
every thing the theory names. Words are compared the way English varies them: case, a
leading "the", a plural or third-person "s" ("sees" and "see", "the Cat" and "cat").

Pure data in, a word out: nothing the model wrote runs, so no sandbox is needed.
"""

from __future__ import annotations

import re
from typing import Literal

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, Field

Decision = Literal["True", "False", "Unknown"]

VARIABLE_WORDS = frozenset({"someone", "something", "somebody", "they", "them", "it",
                            "people", "things", "thing", "everyone", "everything"})
"""Words that stand for the rule's variable (any thing the theory names)."""

MAX_ROUNDS = 1_000
"""Forward chaining stops after this many rounds (a fixpoint comes far sooner)."""

Atom = tuple[bool, str, str, str]
"""A ground or open statement: (holds, verb, subject, object); ``?x`` is the variable."""


class Statement(BaseModel):
    """One statement: subject, verb, object, and whether it is negated ("Bob is not big")."""

    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=60)
    verb: str = Field(min_length=1, max_length=30)
    object: str = Field(min_length=1, max_length=60)
    negated: bool = False


class Clause(BaseModel):
    """A fact (no conditions) or a rule: ``then`` holds when every condition in ``if`` does."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    conditions: list[Statement] = Field(default_factory=list, alias="if", max_length=8)
    then: Statement


class RulesArgs(BaseModel):
    """Arguments of the ``rules`` tool: the theory and the statement to decide."""

    model_config = ConfigDict(extra="forbid")
    clauses: list[Clause] = Field(max_length=200)
    query: Statement


def word(text: str) -> str:
    """A word as the solver compares it: lower case, no leading article, no plural ``s``;
    ``?x`` for the variable words."""
    w = re.sub(r"^(?:the|a|an)\s+", "", " ".join(text.lower().split()))
    if w in VARIABLE_WORDS:
        return "?x"
    if w.endswith("es") and w[:-2].endswith(("ch", "sh", "ss", "x")):
        return w[:-2]
    return w[:-1] if w.endswith("s") and not w.endswith("ss") and len(w) > 3 else w


def atom(s: Statement) -> Atom:
    verb = word(s.verb)
    return (not s.negated, "is" if verb in ("are", "am", "be") else verb, word(s.subject),
            word(s.object))


def _ground(a: Atom, value: str) -> Atom:
    return (a[0], a[1], *(value if x == "?x" else x for x in a[2:]))  # type: ignore[return-value]


def derive(args: RulesArgs) -> set[Atom]:
    """Everything the clauses entail: the facts, closed under the rules."""
    facts = {atom(c.then) for c in args.clauses if not c.conditions}
    rules = [(atom(c.then), [atom(x) for x in c.conditions]) for c in args.clauses if c.conditions]
    things = sorted({x for a in facts for x in a[2:]}
                    | {x for head, body in rules for a in (head, *body) for x in a[2:]}
                    - {"?x"})
    known = {a for a in facts if "?x" not in a[2:]}
    for _ in range(MAX_ROUNDS):
        new = {_ground(head, t) for head, body in rules for t in things
               if all(_ground(b, t) in known for b in body)} - known
        if not new:
            break
        known |= new
    return known


def decide(args: RulesArgs) -> Decision:
    """``True`` when the clauses derive the query, ``False`` when they derive its negation,
    ``Unknown`` otherwise."""
    known = derive(args)
    query = atom(args.query)
    if query in known:
        return "True"
    return "False" if (not query[0], *query[1:]) in known else "Unknown"


def make_rules_tool() -> BaseTool:
    """The ``rules`` tool."""

    def rules(clauses: list[Clause], query: Statement) -> str:
        return decide(RulesArgs(clauses=clauses, query=query))

    return StructuredTool.from_function(
        func=rules, name="rules", args_schema=RulesArgs,
        description=("Decide whether a statement is True, False or Unknown from facts and "
                     "if-then rules (forward chaining, open world)."),
    )
