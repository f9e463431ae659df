"""formalize: the model writes a problem down for a solver, one sentence at a time.

Logic-LM's first step (translate, then let a solver decide), made small enough for a 0.5B
model. Asked for a whole theory at once, the 0.5B wrote no parsable clause for 12 of 12
ProofWriter problems; asked for one JSON clause per sentence with free words, its clauses
did not chain (5 of 12 right). Here each sentence gets its own JSON schema, narrowed by the
sentence's surface, so the model only chooses among the sentence's own words:

- every subject, verb and object is a word (or a "the ..." noun) of that sentence, and
  ``someone`` only where the sentence speaks of someone, something, they or things;
- a sentence without "not", "no", "never" or "n't" cannot be negated;
- a sentence that opens with "If" or speaks of things in general is a rule with at least one
  condition (at most one per "and" or comma, plus one), any other is a fact.

The clauses of one problem then share their words, and the ``rules`` tool
(:mod:`lottery.tools.rules`) chains them. One call per sentence and one for the statement;
the calls run together, and a problem needs as many calls as it has sentences plus one.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import ValidationError

from lottery.core.state import add_usage
from lottery.nodes import prompts
from lottery.nodes.llm import Reply, complete, extract_json_object
from lottery.resources import Resources
from lottery.tools.rules import Clause, Decision, RulesArgs, Statement

_TRUTH_QUESTION = re.compile(r"\btrue,? (?:or )?false,? or unknown\b[^?\n]*\?\s*(?P<statement>[^\n]+)",
                             re.I)
_OPTION = re.compile(r"^\(?(?P<letter>[A-H])[).]\s*(?P<text>True|False|Unknown)\.?\s*$",
                     re.I | re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z]+")
_NEGATION = re.compile(r"\b(?:not|no|never)\b|n't\b", re.I)
_GENERAL = re.compile(r"^\s*if\b|\b(?:things?|people|someone|something|somebody|everyone|"
                      r"everything|all)\b", re.I)
_VARIABLE = re.compile(r"\b(?:things?|people|someone|something|somebody|everyone|everything|"
                       r"they|them|it)\b", re.I)
_FUNCTION_WORDS = frozenset({
    "the", "a", "an", "if", "then", "and", "or", "is", "are", "am", "be", "not", "no", "never",
    "does", "do", "did", "it", "they", "them", "all", "things", "thing", "people", "someone",
    "something", "somebody", "everyone", "everything", "that", "of", "to", "also"})
VARIABLE = "someone"
"""The value a clause uses for the rule's variable (the solver reads it as one)."""
MAX_CONDITIONS = 4


@dataclass(frozen=True, slots=True)
class Deduction:
    """A true/false/unknown question split for the solver."""

    sentences: tuple[str, ...]
    """The theory, one sentence each."""
    statement: str
    """The statement to decide."""
    letters: dict[str, str]
    """The option letter of each decision (``{"True": "A", ...}``); empty without options."""

    def answer(self, decision: Decision) -> str:
        """The answer as the question asks for it: the option's letter, else the word."""
        return self.letters.get(decision, decision)


def deduction(question: str) -> Deduction | None:
    """The theory and the statement of a "true, false, or unknown?" question; ``None`` for
    any other question."""
    m = _TRUTH_QUESTION.search(question)
    if not m:
        return None
    statement = m.group("statement").strip()
    head = question[: m.start()]
    theory = re.split(r"\n\s*Question:\s*", head, flags=re.I)[0]
    if "\n\n" not in head and "Question:" not in head:  # the question's own sentence opens it
        theory = _SENTENCE_END.split(head.strip())
        theory = " ".join(theory[:-1]) if len(theory) > 1 else ""
    sentences = tuple(s.strip() for s in _SENTENCE_END.split(theory.strip()) if _WORD.search(s))
    if not sentences or not _WORD.search(statement):
        return None
    letters = {t.capitalize(): letter.upper() for letter, t in
               ((o.group("letter"), o.group("text")) for o in _OPTION.finditer(question))}
    return Deduction(sentences=sentences, statement=statement, letters=letters)


