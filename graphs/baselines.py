"""What the baseline graphs share: one node that answers the question in one step."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from lottery.core.context import Context
from lottery.core.state import OutputState, QuestionInput, State, Usage, new_problem
from lottery.graphs.retry import MODEL_RETRY
from lottery.nodes.llm import complete, final_answer, system_user
from lottery.nodes.schedule import ROOT, run_id_of, validate_question
from lottery.resources import Resources

Answerer = Callable[[Resources, str], Awaitable[tuple[str, Usage]]]
"""Answers a question with the run's resources: the answer text and what it cost."""


def one_step_graph(answerer: Answerer, *, reason: str) -> StateGraph:
    """A graph with one node that answers the question with ``answerer``."""

    async def answer(
        state: State, runtime: Runtime[Context], config: RunnableConfig
    ) -> dict[str, Any]:
        ctx = runtime.context
        question = validate_question(state.get("question"), ctx.max_input_chars)
        text, usage = await answerer(Resources.of(ctx), question)
        root = new_problem(ROOT, question)
        root.update(decision="solve", reason=reason, answer=text, status="done",
                    calls=usage["calls"])
        return {"problems": {ROOT: root}, "usage": usage, "answer": text,
                "best_effort": False, "stop_reason": None, "run_id": run_id_of(config)}

    builder = StateGraph(State, context_schema=Context, input_schema=QuestionInput,
                         output_schema=OutputState)
    builder.add_node("answer", answer, retry_policy=MODEL_RETRY)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder


def single_call_graph(system_prompt: str, *, reason: str, max_tokens: int | None) -> StateGraph:
    """A graph that answers with one model call, under ``system_prompt``."""

    async def answerer(res: Resources, question: str) -> tuple[str, Usage]:
        reply = await complete(res, system_user(system_prompt, question),
                               max_tokens=max_tokens or res.settings.max_completion_tokens)
        return final_answer(reply.text), reply.usage

    return one_step_graph(answerer, reason=reason)
