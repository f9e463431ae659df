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

Ordering puzzles ("which option must hold?", each option about one of the objects) go to
the ``order`` tool (:mod:`lottery.tools.order`) the same way. The objects are the ones the
options name. One call names the two ends of the order with words of the problem
("left"/"right", "oldest"/"newer"); then each statement that names one object gets its place
counted from an end, and each that names two, the end the first is nearer to. Where the
sentence names exactly one end itself (a word sharing its first four letters, or all of a
shorter one: "newer" for "newest", "rightmost" for "right") and says no "less" or "fewer",
the schema leaves only that end: the model reads the place and the ends, the sentence's own
words pick the direction when they can.
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
from lottery.tools.order import MAX_OBJECTS, OrderArgs, Placement
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
    "something", "somebody", "everyone", "everything", "that", "of", "to", "also", "from",
    "than", "with", "for", "in", "on", "at", "by"})
VARIABLE = "someone"
"""The value a clause uses for the rule's variable (the solver reads it as one)."""
MAX_CONDITIONS = 4
_NUMBER_WORDS = frozenset({"one", "two", "three", "four", "five", "six", "seven", "eight",
                           "second", "third", "fourth", "fifth", "sixth", "seventh"})
_OPTION_LINE = re.compile(r"^\(?(?P<letter>[A-H])[).]\s*(?P<text>.+?)\s*$", re.M)
_LESS = re.compile(r"\b(?:less|fewer)\b", re.I)
_EXPRESSION_QUESTION = re.compile(
    r"^\s*(?:what(?: is|'s)|compute|calculate|evaluate|work out)?:?\s*"
    r"(?P<expression>[-+*/×÷^()\d\s.,]+?)\s*=?\s*\??\s*$", re.I)
_OPERATION = re.compile(r"[\d)]\s*(?:[-+*/×÷^]|\*\*)\s*[-(\d]")


def expression(question: str) -> str | None:
    """The arithmetic a question asks for when it is nothing but arithmetic ("What is
    17 * 23 + 4?", "Calculate (48 - 12) / 4", "2^10 ="), for the ``calculator`` tool;
    ``None`` for any question with other words (a word problem) or no operation."""
    m = _EXPRESSION_QUESTION.match(question)
    if not m or not _OPERATION.search(m.group("expression")):
        return None
    return m.group("expression").strip()


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


# -- ordering puzzles -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ordering:
    """An ordering puzzle split for the ``order`` tool."""

    statements: tuple[str, ...]
    """The sentences that place one object, or compare two."""
    objects: tuple[str, ...]
    """The objects, as the options name them."""
    options: dict[str, str]
    """Each option's letter and text."""
    words: tuple[str, ...]
    """The words the two ends may be named with: the statements' and options', less the
    objects' words, numbers and function words."""


def mentioned(objects: tuple[str, ...] | list[str], sentence: str) -> list[str]:
    """The objects a sentence names, in the order it names them."""
    low = sentence.lower()
    hits = [(m.start(), o) for o in objects
            if (m := re.search(rf"\b{re.escape(o.lower())}\b", low))]
    return [o for _, o in sorted(hits)]


def ordering(question: str) -> Ordering | None:
    """The statements, objects and options of an ordering puzzle: at least three options,
    each naming one of at least three objects (the first thing it names); ``None`` for any
    other question."""
    body = re.split(r"\n\s*(?:Question:|Options?:)", question, maxsplit=1, flags=re.I)[0]
    options = {m.group("letter"): m.group("text") for m in _OPTION_LINE.finditer(question)}
    if len(options) < 3 or "Options" not in question and "\nA)" not in question:
        return None
    named = things(" ".join([body, *options.values()]))
    firsts = [mentioned(named, text)[:1] for text in options.values()]
    if not all(firsts):
        return None
    objects = tuple(dict.fromkeys(f[0] for f in firsts))
    if not 3 <= len(objects) <= MAX_OBJECTS:
        return None
    statements = tuple(s.strip() for s in _SENTENCE_END.split(body.strip())
                       if 1 <= len(mentioned(objects, s)) <= 2)
    if not statements:
        return None
    taken = {w for o in objects for w in o.lower().split()}
    words = tuple(sorted({w for w in _WORD.findall(" ".join([*statements, *options.values()]).lower())
                          if w not in _FUNCTION_WORDS | _NUMBER_WORDS | taken and len(w) > 2}))
    return Ordering(statements=statements, objects=objects, options=options, words=words)