def things(text: str) -> list[str]:
    """The things a problem names: capitalised names ("Bob", not a capitalised word that also
    comes in lower case) and "the ..." nouns, two words long ("bald eagle") when the first
    word never comes without the second."""
    lower = text.lower()
    lowercase = set(_WORD.findall(text)) - {w for w in _WORD.findall(text) if w[0].isupper()}
    names = [w for w in dict.fromkeys(_WORD.findall(text))  # "Rough people ..." is no name
             if w[0].isupper() and w.lower() not in _FUNCTION_WORDS and w.lower() not in lowercase]
    nouns: list[str] = []
    for first, second in re.findall(r"\bthe ([a-z]+)(?: ([a-z]+))?", lower):
        pair = f"{first} {second}" if second else ""
        if pair and len(re.findall(rf"\b{first}\b", lower)) == len(re.findall(rf"\b{pair}\b", lower)):
            nouns.append(pair)
        else:
            nouns.append(first)
    return list(dict.fromkeys([*names, *(n for n in nouns if n not in _FUNCTION_WORDS)]))


def clause_schema(sentence: str, named: list[str]) -> dict[str, Any]:
    """The JSON schema of one sentence's clause: its own words only (see the module doc)."""
    low = sentence.lower()
    words = set(_WORD.findall(low))
    here = [t for t in named if re.search(rf"\b{re.escape(t.lower())}\b", low)]
    lowered = {t.lower() for t in here}
    general = bool(_GENERAL.search(sentence))
    variable = [VARIABLE] if _VARIABLE.search(sentence) else []
    content = sorted(w for w in words if w not in _FUNCTION_WORDS)
    statement = {
        "type": "object", "additionalProperties": False,
        "required": ["subject", "verb", "object", "negated"],
        "properties": {
            "subject": {"enum": [*variable, *here] or [VARIABLE]},
            "verb": {"enum": ["is", *(w for w in content if w not in lowered)]},
            "object": {"enum": list(dict.fromkeys(
                [*here, *(w for w in content if w not in lowered), *variable])) or [VARIABLE]},
            "negated": {"type": "boolean"} if _NEGATION.search(sentence) else {"enum": [False]},
        },
    }
    most = min(1 + low.count(" and ") + low.count(","), MAX_CONDITIONS) if general else 0
    return {"type": "object", "additionalProperties": False, "required": ["if", "then"],
            "properties": {"if": {"type": "array", "items": statement,
                                  "minItems": 1 if general else 0, "maxItems": most},
                           "then": statement}}


def clause_messages(sentence: str) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage(prompts.CLAUSE_SYSTEM)]
    for text, clause in prompts.CLAUSE_EXAMPLES:
        messages += [HumanMessage(text), AIMessage(json.dumps(clause))]
    return [*messages, HumanMessage(sentence)]


async def formalize(res: Resources, problem: Deduction, reply: Reply) -> RulesArgs | None:
    """The problem as the ``rules`` tool's arguments, one constrained call per sentence and
    one for the statement; ``None`` when a clause does not parse or the statement is a rule."""
    named = things(" ".join([*problem.sentences, problem.statement]))
    texts = [*problem.sentences, problem.statement]
    replies = [Reply() for _ in texts]
    await asyncio.gather(*(
        complete(res, clause_messages(t), json_schema=clause_schema(t, named), reply=r,
                 max_tokens=60 + 40 * MAX_CONDITIONS, step="formalize")
        for t, r in zip(texts, replies, strict=True)))
    for r in replies:
        reply.usage = add_usage(reply.usage, r.usage)
    try:
        clauses = [Clause.model_validate(extract_json_object(r.text)) for r in replies]
    except (ValidationError, ValueError, TypeError):
        return None
    *theory, query = clauses
    if query.conditions:
        return None
    return RulesArgs(clauses=theory, query=query.then)


def show(clause: Clause | Statement) -> str:
    """A clause as one line: ``someone is big & NOT someone is red -> someone is round``."""
    if isinstance(clause, Statement):
        return f"{'NOT ' if clause.negated else ''}{clause.subject} {clause.verb} {clause.object}"
    body = " & ".join(show(c) for c in clause.conditions)
    return f"{body} -> {show(clause.then)}" if body else show(clause.then)
