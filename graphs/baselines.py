"""What the two baseline graphs share: one model call that answers the question."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from lottery.graphs.context import Context
from lottery.graphs.retry import MODEL_RETRY
from lottery.graphs.state import OutputState, QuestionInput, State, new_problem
from lottery.nodes.llm import complete, final_answer, system_user
from lottery.nodes.schedule import ROOT, run_id_of, validate_question


def single_call_graph(system_prompt: str, *, reason: str, max_tokens: int | None) -> StateGraph:
    """A graph with one node that answers with one model call, under ``system_prompt``."""

    async def answer(
        state: State, runtime: Runtime[Context], config: RunnableConfig
    ) -> dict[str, Any]:
        ctx = runtime.context
        question = validate_question(state.get("question"), ctx.max_input_chars)
        reply = await complete(ctx, system_user(system_prompt, question),
                               max_tokens=max_tokens or ctx.max_completion_tokens)
        root = new_problem(ROOT, question)
        text = final_answer(reply.text)
        root.update(decision="solve", reason=reason, answer=text, status="done",
                    calls=reply.usage["calls"])
        return {"problems": {ROOT: root}, "usage": reply.usage, "answer": text,
                "best_effort": False, "stop_reason": None, "run_id": run_id_of(config)}

    builder = StateGraph(State, context_schema=Context, input_schema=QuestionInput,
                         output_schema=OutputState)
    builder.add_node("answer", answer, retry_policy=MODEL_RETRY)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder
