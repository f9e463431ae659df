"""solve: answer one problem from its question, its evidence and earlier answers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.runtime import Runtime

from lottery.core.context import Context
from lottery.core.state import Candidate, Evidence, Problem, Task, add_usage
from lottery.nodes import prompts
from lottery.nodes.events import emit_answer
from lottery.nodes.formalize import (
    deduction,
    expression,
    formalize,
    formalize_order,
    ordering,
    show,
    show_placement,
)
from lottery.nodes.llm import (
    Reply,
    answer_key,
    complete,
    cross_check,
    final_answer,
    fit,
    majority,
    parse_structured,
    room,
    sample,
    system_user,
)
from lottery.nodes.memory import remember
from lottery.nodes.policy import (
    POLICIES,
    Policy,
    accepted,
    confirmable,
    judge,
    wants_confirmation,
)
from lottery.nodes.programs import ARG_NAME, ProgramOutcome, run_programs
from lottery.nodes.schemas import ShortAnswer
from lottery.resources import Resources

_MAX_EVIDENCE_CHARS = 1500
_MARK = 8
"""Characters a listed line brings along: its "[12] " or "- " mark and its newline."""


async def solve(task: Task, runtime: Runtime[Context]) -> dict[str, Any]:
    """The reply's ``Answer:`` line is the problem's answer.

    Under a policy (``nodes/policy.py``) the problem's rung says what to do: ``attempt``
    (a greedy answer, with its check), ``samples`` (more answers), ``delegate`` (the
    delegate model answers); the candidates are scored and the answer is accepted or put
    in doubt. Under the ``planner`` policy: one answer (voted on over ``solve_samples``,
    checked against executed programs with ``solve_check``).

    Uses the run's model (the delegate's on the ``delegate`` rung) and its tool set (the
    program check).
    """
    ctx, problem = runtime.context, task["problem"]
    res = Resources.of(ctx)
    policy = POLICIES[task.get("policy") or "planner"]
    if not policy.planner and problem.get("rung") != "final":
        # Every rung answers from the knowledge read, never from the problem's own check
        # (an executed program's output): samples and the delegate must be independent of
        # it, or they only echo it (the delegate answered a bare number after a wrong one).
        read = {**problem, "evidence": [e for e in problem["evidence"] if not _is_check(e)]}
        if not read["evidence"] and not task["related"]:
            # nothing to read: exactly the single chain-of-thought call
            messages = system_user(prompts.COT_SYSTEM, problem["question"])
        else:
            messages = solve_messages(ctx, read, task["related"])  # type: ignore[arg-type]
        return await _climb(task, runtime, policy, messages)
    messages = solve_messages(ctx, problem, task["related"])
    reply, extra = Reply(), {}
    # no check when the tool is not in the tool set C (e.g. `--ablate tools`)
    check = ctx.solve_check if ctx.solve_check and ctx.solve_check in res.registry else ""
    if check:
        answers, outcome = await asyncio.gather(
            _answers(res, messages, reply),
            run_programs(res, check, problem["question"], task["related"],
                         allowance=task["allowance"]))
        answer, extra = _checked(problem, check, answers, outcome)
        reply.usage = add_usage(reply.usage, outcome.reply.usage)
    elif ctx.solve_samples > 1:
        answers = await _answers(res, messages, reply)
        voted = majority(answers)
        answer = answers[voted[0] if voted else 0]  # a tie goes to the greedy reply
    else:
        reply = await complete(res, messages)
        answer = final_answer(reply.text)
    update = {"answer": answer, "status": "done",
              "calls": problem["calls"] + reply.usage["calls"], **extra}
    done: Problem = {**problem, **update}  # type: ignore[typeddict-item]
    await remember(runtime.store, task["run_id"], [done])
    emit_answer(runtime, problem, update["answer"], "solve")
    return {"problems": {problem["id"]: update}, "usage": reply.usage}


async def _climb(task: Task, runtime: Runtime[Context], policy: Policy,
                 messages: list[BaseMessage]) -> dict[str, Any]:
    """One rung of the policy's ladder: new candidates, scored; accepted or in doubt."""
    ctx, problem = runtime.context, task["problem"]
    res = Resources.of(ctx)
    rung = problem.get("rung") or "attempt"
    reply, found = Reply(), []
    deduced: tuple[Candidate, Evidence] | None = None
    if rung == "delegate":
        answer = await _delegate_answer(task, res, policy, messages, reply)
        found.append(Candidate(answer=answer, kind="delegate",
                               model=ctx.delegate_model or "delegate"))
        reply.usage.update(delegate_calls=reply.usage["calls"],
                           delegate_prompt_tokens=reply.usage["prompt_tokens"],
                           delegate_completion_tokens=reply.usage["completion_tokens"])
        if policy.short_answers and task["allowance"] >= 2:  # shortened by the run's model
            found = await shorten(res, problem["question"], found, reply)
    else:
        deduced = await _deduce(task, res, reply, policy) if rung == "attempt" else None
        found = [deduced[0]] if deduced else await _new_candidates(
            task, res, policy, messages, reply, n=policy.extra_samples if rung == "samples" else 1)
    candidates = [*(problem.get("candidates") or []), *found]
    verdict = judge(policy, candidates, problem["question"])
    ok = accepted(policy, verdict)
    update: dict[str, Any] = {
        "answer": verdict.answer if verdict else (problem.get("answer") or ""),
        "confidence": verdict.confidence if verdict else 0.0, "accepted": ok,
        "candidates": candidates, "status": "done" if ok else "doubt",
        "calls": problem["calls"] + reply.usage["calls"]}
    programs = [c for c in found if c["kind"] == "program"]
    if programs:  # the executed check, shown in the tree (and kept out of later prompts)
        update["evidence"] = problem["evidence"] + [Evidence(
            source=f"tool:{policy.check}", ok=True, ref=CHECK_REF,
            content=f"executed program printed {programs[0]['answer']!r}")]
    elif deduced:  # the clauses the solver decided on, shown the same way
        update["evidence"] = problem["evidence"] + [deduced[1]]
    done: Problem = {**problem, **update}  # type: ignore[typeddict-item]
    await remember(runtime.store, task["run_id"], [done])
    emit_answer(runtime, problem, update["answer"], "solve")
    return {"problems": {problem["id"]: update}, "usage": reply.usage}


