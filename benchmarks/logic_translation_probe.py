"""Logic translation probe: can the 0.5B write a ProofWriter theory down for a solver?

A probe, not a feature: it asked whether a `logic` check in the style of Logic-LM (the model
translates, an exact solver decides) could lift the 0.5B above the 1.5B's chain of thought
on ProofWriter. Two translations are tried on the first N items, each decided by forward
chaining (open world, explicit negation: True when the statement is derived, False when its
negation is, else Unknown):

- ``clauses``: the whole theory as Prolog-style clauses in one reply (one worked example of
  another domain);
- ``json``: one JSON-schema constrained clause per sentence (``{"if": [...], "then": ...}``,
  four worked examples), the statement translated the same way.

Tokens are the model's prompt + completion over all calls::

    lottery serve --detach
    python benchmarks/logic_translation_probe.py --items 12   # -> results/logic-translation-probe.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from lottery.api import make_resources
from lottery.bench.suites import load_suite
from lottery.core.context import Context
from lottery.nodes.llm import Reply, complete
from lottery.nodes.programs import extract_code

REPO = Path(__file__).resolve().parent.parent
Fact = tuple[bool, str, str, str]  # (holds, verb, subject, object); "?X" is the variable

CLAUSES_SYSTEM = (
    "Translate the problem into logic clauses, one per line: a fact as `predicate(thing).` or "
    "`not predicate(thing).`, a relation as `predicate(thing, other).`, a rule as "
    "`conclusion(X) :- condition(X), not other(X).` with X for something or someone, and last "
    "the statement to decide as `?- predicate(thing).` Use lowercase names. Reply with one "
    "```prolog code block.")
CLAUSES_EXAMPLE = (
    "Ann is tall. Ben is not happy. Ann likes Ben. If someone is tall then they are strong. "
    "Strong, happy people are loud. If someone likes Ben and they are not loud then Ben likes "
    "them. Everyone that is strong is not shy. If Ann is strong then Ann is kind.\n\nQuestion: "
    "Based on the above information, is the following statement true, false, or unknown? Ann "
    "is not shy.",
    "```prolog\ntall(ann).\nnot happy(ben).\nlikes(ann, ben).\nstrong(X) :- tall(X).\n"
    "loud(X) :- strong(X), happy(X).\nlikes(ben, X) :- likes(X, ben), not loud(X).\n"
    "not shy(X) :- strong(X).\nkind(ann) :- strong(ann).\n?- not shy(ann).\n```")

_STATEMENT = {"type": "object", "additionalProperties": False,
              "required": ["subject", "verb", "object", "negated"],
              "properties": {"subject": {"type": "string", "maxLength": 30},
                             "verb": {"type": "string", "maxLength": 20},
                             "object": {"type": "string", "maxLength": 30},
                             "negated": {"type": "boolean"}}}
CLAUSE_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["if", "then"],
                 "properties": {"if": {"type": "array", "items": _STATEMENT, "maxItems": 4},
                                "then": _STATEMENT}}
JSON_SYSTEM = (
    "Write the sentence as a rule in JSON. Each statement has a subject, a verb (is, likes, "
    "sees, ...), an object (an adjective or a thing) and whether it is negated. A plain fact "
    'has no conditions ("if": []). Use "someone" as the subject for someone, something, '
    "they, people or things in general.")


def _st(subject: str, verb: str, obj: str, negated: bool = False) -> dict[str, Any]:
    return {"subject": subject, "verb": verb, "object": obj, "negated": negated}


JSON_EXAMPLES = (
    ("Ann is tall.", {"if": [], "then": _st("Ann", "is", "tall")}),
    ("Ben does not like the dog.", {"if": [], "then": _st("Ben", "likes", "the dog", True)}),
    ("If someone is tall and they do not like the dog then they are strong.",
     {"if": [_st("someone", "is", "tall"), _st("someone", "likes", "the dog", True)],
      "then": _st("someone", "is", "strong")}),
    ("Happy, strong people are not loud.",
     {"if": [_st("someone", "is", "happy"), _st("someone", "is", "strong")],
      "then": _st("someone", "is", "loud", True)}),
)
_GENERIC = {"someone", "something", "they", "it", "people", "things", "everyone", "everything"}
_LITERAL = re.compile(r"^(not\s+)?([a-z_]\w*)\s*\(([^()]*)\)$", re.I)


def decide(facts: set[Fact], rules: list[tuple[Fact, list[Fact]]],
           query: Fact) -> str:
    """Forward chaining to a fixpoint over the constants named; A (True), B (False), C."""
    known = set(facts)
    constants = {x for f in known for x in f[2:]} | {
        x for head, body in rules for lit in (head, *body) for x in lit[2:] if x != "?X"}
    changed = True
    while changed:
        changed = False
        for head, body in rules:
            for c in constants:
                def ground(lit: Fact, c: str = c) -> Fact:
                    return (lit[0], lit[1], *(c if x == "?X" else x for x in lit[2:]))  # type: ignore[return-value]
                if all(ground(b) in known for b in body) and ground(head) not in known:
                    known.add(ground(head))
                    changed = True
    if query in known:
        return "A"
    return "B" if (not query[0], *query[1:]) in known else "C"


def parse_clauses(text: str) -> tuple[set[Fact], list[tuple[Fact, list[Fact]]], Fact]:
    """Facts, rules and the query of a clause program; ValueError on anything else."""
    def literal(raw: str) -> Fact:
        m = _LITERAL.match(raw.strip().rstrip("."))
        if not m:
            raise ValueError(f"not a literal: {raw.strip()[:40]!r}")
        args = [a.strip() for a in m.group(3).split(",") if a.strip()]
        args = ["?X" if a[:1].isupper() else a.lower() for a in args] + [""] * (2 - len(args))
        return (not m.group(1), m.group(2).lower(), args[0], args[1])

    facts, rules, query = set(), [], None
    for line in (ln.split("%")[0].strip() for ln in text.splitlines()):
        if not line:
            continue
        if line.startswith("?-"):
            query = literal(line[2:])
        elif ":-" in line:
            head, body = line.rstrip(".").split(":-", 1)
            rules.append((literal(head),
                          [literal(b) for b in re.split(r"(?<=\))\s*,\s*", body.strip())]))
        else:
            facts.add(literal(line))
    if query is None:
        raise ValueError("no query")
    return facts, rules, query


def json_literal(s: dict[str, Any]) -> Fact:
    subject = re.sub(r"^the\s+", "", s["subject"].lower().strip())
    obj = re.sub(r"^the\s+", "", s["object"].lower().strip())
    verb = s["verb"].lower().strip()
    verb = {"are": "is"}.get(verb, verb if verb == "is" or verb.endswith("s") else verb + "s")
    return (not s["negated"], verb, "?X" if subject in _GENERIC else subject, obj)


async def probe(ctx: Context, mode: str, items: int) -> dict[str, Any]:
    res = make_resources(ctx)
    suite = load_suite("proofwriter", None, limit=items)
    total = Reply()
    json_base: list[BaseMessage] = [SystemMessage(JSON_SYSTEM)]
    for sentence, clause in JSON_EXAMPLES:
        json_base += [HumanMessage(sentence), AIMessage(json.dumps(clause))]

    async def clause_of(sentence: str) -> dict[str, Any]:
        reply = await complete(res, [*json_base, HumanMessage(sentence)], reply=total,
                               json_schema=CLAUSE_SCHEMA, max_tokens=150)
        return json.loads(reply.text)

    async def one(question: str) -> str:
        theory, rest = question.split("\n\nQuestion:")
        statement = rest.split("?", 1)[1].split("\nOptions")[0].strip()
        try:
            if mode == "clauses":
                messages = [SystemMessage(CLAUSES_SYSTEM), HumanMessage(CLAUSES_EXAMPLE[0]),
                            AIMessage(CLAUSES_EXAMPLE[1]),
                            HumanMessage(question.split("\nOptions:")[0])]
                reply = await complete(res, messages, reply=total)
                return decide(*parse_clauses(extract_code(reply.text) or reply.text))
            sentences = [s for s in re.split(r"(?<=\.)\s+", theory.strip()) if s]
            clauses = await asyncio.gather(*(clause_of(s) for s in sentences))
            facts = {json_literal(c["then"]) for c in clauses if not c["if"]}
            rules = [(json_literal(c["then"]), [json_literal(x) for x in c["if"]])
                     for c in clauses if c["if"]]
            return decide(facts, rules, json_literal((await clause_of(statement))["then"]))
        except (ValueError, KeyError) as exc:
            return f"error: {exc}"[:80]

    answers = await asyncio.gather(*(one(item.question) for item in suite.items))
    right = sum(a == item.gold for a, item in zip(answers, suite.items, strict=True))
    return {"mode": mode, "items": len(answers), "right": right,
            "errors": sum(a.startswith("error") for a in answers),
            "tokens_per_item": round((total.usage["prompt_tokens"]
                                      + total.usage["completion_tokens"]) / len(answers)),
            "answers": answers, "gold": [str(i.gold) for i in suite.items]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "logic-translation-probe.json")
    args = parser.parse_args(argv)
    ctx = Context(base_url=args.base_url, model=args.model)
    rows = [asyncio.run(probe(ctx, mode, args.items)) for mode in ("clauses", "json")]
    report = {"benchmark": "logic-translation-probe", "suite": "proofwriter",
              "engine": "vllm", "model": args.model, "rows": rows}
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for r in rows:
        print(f"{r['mode']:8} {r['right']}/{r['items']} right, {r['errors']} unparsed, "
              f"{r['tokens_per_item']} tokens/item")
    return 0


if __name__ == "__main__":
    sys.exit(main())
