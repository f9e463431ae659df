"""Baseline: the model answers in one chain-of-thought call."""

from langgraph.graph import StateGraph

from lottery.graphs.baselines import single_call_graph
from lottery.nodes import prompts


def build_graph() -> StateGraph:
    """The uncompiled builder of the chain-of-thought baseline."""
    return single_call_graph(prompts.COT_SYSTEM, reason="chain-of-thought baseline", max_tokens=None)


graph = build_graph().compile(name="cot")
