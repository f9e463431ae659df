"""The tool registry and the calculator: validation before anything runs, exact arithmetic."""

from __future__ import annotations

import pytest
from langchain_core.tools import tool

from lottery.errors import ToolArgumentsError, ToolError, ToolNotFoundError
from lottery.tools import ToolRegistry, calculate, default_registry


@pytest.mark.parametrize("expr,value", [
    ("17 * 23 + 4", "395"),
    ("0.1 + 0.2", "0.3"),
    ("1/3", "1/3 (~0.333333)"),
    ("2^10", "1024"),
    ("(48 - 12) / 4 * 3", "27"),
    ("1,000 * 3", "3000"),
    ("sqrt(16) + max(1, 2)", "6"),
])
def test_calculator_is_exact(expr, value):
    assert calculate(expr) == value


@pytest.mark.parametrize("expr", ["__import__('os').system('id')", "open('/etc/passwd')",
                                  "1/0", "9**9**9", "", "x + 1"])
def test_calculator_rejects_anything_but_arithmetic(expr):
    with pytest.raises(ToolError):
        calculate(expr)


async def test_unknown_tool_and_bad_arguments_are_rejected_before_running():
    ran = []

    @tool
    def echo(text: str, times: int) -> str:
        """Repeat text."""
        ran.append(text)
        return text * times

    registry = ToolRegistry([echo])
    with pytest.raises(ToolNotFoundError, match="unknown tool 'nope'"):
        await registry.arun("nope", {})
    with pytest.raises(ToolArgumentsError, match="times"):
        await registry.arun("echo", {"text": "a", "times": "many"})
    assert ran == []
    result = await registry.arun("echo", {"text": "ab", "times": 2})
    assert result.ok and result.output == "abab"


async def test_a_failing_tool_is_a_result_not_a_crash():
    result = await default_registry().arun("calculator", {"expression": "1/0"})
    assert not result.ok and "division by zero" in result.error


def test_registry_describes_tools_for_the_planner():
    text = default_registry().describe()
    assert text.startswith("- calculator(expression: string):")


def test_each_program_tool_names_the_argument_that_carries_its_program():
    from lottery.tools.program import PROGRAM_ARG, LogicArgs, PythonArgs

    schemas = {"python": PythonArgs, "logic": LogicArgs}
    assert set(PROGRAM_ARG) == set(schemas)
    for name, arg in PROGRAM_ARG.items():
        assert list(schemas[name].model_fields) == [arg]