async def _delegate_answer(task: Task, res: Resources, policy: Policy,
                           messages: list[BaseMessage], reply: Reply) -> str:
    """The delegate's answer. With ``delegate_strategy="pal"`` on a policy checked by
    ``python``: one program of the delegate's, executed; when it printed no whole number,
    or one that misfits the question (:func:`misfits_question`: "-19" apples), the
    delegate's chain of thought answers too (one more call, if the task's allowance has
    it), and its answer wins unless it misfits as well. In the cascade rows of the 600 GSM8K
    and SVAMP dev items the 1.5B's program printed such an answer on 48 problems, none
    right; its chain of thought was right on 19 of them (``benchmarks/delegate_fallback.py``).
    Otherwise: the chain of thought alone."""
    ctx, question = res.settings, task["problem"]["question"]
    if not (ctx.delegate_strategy == "pal" and policy.check == "python"
            and "python" in res.registry):
        return final_answer((await complete(res, messages, llm=res.delegate_llm,
                                            reply=reply)).text)
    outcome = await run_programs(res, "python", question, task["related"],
                                 allowance=task["allowance"], samples=1, llm=res.delegate_llm)
    reply.usage = add_usage(reply.usage, outcome.reply.usage)
    printed = (outcome.answer or "").strip()
    left = task["allowance"] - outcome.reply.usage["calls"]  # a failed program may be fixed
    if _printed_answer_stands(policy, [printed], question) or left < 1:
        return printed
    text = (await complete(res, messages, llm=res.delegate_llm, reply=reply)).text
    reasoned = final_answer(text)
    return reasoned if reasoned and not misfits_question(reasoned, question) else printed or reasoned


