"""The abilities probe: can this (possibly compressed) model still be a lottery LLM?

Short checks of the five abilities the Lottery LLM blog says a small model must
keep, each run through the framework's OWN prompts and parsers so the score
predicts how the model does inside Algorithm 1:

1. ``long_prompt_retrieval``: find a fact hidden in a long prompt.
2. ``tool_choice``: the planner picks the tool, retrieval or a direct answer rightly.
3. ``decomposition``: the planner splits a multi-part question into sub-questions
   that cover its parts (with a dependency where one part needs another).
4. ``memory_ops``: exact write / copy / read of values through memory tools.
5. ``working_memory``: answer from a long list of sub-results (the merge step).

Cases are generated from a fixed seed and need no data files.
"""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.tools import tool as lc_tool
from langgraph.runtime import Runtime

from lottery.bench.scorers import normalize_answer, numeric_match
from lottery.bench.suites import niah_haystack
from lottery.core.context import Context
from lottery.core.state import Task, Usage, new_problem
from lottery.nodes import prompts
from lottery.nodes.llm import complete, final_answer, system_user
from lottery.nodes.planner import planner
from lottery.resources import Resources
from lottery.stores.knowledge import Document, InMemoryKnowledgeBase
from lottery.tools.registry import ToolRegistry

ABILITIES = ("long_prompt_retrieval", "tool_choice", "decomposition", "memory_ops",
             "working_memory")
PASS_SCORE = 0.6
"""An ability passes at this share of its checks."""


@dataclass(slots=True)
class Check:
    """One check of one ability."""

    ability: str
    case: str
    ok: bool
    expected: Any
    got: Any
    usage: Usage = field(default_factory=lambda: Usage(calls=0, prompt_tokens=0,
                                                       completion_tokens=0))


# -- 1. retrieval from a long prompt -----------------------------------------------------

_SUBJECTS = ("The committee", "A local farmer", "The river authority", "Our neighbour",
             "The museum guide", "A delivery driver", "The city council", "The old library")
_VERBS = ("reviewed", "repaired", "painted", "measured", "described", "photographed", "moved")
_OBJECTS = ("the north bridge", "a wooden fence", "the train timetable", "three old maps",
            "the orchard gate", "a stack of letters", "the harbour crane", "the school roof")
_WHEN = ("on Monday", "last spring", "before noon", "in the evening", "after the storm",
         "during the festival", "in early March")


def filler_sentences(n: int, rng: random.Random) -> list[str]:
    """Plausible, irrelevant sentences for haystacks."""
    return [f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
            f"{rng.choice(_WHEN)}." for _ in range(n)]


async def probe_long_prompt(res: Resources, rng: random.Random) -> list[Awaitable[Check]]:
    """A passphrase hidden at several depths of a 1.5k-3k token prompt."""
    sentences = filler_sentences(400, rng)
    cases = []
    for tokens, depth in ((1500, 0.1), (1500, 0.5), (1500, 0.9), (3000, 0.5)):
        secret = f"{rng.choice(['cobalt', 'maple', 'orbit', 'tundra'])}-{rng.randint(100, 999)}"
        city = rng.choice(["Lima", "Oslo", "Perth", "Turin", "Accra"])
        hay = niah_haystack(sentences, tokens * 4,
                            f"The secret passphrase for the {city} vault is {secret}.", depth)
        question = (f"{hay}\n\nQuestion: What is the secret passphrase for the {city} vault? "
                    "Reply with the passphrase only.")

        async def run(q: str = question, s: str = secret, name: str = f"{tokens}tok@{depth}") -> Check:
            reply = await complete(res, system_user(prompts.DIRECT_SYSTEM, q), max_tokens=32)
            got = final_answer(reply.text)
            return Check("long_prompt_retrieval", name, normalize_answer(s) in normalize_answer(got),
                         s, got, reply.usage)

        cases.append(run())
    return cases


# -- 2 and 3. the planner: tool choice and decomposition ---------------------------------


async def _plan(res: Resources, question: str) -> tuple[dict[str, dict[str, Any]], Usage]:
    """The framework's own planner node on a root problem: its tree updates and usage."""
    task = Task(run_id="abilities", goal=question, problem=new_problem("0", question),
                related=[], allowance=2)
    out = await planner(task, Runtime(context=res.settings))
    return out["problems"], out["usage"]


TOOL_CASES = (
    ("What is 48213 * 9127 - 3301?", "tool:calculator|tool:python"),
    ("Compute (1234.5 * 88 - 97) / 4 exactly.", "tool:calculator|tool:python"),
    ("According to the documents in our knowledge base, how many vacation days does the "
     "2024 staff handbook give new employees?", "retrieve"),
    ("What did our internal incident report say caused the outage of 3 May?", "retrieve"),
    ("What is the opposite of the word 'hot'?", "solve"),
)


COMPANY_DOCS = (
    Document("handbook-2024", "Staff handbook 2024: new employees get 25 vacation days a year."),
    Document("incident-0503", "Incident report, 3 May: the outage was caused by an expired "
             "TLS certificate on the load balancer."),
)
"""The knowledge base the tool-choice probe offers: the planner only sees "retrieve" when
its knowledge base holds documents."""


