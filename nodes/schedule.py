"""schedule: the bookkeeping between steps, and the router that fans the next steps out.

After every superstep ``schedule`` reads the whole problem tree and applies the
rules of Algorithm 1 that need no model: the root is created from the question,
sub-problems wait for the answers they depend on (which are then substituted
into their question), problems at ``max_depth`` are solved directly, divided
problems whose children are done go to ``merge``, and the budget is enforced.
``dispatch`` then sends every ready problem to its node at once (``Send``), so
independent sub-problems run in parallel and a vLLM server batches them.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Literal, NamedTuple

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import Send

from lottery.core.context import Context
from lottery.core.state import Evidence, Problem, State, Task, new_problem
from lottery.errors import InputError
from lottery.nodes import prompts
from lottery.nodes.events import emit_answer, emit_decision
from lottery.nodes.memory import memorize_answer, recall_answer
from lottery.nodes.policy import POLICIES, Policy, first_step, give_up, next_step, resolve
from lottery.nodes.preprocess import attach_context
from lottery.resources import Resources

ROOT = "0"
_REF = re.compile(r"#(\d+)")
_SUBSTITUTED_CHARS = 100
"""Longest answer written into a later sub-question's ``#k``: a value (a number, a name, a
date). A longer answer is a sentence or a repeated document, which would reach later prompts
as part of a question, not as quoted data: the reference names the earlier question instead,
and the answer itself travels only in the quoted earlier results."""
_MODEL_STEPS = {"pending": "planner", "tool": "tool", "solve": "solve", "merge": "merge"}

Step = Literal["planner", "retrieve", "tool", "solve", "merge", "finalize"]


class Limits(NamedTuple):
    """The run's limits: the context's settings, overridden by the input's optional fields."""

    max_depth: int
    max_calls: int
    max_tokens: int
    knowledge_base: str


def limits(state: State, ctx: Context) -> Limits:
    """Effective limits of a run; raises :class:`InputError` for an unusable override."""
    values = {}
    for name, least in (("max_depth", 0), ("max_calls", 1), ("max_tokens", 1)):
        value = state.get(name)
        if value is None:
            value = getattr(ctx, name)
        elif isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InputError(f"{name} must be an integer of at least {least}, got {value!r}")
        values[name] = value
    kb = state.get("knowledge_base")
    if kb is not None and (not isinstance(kb, str) or not kb.strip()):
        raise InputError(f"knowledge_base must be a non-empty name, got {kb!r}")
    return Limits(**values, knowledge_base=(kb or ctx.knowledge_base).strip())


