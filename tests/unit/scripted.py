"""A small script language for ScriptedChatModel: reply by step kind and question text."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from lottery.testing import ScriptedChatModel


def step_of(messages: Sequence[BaseMessage] | dict[str, Any]) -> str:
    """The step of a model call: from its record's tags (``model.calls``), else read off
    the prompt (for a prompt alone)."""
    if isinstance(messages, dict):
        if messages.get("step"):
            return messages["step"]
        messages = messages["messages"]
    system = str(messages[0].content)
    if system.startswith(("You plan", "Split the question")):
        return "plan"
    if system.startswith(("Solve the problem by writing", "Decide the problem with the z3")):
        return "program"
    if system.startswith("Combine the answers"):
        return "merge"
    if system.startswith("Write the arguments"):
        return "args"
    return "solve"


def question_of(messages: Sequence[BaseMessage]) -> str:
    user = str(messages[1].content)
    found = re.findall(r"(?:Main question|Question): (.*)", user)
    return found[-1].strip() if found else user


def decision(action: str, **fields: Any) -> str:
    return json.dumps({"action": action, "reason": f"scripted {action}", **fields})


def scripted(
    plans: dict[str, str] | Callable[[str], str] | None = None,
    answers: dict[str, str] | Callable[[str, str], str] | None = None,
    **kwargs: Any,
) -> ScriptedChatModel:
    """A model that plans by question (default: solve) and answers by question (default: '42')."""

    def respond(messages: Sequence[BaseMessage], step: str | None = None) -> str:
        # routed by the node that made the call: rewording a prompt cannot misroute it
        step, question = step or step_of(messages), question_of(messages)
        if step == "plan":
            if callable(plans):
                return plans(question)
            return (plans or {}).get(question, decision("solve"))
        if callable(answers):
            return answers(step, str(messages[1].content))
        return "Answer: " + (answers or {}).get(question, "42")

    return ScriptedChatModel(respond=respond, **kwargs)
