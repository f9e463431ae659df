"""Baseline: the model answers in one call, no reasoning, no tools."""

from langgraph.graph import StateGraph

from lottery.graphs.baselines import single_call_graph
from lottery.nodes import prompts


def build_graph() -> StateGraph:
    """The uncompiled builder of the direct baseline."""
    return single_call_graph(prompts.DIRECT_SYSTEM, reason="direct baseline", max_tokens=64)


graph = build_graph().compile(name="direct")