def validate_question(question: Any, max_chars: int) -> str:
    """The question, stripped; raises :class:`InputError` for unusable input."""
    if not isinstance(question, str):
        raise InputError(f"the question must be text, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise InputError("the question is empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("the question is not valid UTF-8 text") from None
    if "\x00" in text:
        raise InputError("the question contains NUL bytes: is it binary data?")
    if len(text) > max_chars:
        raise InputError(
            f"the question has {len(text)} characters, over the limit of {max_chars} "
            "(raise LOTTERY_MAX_INPUT_CHARS, pass a long document with `lottery ask --context "
            "FILE`, or put long material in a knowledge base)"
        )
    return text


def run_id_of(config: RunnableConfig) -> str:
    """The run's id: the checkpoint thread id when there is one, else a fresh UUID."""
    thread = (config.get("configurable") or {}).get("thread_id")
    return str(thread or uuid.uuid4())


async def schedule(state: State, runtime: Runtime[Context], config: RunnableConfig) -> dict[str, Any]:
    """Apply the model-free rules to the tree; see the module docstring.

    Uses the run's settings and, of its resources, the knowledge base (is it empty?), the
    embeddings (a long context) and whether a delegate is configured."""
    ctx = runtime.context
    res = Resources.of(ctx)
    await res.aprepare()
    lim = limits(state, ctx)  # on the first step: fails before any model call on a bad override
    problems = state.get("problems") or {}
    updates: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {"problems": updates}
    if ROOT not in problems:  # first step: the root problem is the question
        question = validate_question(state.get("question"), ctx.max_input_chars)
        problems = {ROOT: new_problem(ROOT, question)}
        if state.get("context"):  # retrieval from the prompt: keep the relevant pieces
            problems = {ROOT: await attach_context(problems[ROOT], state["context"], res)}
        updates[ROOT] = dict(problems[ROOT])
        policy = resolve(ctx.policy, question,
                         has_knowledge=await res.has_knowledge(lim.knowledge_base))
        out.update(run_id=run_id_of(config), answer=None, best_effort=False, stop_reason=None,
                   confidence=None, policy=policy.name)
    else:
        policy = policy_of(state)
    base, reused = problems, True
    usage: dict[str, int] = {}
    # A reused (or best-effort) answer can make dependants and parents ready: apply the
    # rules again until nothing changes.
    while reused:
        reused = False
        problems = {pid: {**p, **updates.get(pid, {})} for pid, p in base.items()}
        for p in problems.values():
            if p["status"] == "pending" and _deps_done(p, problems):
                if p["depends_on"]:
                    updates.setdefault(p["id"], {})["question"] = _substitute(p, problems)
                question = updates.get(p["id"], {}).get("question", p["question"])
                if p["depth"] > 0 and (hit := await recall_answer(runtime.store, ctx, question)):
                    updates.setdefault(p["id"], {}).update(_reuse(hit))
                    emit_decision(runtime, p, updates)
                    emit_answer(runtime, {**p, **updates[p["id"]]}, hit["answer"], "reuse")
                    usage["reuse_hits"] = usage.get("reuse_hits", 0) + 1
                    usage["saved_calls"] = usage.get("saved_calls", 0) + int(hit.get("calls", 0))
                    reused = True
                elif not policy.planner and p.get("rung") != "divide":
                    updates.setdefault(p["id"], {}).update(
                        first_step(policy, p, can_delegate=res.can_delegate))
                    emit_decision(runtime, p, updates)
                elif p["depth"] >= lim.max_depth:
                    updates.setdefault(p["id"], {}).update(
                        decision="solve", reason="depth limit: solved directly", status="solve"
                    )
                    emit_decision(runtime, p, updates)
            elif p["status"] == "doubt":  # the answer failed its check: the next rung
                step = next_step(policy, p, can_divide=p["depth"] < lim.max_depth,
                                 can_delegate=res.can_delegate,
                                 calls_left=_budget_left(state, ctx)[0])
                updates.setdefault(p["id"], {}).update(step)
                emit_decision(runtime, p, updates)
                reused = reused or step["status"] == "done"  # its parent may be ready now
            elif p["status"] == "divided" and all(
                problems[c]["status"] == "done" for c in p["children"]
            ):
                updates.setdefault(p["id"], {})["status"] = "merge"
    run_id = out.get("run_id") or state.get("run_id") or ""
    await _memorize_new_answers(runtime.store, ctx, run_id,
                                {pid: {**p, **updates.get(pid, {})} for pid, p in problems.items()},
                                updates)
    if usage:
        out["usage"] = usage
    root = {**problems[ROOT], **updates.get(ROOT, {})}
    if root["status"] not in ("done", "solve") and not state.get("stop_reason"):
        calls_left, tokens_left = _budget_left(state, ctx)
        if calls_left <= 1 or tokens_left <= 2 * _tokens_per_call(state, ctx):
            # One call left: spend it on answering the root from what is known.
            out["stop_reason"] = "budget"
            if root.get("candidates"):  # the root has answers: the best one, no call needed
                updates.setdefault(ROOT, {}).update(give_up(policy, root, "budget nearly spent"))
            elif calls_left >= 1:  # even past the token budget: one bounded call answers
                updates.setdefault(ROOT, {}).update(
                    status="solve", rung="final",
                    reason=(root.get("reason", "") + " | budget nearly spent: answered directly "
                            "from what was known").strip(" |"),
                )
                emit_decision(runtime, problems[ROOT],
                              {ROOT: {**updates[ROOT], "decision": "solve"}})
    return out


def dispatch(state: State, runtime: Runtime[Context]) -> list[Send] | Step:
    """Send every ready problem to its next node, within the budget; or finalize."""
    ctx, problems = runtime.context, state["problems"]
    root = problems[ROOT]
    if root["status"] == "done":
        return "finalize"
    calls_left, tokens_left = _budget_left(state, ctx)
    if state.get("stop_reason"):
        if root["status"] != "solve" or calls_left < 1:
            return "finalize"
        return [Send("solve", _task(state, root, _known_answers(problems), allowance=1))]
    retrievals, model_tasks = [], []
    for p in sorted(problems.values(), key=lambda q: (-q["depth"], q["id"])):
        if p["status"] == "retrieve":
            retrievals.append(p)
        elif p["status"] in _MODEL_STEPS and (p["status"] != "pending" or _deps_done(p, problems)):
            model_tasks.append(p)
    if calls_left <= 0 or tokens_left <= 0:
        return "finalize"
    # Deepest first: finish work before starting more. Parallel calls share what is left
    # of the token budget, at the run's average cost per call so far.
    # One call stays in reserve for answering the root when the budget runs out, so a wide
    # fan-out cannot spend the last calls and leave the run without any answer.
    per_call = _tokens_per_call(state, ctx)
    spendable = calls_left - 1 if root["status"] not in _MODEL_STEPS else calls_left
    model_tasks = model_tasks[: max(1, min(spendable, (tokens_left - per_call) // per_call))]
    # Each task may spend its share of the calls left (at least one): most steps make one
    # or two calls, a `deduction` attempt one per sentence of its problem.
    allowance = max(1, spendable // max(len(model_tasks), 1))
    sends = [Send("retrieve", _task(state, p, [], allowance=0)) for p in retrievals]
    for p in model_tasks:
        related = (_answers(problems, p["children"]) if p["status"] == "merge"
                   else _answers(problems, p["depends_on"]))
        sends.append(Send(_MODEL_STEPS[p["status"]], _task(state, p, related, allowance)))
    return sends or "finalize"


async def finalize(state: State) -> dict[str, Any]:
    """The run's answer: the root's, or the best partial answer when the budget ran out.

    Best effort when the budget ended the run or, under a policy, when the root's answer
    did not pass its check on any rung; the root's confidence goes with it.
    """
    problems = state["problems"]
    root = problems[ROOT]
    confidence = root.get("confidence")
    if root["status"] == "done":
        doubtful = root.get("accepted") is False
        return {"answer": root["answer"], "confidence": confidence,
                "best_effort": bool(state.get("stop_reason")) or doubtful}
    known = _known_answers(problems)
    answer = root.get("answer") or (known[-1]["answer"] if known else None)
    stop = state.get("stop_reason") or "budget"
    return {"answer": answer, "best_effort": True, "stop_reason": stop,
            "confidence": confidence if root.get("answer") else None}


def policy_of(state: State | Task) -> Policy:
    """The policy a run follows (runs started before policies existed: ``planner``)."""
    return POLICIES[state.get("policy") or "planner"]


def _reuse(hit: dict[str, Any]) -> dict[str, Any]:
    """Tree update for a problem answered from memory M."""
    source = {"run_id": hit.get("run_id"), "problem_id": hit.get("problem_id"),
              "calls": int(hit.get("calls", 0))}
    note = Evidence(source="memory", content=f"{hit['question']} -> {hit['answer']}",
                    ref=f"{source['run_id']}/{source['problem_id']}")
    return {"decision": "reuse", "status": "done", "answer": hit["answer"], "evidence": [note],
            "reason": f"answered before (run {source['run_id']}, problem {source['problem_id']})",
            "reused_from": source, "memorized": True}


async def _memorize_new_answers(store: Any, ctx: Context, run_id: str,
                                problems: dict[str, Problem],
                                updates: dict[str, dict[str, Any]]) -> None:
    """Write each newly answered problem that passed its check to memory M once (with what
    its subtree cost); an unchecked or doubtful answer is never served again, unless
    ``reuse_min_confidence`` is 0 (serve any answer, as before policies checked them)."""
    for p in problems.values():
        trusted = ctx.reuse_min_confidence == 0 or (
            p.get("accepted") and p.get("confidence", 0) >= ctx.reuse_min_confidence)
        if p["status"] == "done" and p.get("answer") and not p.get("memorized") and trusted:
            await memorize_answer(store, ctx, run_id, p, _cost(p, problems))
            updates.setdefault(p["id"], {})["memorized"] = True


def _cost(p: Problem, problems: dict[str, Problem]) -> int:
    """Model calls an answer took: its own, its sub-problems', reused ones' original cost."""
    own = p.get("calls", 0) + int((p.get("reused_from") or {}).get("calls", 0))
    return own + sum(_cost(problems[c], problems) for c in p.get("children", []) if c in problems)


def _task(state: State, p: Problem, related: list[dict[str, str]], allowance: int) -> Task:
    task = Task(run_id=state["run_id"], goal=state["problems"][ROOT]["question"], problem=p,
                related=related, allowance=allowance)
    for name in ("max_depth", "knowledge_base", "policy"):  # run settings travel with the task
        if state.get(name) is not None:
            task[name] = state[name]  # type: ignore[literal-required]
    return task


def _budget_left(state: State, ctx: Context) -> tuple[int, int]:
    usage = state.get("usage") or {}
    tokens = usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)
    lim = limits(state, ctx)
    return lim.max_calls - usage.get("calls", 0), lim.max_tokens - tokens


def _tokens_per_call(state: State, ctx: Context) -> int:
    """Average tokens of one model call in this run (a guess before the first call)."""
    usage = state.get("usage") or {}
    calls = usage.get("calls", 0)
    if not calls:
        return ctx.max_completion_tokens + 400
    return max(1, (usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)) // calls)


def _deps_done(p: Problem, problems: dict[str, Problem]) -> bool:
    return all(problems[d]["status"] == "done" for d in p["depends_on"] if d in problems)


def _substitute(p: Problem, problems: dict[str, Problem]) -> str:
    """Write the answers of earlier siblings into ``#k`` references, as one line of data; an
    answer longer than a value is referred to by its question (see ``_SUBSTITUTED_CHARS``)."""

    def repl(m: re.Match[str]) -> str:
        sibling = problems.get(f"{p['parent']}.{m.group(1)}")
        if not sibling or not sibling.get("answer"):
            return m.group(0)
        value = prompts.as_data(sibling["answer"])
        if len(value) <= _SUBSTITUTED_CHARS:
            return value
        return prompts.ANSWER_OF.format(question=prompts.as_data(sibling["question"],
                                                                 _SUBSTITUTED_CHARS))

    return _REF.sub(repl, p["template"])


def _answers(problems: dict[str, Problem], ids: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in ids:
        if i in problems and problems[i]["status"] == "done":
            p = problems[i]
            out.append({"id": i, "question": p["question"], "answer": p["answer"] or "",
                        **({"confidence": p["confidence"]} if "confidence" in p else {})})
    return out


def _known_answers(problems: dict[str, Problem]) -> list[dict[str, str]]:
    """Answered non-root problems, in tree order (the last one is the latest step)."""
    done = [p for pid, p in problems.items() if pid != ROOT and p["status"] == "done"]
    done.sort(key=lambda p: [int(x) for x in p["id"].split(".")])
    return _answers(problems, [p["id"] for p in done])
