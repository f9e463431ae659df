"""A question whose sub-problems run one after another, and a scripted model for it.

Used by the crash test: a slow model makes the run last long enough to kill it
between two sub-problems. Every answered call is appended to a log file first, so
the test knows which calls the killed process had completed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence

from langchain_core.messages import BaseMessage

from lottery.testing import ScriptedChatModel
from tests.unit.scripted import decision, question_of, step_of

CHAIN_Q = "Start from seven, double it, then add one: what do you get?"
STEPS = ["What is seven as a number?", "What is twice #1?", "What is #2 plus one?"]
ANSWERS = {"What is seven as a number?": "7", "What is twice 7?": "14", "What is 14 plus one?": "15"}


def chain_plans(question: str) -> str:
    if question == CHAIN_Q:
        subs = [{"question": q, "depends_on": [i] if i else []} for i, q in enumerate(STEPS)]
        return decision("divide", subproblems=subs)
    return decision("solve")


def chain_model(delay_s: float = 0.0, log: str | None = None) -> ScriptedChatModel:
    """The chain's scripted model; with ``log``, each answered call is appended there as JSON."""

    def respond(messages: Sequence[BaseMessage]) -> str:
        step, question = step_of(messages), question_of(messages)
        if step == "plan":
            reply = chain_plans(question)
        elif step == "merge":
            reply = "Answer: 15"
        else:
            reply = "Answer: " + ANSWERS.get(question, "?")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps([step, question]) + "\n")
                f.flush()
                os.fsync(f.fileno())
        return reply

    return ScriptedChatModel(respond=respond, delay_s=delay_s)


def main() -> None:
    """``python -m tests.integration.chain DATABASE_URL RUN_ID LOG``: the run to be killed."""
    from lottery import asolve

    url, run_id, log = sys.argv[1:4]
    asyncio.run(asolve(CHAIN_Q, chat_model=chain_model(delay_s=0.5, log=log), thread_id=run_id,
                       database_url=url))


if __name__ == "__main__":
    main()
