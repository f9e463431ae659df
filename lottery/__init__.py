"""lottery-llm: a small language model doing the work of a large one, with Algorithm 1."""

from lottery.api import (
    RunUsage,
    SolveResult,
    asolve,
    astream_events,
    build_graph,
    make_context,
    make_resources,
    solve,
)
from lottery.core.context import Context
from lottery.errors import LotteryError
from lottery.resources import Resources

__all__ = [
    "Context",
    "LotteryError",
    "Resources",
    "RunUsage",
    "SolveResult",
    "asolve",
    "astream_events",
    "build_graph",
    "make_context",
    "make_resources",
    "solve",
]
__version__ = "0.1.0"
