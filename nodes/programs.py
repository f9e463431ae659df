"""Program tools in the tool node: the model writes programs, the sandbox checks them.

A 0.5B model cannot reliably put a program inside a JSON planner decision, so
for ``python`` and ``logic`` the tool node asks for the program in a call of
its own (a few-shot prompt): one greedy program and several sampled ones. It
runs each in the sandbox and votes on the EXECUTED answers, ties going to the
greedy program; a program that crashes or breaks a limit has no vote. When no
program runs, the first error goes back to the model once to fix its program.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from lottery.core.context import Context
from lottery.nodes import prompts
from lottery.nodes.llm import Reply, complete, fit, majority, room, sample
from lottery.resources import Resources
from lottery.tools.program import PROGRAM_ARG
from lottery.tools.registry import ToolResult

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)
ARG_NAME = PROGRAM_ARG
"""The argument that carries the program, per program tool (``lottery/tools/program.py``)."""


@dataclass(slots=True)
class ProgramOutcome:
    """What the program tool produced for one problem."""

    answer: str | None
    """The voted executed answer, ``None`` when no program ran."""
    program: str | None
    """A program that produced the answer (or the last one tried)."""
    votes: int = 0
    runs: list[ToolResult] = field(default_factory=list)
    reply: Reply = field(default_factory=Reply)

    @property
    def summary(self) -> str:
        """The voted answer and its support, as evidence shows it: ``18 (5 of 5 programs agree)``."""
        return f"{self.answer} ({self.votes} of {len(self.runs)} programs agree)"


def program_messages(ctx: Context, tool: str, question: str,
                     related: list[dict[str, str]], shots: int | None = None) -> list[BaseMessage]:
    """The prompt that asks for a program for ``tool``: its worked examples (``shots``, by
    default ``program_shots``, of them for ``python``; all for ``logic``), then the question;
    earlier results are shortened to fit the window."""
    system, examples = ((prompts.LOGIC_SYSTEM, prompts.LOGIC_EXAMPLES) if tool == "logic"
                        else (prompts.PAL_SYSTEM, prompts.PAL_EXAMPLES))
    messages: list[BaseMessage] = [SystemMessage(system)]
    shots = ctx.program_shots if shots is None else shots
    for q, a in examples if tool == "logic" else examples[:shots]:
        messages += [HumanMessage(prompts.PROGRAM_USER.format(related="", question=q)),
                     AIMessage(a)]
    # Earlier results may repeat retrieved text: they reach the writer only as quoted data.
    lines = [prompts.RESULT_LINE.format(question=prompts.as_data(r["question"]),
                                        answer=prompts.as_data(r["answer"])) for r in related]
    frame = prompts.KNOWN_BLOCK.format(items="") if lines else ""
    shown = fit(lines, room(ctx, question, frame, *(str(m.content) for m in messages)),
                per_item=len("- \n"))
    known = prompts.KNOWN_BLOCK.format(items="\n".join(f"- {line}" for line in shown)) \
        if shown else ""
    messages.append(HumanMessage(prompts.PROGRAM_USER.format(related=known, question=question)))
    return messages


def extract_code(text: str) -> str | None:
    """The program in a reply: its (last complete) fenced block, else the reply if it parses."""
    blocks = [b.strip() for b in _FENCE.findall(text or "") if b.strip()]
    if blocks:
        return max(blocks, key=len)
    body = (text or "").strip()
    if not body:
        return None
    try:
        compile(body, "program.py", "exec")
    except (SyntaxError, ValueError):
        return None
    return body


async def run_programs(
    res: Resources, tool: str, question: str, related: list[dict[str, str]], *, allowance: int,
    samples: int | None = None, greedy: bool = True, llm: BaseChatModel | None = None,
    shots: int | None = None,
) -> ProgramOutcome:
    """Write ``samples`` programs for ``tool`` (default ``program_samples``: one greedy, the
    rest sampled; ``greedy=False``: all sampled), run them, vote; fix once on failure if
    allowed. ``shots``: worked examples in the prompt (default ``program_shots``). Uses the
    run's model (``llm`` instead: the delegate's) and its tool set (the sandboxed program
    tools)."""
    ctx, registry = res.settings, res.registry
    messages = program_messages(ctx, tool, question, related, shots)
    outcome = ProgramOutcome(answer=None, program=None)
    total = ctx.program_samples if samples is None else samples
    sampled = total - 1 if greedy else total
    # One greedy program (the model's best guess) first, then samples for the vote: the
    # vote breaks ties in favour of the first run, so the greedy program decides ties.
    # Both requests share the prompt, which a server with prefix caching prefills once.
    batches = await asyncio.gather(
        *([sample(res, messages, 1, outcome.reply, step="program", llm=llm)] if greedy else []),
        *([sample(res, messages, sampled, outcome.reply, temperature=ctx.program_temperature,
                  step="program", llm=llm)]
          if sampled > 0 else []))
    texts = [t for batch in batches for t in batch]
    programs = [c for c in (extract_code(t) for t in texts) if c]
    outcome.runs = list(await asyncio.gather(
        *(registry.arun(tool, {ARG_NAME[tool]: code}) for code in programs)))
    _vote(outcome)
    if outcome.answer is None and allowance >= 2:
        failed = next((r for r in outcome.runs if not r.ok), None)
        error = failed.error if failed else "the reply had no ```python code block"
        bad = failed.args[ARG_NAME[tool]] if failed else (texts[0] if texts else "")
        fix = [*messages, AIMessage(f"```python\n{bad}\n```"),
               HumanMessage(prompts.PROGRAM_FIX.format(error=error))]
        await complete(res, fix, reply=outcome.reply, step="program", llm=llm)
        outcome.reply.usage["repairs"] = outcome.reply.usage.get("repairs", 0) + 1
        code = extract_code(outcome.reply.text)
        if code:
            outcome.runs.append(await registry.arun(tool, {ARG_NAME[tool]: code}))
            _vote(outcome)
    if outcome.program is None and outcome.runs:
        outcome.program = outcome.runs[-1].args.get(ARG_NAME[tool])
    return outcome


def _vote(outcome: ProgramOutcome) -> None:
    ok = [r for r in outcome.runs if r.ok]
    voted = majority([r.output for r in ok])  # ties: the first run, the greedy program's
    if voted is None:
        return
    winner = ok[voted[0]]
    outcome.answer, outcome.votes = winner.output.strip(), voted[1]
    outcome.program = winner.args.get("code") or winner.args.get("program")
