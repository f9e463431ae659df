"""External tools C and their registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lottery.tools.calculator import calculate, make_calculator
from lottery.tools.knowledge import make_knowledge_search
from lottery.tools.memory import make_memory_tools
from lottery.tools.order import make_order_tool
from lottery.tools.program import PROGRAM_TOOLS, make_logic_tool, make_python_tool
from lottery.tools.registry import ToolRegistry, ToolResult
from lottery.tools.rules import make_rules_tool
from lottery.tools.sandbox import SandboxLimits, run_python
from lottery.tools.web import make_web_search

if TYPE_CHECKING:
    from langgraph.store.base import BaseStore

    from lottery.stores.knowledge import KnowledgeBase

__all__ = [
    "PROGRAM_TOOLS", "SandboxLimits", "ToolRegistry", "ToolResult", "calculate",
    "default_registry", "make_calculator", "make_knowledge_search", "make_logic_tool",
    "make_memory_tools", "make_order_tool", "make_python_tool", "make_rules_tool",
    "make_web_search", "run_python",
]


def default_registry(
    *, knowledge: KnowledgeBase | None = None, store: BaseStore | None = None,
    web_search: bool = False, limits: SandboxLimits | None = None,
) -> ToolRegistry:
    """The built-in tools.

    Args:
        knowledge: the knowledge base behind ``knowledge_search`` (left out when ``None``).
        store: memory M for the memory tools; ``None`` uses the running graph's store.
        web_search: add ``web_search`` (needs the ``wikipedia`` package and network access).
        limits: sandbox limits of ``python`` and ``logic``.
    """
    tools = [make_calculator(), make_python_tool(limits), make_logic_tool(limits),
             make_rules_tool(), make_order_tool(), *make_memory_tools(store)]
    if knowledge is not None:
        tools.append(make_knowledge_search(knowledge))
    if web_search:
        tools.append(make_web_search())
    return ToolRegistry(tools)