def names_end(end: str, sentence: str) -> bool:
    """Whether the sentence names ``end`` itself: a word sharing its first four letters, or
    all of the shorter of the two ("newer" and "newest", "rightmost" and "right")."""
    e = end.lower()
    for w in _WORD.findall(sentence.lower()):
        shared = len(_common_prefix(w, e))
        if shared >= 4 or shared == min(len(w), len(e)) >= 3:
            return True
    return False


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def ends_allowed(first: str, last: str, sentence: str) -> list[str]:
    """The ends a statement may point to: the one it names itself, when it names exactly
    one and says no "less" or "fewer"; otherwise both."""
    if not _LESS.search(sentence):
        a, b = names_end(first, sentence), names_end(last, sentence)
        if a != b:
            return [first if a else last]
    return [first, last]


def _order_messages(system: str, examples: tuple[tuple[str, str, str, dict[str, object]], ...],
                    first: str, last: str, sentence: str) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage(system.format(first=first, last=last))]
    for f, l_, text, answer in examples:
        messages += [HumanMessage(prompts.ORDER_USER.format(first=f, last=l_, sentence=text)),
                     AIMessage(json.dumps(answer))]
    return [*messages, HumanMessage(prompts.ORDER_USER.format(first=first, last=last,
                                                               sentence=sentence))]


async def formalize_order(res: Resources, problem: Ordering, reply: Reply) -> OrderArgs | None:
    """The puzzle as the ``order`` tool's arguments: one call for the ends, then one per
    statement and per option (together); ``None`` when a reply does not parse or the two
    ends are one word."""
    messages: list[BaseMessage] = [SystemMessage(prompts.ENDS_SYSTEM)]
    for text, answer in prompts.ENDS_EXAMPLES:
        messages += [HumanMessage(text), AIMessage(json.dumps(answer))]
    messages.append(HumanMessage(" ".join(problem.statements)))
    ends_schema = {"type": "object", "additionalProperties": False, "required": ["first", "last"],
                   "properties": {"first": {"enum": list(problem.words)},
                                  "last": {"enum": list(problem.words)}}}
    await complete(res, messages, json_schema=ends_schema, reply=reply, max_tokens=40,
                   step="formalize")
    ends = extract_json_object(reply.text) or {}
    first, last = ends.get("first"), ends.get("last")
    if not (isinstance(first, str) and isinstance(last, str)) or first == last:
        return None
    n = len(problem.objects)

    async def placement(sentence: str) -> Placement | None:
        objects = mentioned(problem.objects, sentence)
        allowed = ends_allowed(first, last, sentence)
        r = Reply()
        if len(objects) == 2:
            schema = {"type": "object", "additionalProperties": False, "required": ["nearer"],
                      "properties": {"nearer": {"enum": allowed}}}
            await complete(res, _order_messages(prompts.NEARER_SYSTEM, prompts.NEARER_EXAMPLES,
                                                first, last, sentence),
                           json_schema=schema, reply=r, max_tokens=30, step="formalize")
        else:
            schema = {"type": "object", "additionalProperties": False,
                      "required": ["place", "from"],
                      "properties": {"place": {"type": "integer", "minimum": 1, "maximum": n},
                                     "from": {"enum": allowed}}}
            await complete(res, _order_messages(prompts.PLACE_SYSTEM, prompts.PLACE_EXAMPLES,
                                                first, last, sentence),
                           json_schema=schema, reply=r, max_tokens=30, step="formalize")
        reply.usage = add_usage(reply.usage, r.usage)
        answer = extract_json_object(r.text) or {}
        if len(objects) == 2 and answer.get("nearer") in (first, last):
            kind = "before" if answer["nearer"] == first else "after"
            return Placement(kind=kind, object=objects[0], other=objects[1])
        place = answer.get("place")
        if len(objects) == 1 and isinstance(place, int) and 1 <= place <= n \
                and answer.get("from") in (first, last):
            return Placement(kind="place", object=objects[0],
                             place=place if answer["from"] == first else n + 1 - place)
        return None

    texts = [*problem.statements, *problem.options.values()]
    placed = await asyncio.gather(*(placement(t) for t in texts))
    if any(p is None for p in placed):
        return None
    statements = placed[: len(problem.statements)]
    options = dict(zip(problem.options, placed[len(problem.statements):], strict=True))
    return OrderArgs(objects=list(problem.objects), statements=statements,  # type: ignore[arg-type]
                     options=options)  # type: ignore[arg-type]


def show_placement(p: Placement) -> str:
    """A statement as one line: ``blue book before yellow book``, ``purple book at 2``."""
    return f"{p.object} at {p.place}" if p.kind == "place" else f"{p.object} {p.kind} {p.other}"