async def probe_tool_choice(res: Resources, rng: random.Random) -> list[Awaitable[Check]]:
    """The planner's action (and tool) for questions whose right choice is clear."""
    with_docs = replace(
        res, knowledge=InMemoryKnowledgeBase("company", list(COMPANY_DOCS)),
        settings=replace(res.settings, knowledge_description="the company's staff handbook "
                         "and incident reports"))

    async def run(question: str, expected: str) -> Check:
        updates, usage = await _plan(with_docs, question)
        root = updates["0"]
        got = root["decision"] if root.get("decision") != "tool" else f"tool:{root['tool_call']['name']}"
        if usage.get("fallbacks"):
            got = "unparsable"
        return Check("tool_choice", question[:40], got in expected.split("|"), expected, got, usage)

    return [run(q, e) for q, e in TOOL_CASES]


DECOMPOSITION_CASES = (
    ("Who is older, the author of 'Pride and Prejudice' or the author of 'Moby-Dick'?",
     (("pride",), ("moby",)), False),
    ("In which year was the university attended by the inventor of the telephone founded?",
     (("telephone",), ("university", "founded")), True),
    ("A shop sells 3 notebooks at $2.50 each and 2 pens at $1.20 each; with a 10% discount "
     "on the total, what does the customer pay?", (("notebook",), ("pen",), ("discount",)), False),
    ("What is the population of the capital city of the country where the Eiffel Tower stands?",
     (("eiffel",), ("capital",), ("population",)), True),
)


async def probe_decomposition(res: Resources, rng: random.Random) -> list[Awaitable[Check]]:
    """The planner divides multi-part questions into sub-questions that cover every part."""
    async def run(question: str, parts: tuple[tuple[str, ...], ...], chained: bool) -> Check:
        updates, usage = await _plan(res, question)
        root = updates["0"]
        if root.get("decision") != "divide":
            got: Any = "unparsable" if usage.get("fallbacks") else root.get("decision")
            return Check("decomposition", question[:40], False, "divide", got, usage)
        children = [updates[c] for c in root["children"]]
        subs = [c["template"].lower() for c in children]
        covered = all(any(all(w in s for w in part) for s in subs) for part in parts)
        linked = any(c["depends_on"] for c in children[1:]) or any("#" in s for s in subs[1:])
        ok = len(subs) >= 2 and covered and (linked or not chained)
        return Check("decomposition", question[:40], ok,
                     {"parts": parts, "needs_dependency": chained}, subs, usage)

    return [run(q, p, c) for q, p, c in DECOMPOSITION_CASES]


# -- 4. exact memory operations ----------------------------------------------------------


def memory_registry(memory: dict[str, str]) -> ToolRegistry:
    """``memory_read``, ``memory_write`` and ``memory_copy`` over ``memory``."""

    @lc_tool("memory_write")
    def memory_write(key: str, value: str) -> str:
        """Store value under key (replaces what was there)."""
        memory[key] = value
        return "ok"

    @lc_tool("memory_read")
    def memory_read(key: str) -> str:
        """Return the value stored under key."""
        return memory.get(key, "(no such key)")

    @lc_tool("memory_copy")
    def memory_copy(source: str, target: str) -> str:
        """Copy the value under source to target."""
        if source not in memory:
            return "(no such key)"
        memory[target] = memory[source]
        return "ok"

    return ToolRegistry([memory_write, memory_read, memory_copy])


