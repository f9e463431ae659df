"""Algorithm 1 of the Lottery LLM hypothesis, as a LangGraph state machine.

    START -> schedule -> {planner | retrieve | tool | solve | merge}* -> schedule -> ... -> finalize

``schedule`` fans out one ``Send`` per ready problem, so independent
sub-problems run in parallel; every step returns to ``schedule``, which applies
the rules (dependencies, depth, budget) before the next fan-out.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from lottery.core.context import Context
from lottery.core.state import InputState, OutputState, State
from lottery.graphs.retry import MODEL_RETRY
from lottery.nodes.merge import merge
from lottery.nodes.planner import planner
from lottery.nodes.retrieve import retrieve
from lottery.nodes.schedule import dispatch, finalize, schedule
from lottery.nodes.solve import solve
from lottery.nodes.tool import tool
from lottery.nodes.traced import traced

STEPS = ("planner", "retrieve", "tool", "solve", "merge")

RECURSION_LIMIT = 500
"""Supersteps allowed per run; the call budget ends a run long before this."""


def build_graph() -> StateGraph:
    """The uncompiled builder: compile it with your own checkpointer and store."""
    builder = StateGraph(State, context_schema=Context, input_schema=InputState,
                         output_schema=OutputState)
    builder.add_node("schedule", traced(schedule))
    builder.add_node("planner", traced(planner), retry_policy=MODEL_RETRY)
    builder.add_node("retrieve", traced(retrieve), retry_policy=MODEL_RETRY)
    builder.add_node("tool", traced(tool), retry_policy=MODEL_RETRY)
    builder.add_node("solve", traced(solve), retry_policy=MODEL_RETRY)
    builder.add_node("merge", traced(merge), retry_policy=MODEL_RETRY)
    builder.add_node("finalize", traced(finalize))
    builder.add_edge(START, "schedule")
    builder.add_conditional_edges("schedule", dispatch, [*STEPS, "finalize"])
    for step in STEPS:
        builder.add_edge(step, "schedule")
    builder.add_edge("finalize", END)
    return builder


graph = build_graph().compile(name="algorithm1").with_config(recursion_limit=RECURSION_LIMIT)