async def _deduce(task: Task, res: Resources, reply: Reply,
                  policy: Policy) -> tuple[Candidate, Evidence] | None:
    """The decision of a solver tool on the problem, and what it decided on as evidence:
    ``calculator`` on a question that is nothing but arithmetic (a number policy; no model
    call), ``rules`` or ``order`` (the policy's check) on the model's translation of the
    problem (:mod:`lottery.nodes.formalize`). ``None`` when the question is not one for
    it, the tool is not in the tool set, the budget leaves this task fewer calls than the
    translation needs, a reply did not come out whole, or (``order``) no single option
    must hold."""
    question = task["problem"]["question"]
    arithmetic = expression(question) if policy.answer_kind == "number" else None
    tool = "calculator" if arithmetic else policy.check
    if tool not in ("calculator", "rules", "order") or tool not in res.registry:
        return None
    if arithmetic:  # exact: the model could only get it wrong (the 0.5B wrote 401 for 395)
        result = await res.registry.arun("calculator", {"expression": arithmetic})
        if not result.ok:
            return None
        answer, kind = result.output, "calculation"
        shown = [f"{arithmetic} = {answer}"]
    elif tool == "rules":
        problem = deduction(question)
        if problem is None or task["allowance"] < len(problem.sentences) + 1:
            return None
        theory = await formalize(res, problem, reply)
        if theory is None:
            return None
        result = await res.registry.arun("rules", theory.model_dump(by_alias=True))
        if not result.ok or result.output not in ("True", "False", "Unknown"):
            return None
        answer = problem.answer(result.output)  # type: ignore[arg-type]
        kind = "unproven" if result.output == "Unknown" else "proof"
        shown = [f"{result.output}: {show(theory.query)}", *(show(c) for c in theory.clauses)]
    else:
        puzzle = ordering(question)
        if puzzle is None or task["allowance"] < 1 + len(puzzle.statements) + len(puzzle.options):
            return None
        args = await formalize_order(res, puzzle, reply)
        if args is None:
            return None
        result = await res.registry.arun("order", args.model_dump())
        if not result.ok or result.output not in args.options:
            return None
        answer, kind = result.output, "proof"
        shown = [f"{answer}: {show_placement(args.options[answer])}",
                 *(show_placement(p) for p in args.statements)]
    candidate = Candidate(answer=answer, kind=kind, model=res.settings.model)  # type: ignore[typeddict-item]
    evidence = Evidence(source=f"tool:{tool}", ok=True, ref=CHECK_REF,
                        content="\n".join(shown)[:_MAX_EVIDENCE_CHARS])
    return candidate, evidence


CHECK_REF = "check"
"""``ref`` of the evidence a policy's check adds: shown, never read by a later rung."""


def _is_check(evidence: Evidence) -> bool:
    return evidence.get("ref") == CHECK_REF


async def _new_candidates(task: Task, res: Resources, policy: Policy,
                          messages: list[BaseMessage], reply: Reply, *, n: int) -> list[Candidate]:
    """``n`` reasoned answers (greedy when ``n`` is 1, else sampled in one request), with as
    many executed programs when the policy checks with one, and the passages check. A yes or
    no to a question that asks for neither is dropped (:func:`misfits_question`). An attempt
    whose answer and program agree, short of the policy's quorum, gets one more program
    (``Policy.quorum``; not with a delegate, nor with fewer than 3 calls allowed)."""
    ctx, problem = res.settings, task["problem"]
    tool = policy.check if policy.check in ARG_NAME else ""  # a program tool checks
    # no program check without the tool (`--ablate tools`), or when the budget leaves this
    # task one call (its allowance): the answer then stays unchecked
    tool = tool if tool in res.registry and task["allowance"] >= 2 else ""

    def words() -> Awaitable[list[str]]:
        return sample(res, messages, n, reply, temperature=None if n == 1 else ctx.solve_temperature)

    if not tool:
        texts, executed = await words(), []
    else:
        programs = run_programs(res, tool, problem["question"], task["related"], allowance=1,
                                samples=n, greedy=n == 1)
        if n == 1 and policy.program_first and res.can_delegate:
            outcome = await programs  # reason only when the program's answer can be confirmed
            printed = [r.output.strip() for r in outcome.runs if r.ok]
            texts = await words() if _printed_answer_stands(policy, printed, problem["question"]) else []
        else:
            texts, outcome = await asyncio.gather(words(), programs)
        reply.usage = add_usage(reply.usage, outcome.reply.usage)
        executed = [r.output.strip() for r in outcome.runs if r.ok]
    found = [Candidate(answer=final_answer(t), kind="words", model=ctx.model) for t in texts]
    if policy.short_answers and task["allowance"] >= 2:
        found = await shorten(res, problem["question"], found, reply)
    found += [Candidate(answer=e, kind="program", model=ctx.model) for e in executed]
    found = [c for c in found if not misfits_question(c["answer"], problem["question"])]
    if tool and n == 1 and task["allowance"] >= 3 and not res.can_delegate \
            and wants_confirmation(policy, found):
        # the answer and the program agree: a program written after the worked examples (a
        # second way to write it, greedy: the same question gets the same confidence). Not
        # with a delegate: the large model's compute is then the budget, and confirming
        # would cost 6% of it on GSM8K; the pair stays accepted at 2/3.
        third = await run_programs(res, tool, problem["question"], task["related"],
                                   allowance=1, samples=1, shots=len(prompts.PAL_EXAMPLES))
        reply.usage = add_usage(reply.usage, third.reply.usage)
        found += [Candidate(answer=r.output.strip(), kind="program", model=ctx.model)
                  for r in third.runs if r.ok]
    if policy.check == "passages":
        found += [Candidate(answer=c["answer"], kind="passages") for c in found
                  if in_passages(c["answer"], problem["evidence"])
                  and not echoes_question(c["answer"], problem["question"])]
    return found


SHORTEN_OVER_WORDS = 4
"""Answers of more words than this are reduced to the answer alone (a title may be long,
a name or a date is not)."""


async def shorten(res: Resources, question: str, found: list[Candidate],
                  reply: Reply) -> list[Candidate]:
    """Answers reduced to the answer alone by JSON-schema constrained calls of the run's model
    (in parallel, counted in ``reply``), typed by the question (:func:`choices_of`).

    Where the question offers choices (yes or no; the two names of "Which ..., A or B?"),
    every answer that is not one of them is reduced to one of them. Otherwise a long answer
    is reduced to a span of itself, and kept as it is when the reply is not JSON or names
    something the full answer does not hold: asked for a span, the 0.5B answered "No" to
    "Which film director is younger, Robert Z. Leonard or Sinclair Hill?" after a sentence
    naming Sinclair Hill, and that dropped 8 of 100 HotpotQA answers."""
    choices = choices_of(question)
    offered = {_words(c) for c in choices}
    todo = [i for i, c in enumerate(found)
            if (_words(c["answer"]) not in offered if choices
                else len(c["answer"].split()) > SHORTEN_OVER_WORDS)]
    if not todo:
        return found
    schema = ShortAnswer.json_schema(choices)
    replies = await asyncio.gather(*(complete(
        res, system_user(prompts.SHORT_SYSTEM, prompts.SHORT_USER.format(
            question=question, answer=found[i]["answer"][:600])),
        json_schema=schema, max_tokens=48, step="short") for i in todo))
    shortened = list(found)
    for i, short in zip(todo, replies, strict=True):
        reply.usage = add_usage(reply.usage, short.usage)
        parsed, _ = parse_structured(short.text, ShortAnswer)
        span = parsed.answer.strip() if parsed is not None else ""
        if span and (_words(span) in offered if choices
                     else _holds(found[i]["answer"], span)):
            shortened[i] = Candidate(**{**found[i], "answer": span})
    return shortened