def _random_value(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits
    return "-".join("".join(rng.choice(alphabet) for _ in range(4)) for _ in range(4))


async def probe_memory(res: Resources, rng: random.Random) -> list[Awaitable[Check]]:
    """Write a random value, copy it to another key, read it back: each step must be exact."""
    cases = []
    for n in range(3):
        value = _random_value(rng)
        src, dst = f"slot_{rng.randint(10, 99)}", f"backup_{rng.randint(10, 99)}"

        async def run(value: str = value, src: str = src, dst: str = dst, n: int = n) -> list[Check]:
            memory: dict[str, str] = {}
            registry = memory_registry(memory)
            system = prompts.MEMORY_OP_SYSTEM.format(tools=registry.describe())
            checks = []
            steps = (("write", f"Write the value {value} under the key {src}."),
                     ("copy", f"Copy the value of key {src} to key {dst}."),
                     ("read", f"Read the value stored under key {dst}."))
            before = {"write": {}, "copy": {src: value}, "read": {src: value, dst: value}}
            for step, instruction in steps:
                memory.clear()  # each operation is checked on its own, from the right state
                memory.update(before[step])
                messages = system_user(system, prompts.MEMORY_OP_USER.format(instruction=instruction))
                reply = await complete(res, messages, max_tokens=96)
                output = await _run_memory_call(registry, reply.text)
                if step == "read":
                    recall = system_user(system, prompts.MEMORY_RECALL_USER.format(
                        tool="memory_read", output=output))
                    await complete(res, recall, max_tokens=48, reply=reply)
                    got: Any = final_answer(reply.text)
                    ok = got.strip().strip("\"'`") == value
                else:
                    got = dict(memory)
                    ok = memory.get(src) == value and (step == "write" or memory.get(dst) == value)
                checks.append(Check("memory_ops", f"case{n}:{step}", ok, value, got, reply.usage))
            return checks

        cases.append(run())
    return cases  # type: ignore[return-value]


async def _run_memory_call(registry: ToolRegistry, text: str) -> str:
    from lottery.errors import ToolError
    from lottery.nodes.llm import extract_json_object

    call = extract_json_object(text) or {}
    name = str(call.get("tool") or call.get("name") or "")
    try:
        result = await registry.arun(name, call.get("args") or call.get("arguments") or {})
    except ToolError as exc:
        return f"error: {exc}"
    return result.output if result.ok else f"error: {result.error}"


# -- 5. reasoning over a long working memory ---------------------------------------------


async def probe_working_memory(res: Resources, rng: random.Random) -> list[Awaitable[Check]]:
    """The merge step over 16 sub-results: sums, a difference, a maximum, a count."""
    names = [f"warehouse {c}" for c in "ABCDEFGHJKLMNPQR"]
    crates = {n: rng.randint(12, 95) for n in names}
    items = "\n".join(f"{i}. How many crates are in {n}? -> {crates[n]}"
                      for i, n in enumerate(names, start=1))
    a, b, c = rng.sample(names, 3)
    top = max(crates, key=lambda n: crates[n])
    questions = (
        (f"How many crates are in {a}, {b} and {c} together?", crates[a] + crates[b] + crates[c]),
        (f"How many more crates are in {a} than in {b}?", crates[a] - crates[b]),
        ("Which warehouse holds the most crates?", top),
        ("How many warehouses hold more than 50 crates?", sum(v > 50 for v in crates.values())),
    )

    async def run(question: str, expected: Any) -> Check:
        user = prompts.MERGE_USER.format(items=items, question=question)
        reply = await complete(res, system_user(prompts.MERGE_SYSTEM, user))
        got = final_answer(reply.text)
        if isinstance(expected, int):
            ok = numeric_match(got, float(expected)).correct
        else:
            ok = normalize_answer(expected) in normalize_answer(got)
        return Check("working_memory", question[:40], ok, expected, got, reply.usage)

    return [run(q, e) for q, e in questions]


PROBES: dict[str, Callable[[Resources, random.Random], Awaitable[list[Awaitable[Any]]]]] = {
    "long_prompt_retrieval": probe_long_prompt,
    "tool_choice": probe_tool_choice,
    "decomposition": probe_decomposition,
    "memory_ops": probe_memory,
    "working_memory": probe_working_memory,
}


async def run_abilities(res: Resources, *, concurrency: int = 8, seed: int = 7,
                        only: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run the probes; a score per ability and an overall verdict."""
    rng = random.Random(seed)
    sem = asyncio.Semaphore(concurrency)
    start = time.perf_counter()
    pending: list[Awaitable[Any]] = []
    for name in ABILITIES:
        if only and name not in only:
            continue
        pending.extend(await PROBES[name](res, rng))

    async def limited(aw: Awaitable[Any]) -> Any:
        async with sem:
            return await aw

    results = await asyncio.gather(*(limited(a) for a in pending))
    checks: list[Check] = []
    for r in results:
        checks.extend(r if isinstance(r, list) else [r])
    return _report(checks, res.settings, time.perf_counter() - start)


def _report(checks: list[Check], ctx: Context, wall: float) -> dict[str, Any]:
    abilities: dict[str, Any] = {}
    for name in ABILITIES:
        mine = [c for c in checks if c.ability == name]
        if not mine:
            continue
        score = sum(c.ok for c in mine) / len(mine)
        abilities[name] = {
            "score": round(score, 3), "passed": score >= PASS_SCORE, "checks": len(mine),
            "details": [{"case": c.case, "ok": c.ok, "expected": c.expected, "got": c.got}
                        for c in mine],
        }
    passed = [n for n, a in abilities.items() if a["passed"]]
    failed = [n for n, a in abilities.items() if not a["passed"]]
    if not failed:
        verdict = "lottery-ready: every ability passes"
    elif len(passed) >= len(abilities) / 2:
        verdict = f"partly: weak at {', '.join(failed)} (give it tools or a larger model there)"
    else:
        verdict = f"not ready: fails {', '.join(failed)}"
    usage = {"calls": sum(c.usage.get("calls", 0) for c in checks),
             "prompt_tokens": sum(c.usage.get("prompt_tokens", 0) for c in checks),
             "completion_tokens": sum(c.usage.get("completion_tokens", 0) for c in checks),
             "wall_time_s": round(wall, 2)}
    return {"model": ctx.model, "pass_score": PASS_SCORE, "abilities": abilities,
            "passed": len(passed), "total": len(abilities), "verdict": verdict, "usage": usage}
