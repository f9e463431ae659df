"""External tools C and their registry."""

from lottery.tools.calculator import calculate, make_calculator
from lottery.tools.registry import ToolRegistry, ToolResult

__all__ = ["ToolRegistry", "ToolResult", "calculate", "default_registry", "make_calculator"]


def default_registry() -> ToolRegistry:
    """The built-in tools that need no external resource."""
    return ToolRegistry([make_calculator()])