def _words(text: str) -> str:
    """``text`` lower-cased, its spacing and its end punctuation evened out, for comparing."""
    return " ".join(text.lower().split()).strip(" .!?\"'")


def _holds(text: str, span: str) -> bool:
    """Whether ``text`` holds ``span`` word for word, case, spacing and end marks aside."""
    key = _words(span)
    return bool(key) and re.search(rf"(?<!\w){re.escape(key)}(?!\w)", _words(text)) is not None


_OPTIONS = re.compile(r",\s*([^,?]{2,80}?)\s+or\s+([^,?]{2,80}?)\s*\?\s*$", re.I)


def choices_of(question: str) -> tuple[str, ...]:
    """The answers a question allows, when it says: ``("yes", "no")`` for one that asks yes
    or no ("Were both ...?"), the two names of one that asks to choose ("Which film director
    is younger, Robert Z. Leonard or Sinclair Hill?"), else none: any span."""
    if asks_yes_no(question):  # "Does A or B play for Murcia?" asks for a name
        return () if re.search(r"\bor\b", question, re.I) else ("yes", "no")
    found = _OPTIONS.search(question.strip())
    if not found:
        return ()
    return tuple(o.strip(" \"'") for o in found.groups())


def in_passages(answer: str, evidence: list[Evidence]) -> bool:
    """Whether retrieved passages contain ``answer`` (word for word, case aside): the
    knowledge check. A yes/no answer or a lone letter proves nothing this way."""
    key = _words(answer)
    if len(key) < 2 or key in ("yes", "no", "true", "false", "unknown"):
        return False
    return _holds(" ".join(e["content"] for e in evidence if e["source"].startswith("kb:")),
                  answer)


_CHOICE = re.compile(r"\bor\b|\bboth\b|\bsame\b|\beither\b", re.I)


_YES_NO_QUESTION = re.compile(r"^\W*(?:is|are|was|were|do|does|did|can|could|has|have|had|will|"
                              r"would|should|shall|may|might|must)\b", re.I)


def asks_yes_no(question: str) -> bool:
    """Whether a question asks yes or no: it starts with its verb ("Were both ...?")."""
    return _YES_NO_QUESTION.match(question) is not None


def _printed_answer_stands(policy: Policy, printed: list[str], question: str) -> bool:
    """Whether a program's printed answer can stand (:func:`confirmable`), once answers of
    the wrong shape for the question are left out (:func:`misfits_question`)."""
    fits = [p for p in printed if p and not misfits_question(p, question)]
    return confirmable(fits, policy.answer_kind)


_HOW_MANY = re.compile(r"\bhow (?:many|much)\b", re.I)


def misfits_question(answer: str, question: str) -> bool:
    """An answer of the wrong shape for its question; such a candidate is dropped, so the
    problem climbs on:

    - a yes or no where the question asks for no such thing ("Which film ...?" answered
      "No"). On 100 HotpotQA items the 0.5B gave 8 such answers and on 100 MuSiQue items 9,
      none right; a question that asks yes or no starts with its verb ("Were both ...?");
    - zero or a negative number for "how many" or "how much". No gold answer of the 600
      GSM8K and SVAMP dev items is one, and every such answer in the committed rows was
      wrong (the 0.5B's "-6" for "how many more bottles of regular soda than diet soda").
    """
    if answer.strip(" .!").lower() in ("yes", "no"):
        return not asks_yes_no(question)
    if _HOW_MANY.search(question):
        key = answer_key(answer, "number")
        try:
            return key is not None and float(key) <= 0
        except ValueError:
            return False
    return False


def echoes_question(answer: str, question: str) -> bool:
    """An answer the question itself names, where the question offers no choice between
    names ("Which ... X or Y?"): the passages hold it because the question is about it.
    On 100 HotpotQA items, 21 of the 0.5B's 30 answers named in the question were wrong."""
    key = _words(answer)
    return len(key) > 2 and key in _words(question) and not _CHOICE.search(question)


async def _answers(res: Resources, messages: list[BaseMessage], reply: Reply) -> list[str]:
    """The final answers of one greedy reply and ``solve_samples - 1`` sampled ones.

    The samples go in one request (shared prefill), sent together with the greedy one;
    the greedy answer comes first, so votes that tie go to the model's single best guess.
    """
    ctx = res.settings
    requests = [sample(res, messages, 1, reply)]
    if ctx.solve_samples > 1:
        requests.append(sample(res, messages, ctx.solve_samples - 1, reply,
                               temperature=ctx.solve_temperature))
    batches = await asyncio.gather(*requests)
    return [final_answer(t) for batch in batches for t in batch]


def _checked(problem: Problem, tool: str, answers: list[str],
             outcome: ProgramOutcome) -> tuple[str, dict[str, Any]]:
    """The cross-checked answer, and the fields that record the check on the problem."""
    executed = [r.output.strip() for r in outcome.runs if r.ok]
    chosen = cross_check(answers, executed)
    answer = chosen.answer if chosen else ""
    support = {"words": chosen.words, "programs": chosen.programs} if chosen else {}
    fields: dict[str, Any] = {"check": {
        "tool": tool, "answers": answers, "programs": executed,
        "failed_programs": len(outcome.runs) - len(executed), "support": support}}
    if executed:  # the program's result is evidence of the answer, as a tool step's is
        content = (f"{outcome.summary}; chosen {answer!r}: {support['words']} of "
                   f"{len(answers)} reasoned answers and {support['programs']} programs reach it")
        fields["evidence"] = problem["evidence"] + [Evidence(
            source=f"tool:{tool}", content=content, ref=outcome.program or "", ok=True)]
    return answer, fields


def solve_messages(ctx: Context, problem: Problem,
                   related: list[dict[str, str]]) -> list[BaseMessage]:
    """The solve prompt; evidence and earlier results are shortened to fit the window."""
    evidence = [f"({e['source']}) {_call_of(e)}{e['content'][:_MAX_EVIDENCE_CHARS]}"
                for e in problem["evidence"]]
    earlier = [prompts.RESULT_LINE.format(**r) for r in related]
    evidence_block = prompts.EVIDENCE_BLOCK.format(items="") if evidence else ""
    related_block = prompts.RELATED_BLOCK.format(items="") if earlier else ""
    fixed = prompts.SOLVE_USER.format(evidence=evidence_block, related=related_block,
                                      question=problem["question"])
    shown = fit(evidence + earlier, room(ctx, prompts.SOLVE_SYSTEM, fixed), per_item=_MARK)
    user = prompts.SOLVE_USER.format(
        evidence=_block(prompts.EVIDENCE_BLOCK, [f"[{i}] {line}" for i, line in
                                                  enumerate(shown[:len(evidence)], start=1)]),
        related=_block(prompts.RELATED_BLOCK, [f"- {line}" for line in shown[len(evidence):]]),
        question=problem["question"],
    )
    return system_user(prompts.SOLVE_SYSTEM, user)


def _block(template: str, lines: list[str]) -> str:
    return template.format(items="\n".join(lines)) if lines else ""


def _call_of(evidence: Evidence) -> str:
    """A tool result's arguments, so the model sees what the number is the result of
    (``17 * 23 + 4 -> 395``, not a bare ``395``)."""
    if not evidence["source"].startswith("tool:") or not evidence.get("ref"):
        return ""
    try:
        args = json.loads(evidence["ref"])
    except (TypeError, ValueError):
        return ""
    shown = " ".join(str(v) for v in args.values()) if isinstance(args, dict) else str(args)
    return f"{shown[:200]} -> " if shown else ""
