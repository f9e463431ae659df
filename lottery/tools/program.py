"""Program tools: ``python`` (program-aided reasoning) and ``logic`` (a z3 solver program).

Both run the program in the sandbox (:mod:`lottery.tools.sandbox`) with the
same limits; the answer is what the program printed last or returned.
"""

from __future__ import annotations

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from lottery.tools.sandbox import SandboxLimits, run_python


class PythonArgs(BaseModel):
    """Arguments of the ``python`` tool."""

    code: str = Field(min_length=1, max_length=20_000,
                      description="A short Python program that prints or returns the answer.")


class LogicArgs(BaseModel):
    """Arguments of the ``logic`` tool."""

    program: str = Field(min_length=1, max_length=20_000,
                         description="A Python program using z3 that prints the conclusion.")


PROGRAM_ARG = {"python": "code", "logic": "program"}
"""The program tools (their argument is a program the model writes in a separate call), and
the argument that carries it: the field of :class:`PythonArgs` / :class:`LogicArgs`."""

PROGRAM_TOOLS = tuple(PROGRAM_ARG)


def make_python_tool(limits: SandboxLimits | None = None) -> BaseTool:
    """The ``python`` tool: run a short program in the sandbox; its answer is the result."""

    async def python(code: str) -> str:
        return (await run_python(code, limits)).answer

    return StructuredTool.from_function(
        coroutine=python, name="python", args_schema=PythonArgs,
        description=("Compute an exact answer with a short Python program (arithmetic, "
                     "counting, word problems with numbers). Runs in a sandbox."),
    )


def make_logic_tool(limits: SandboxLimits | None = None) -> BaseTool:
    """The ``logic`` tool: run a z3 solver program in the sandbox."""

    async def logic(program: str) -> str:
        return (await run_python(program, limits)).answer

    return StructuredTool.from_function(
        coroutine=logic, name="logic", args_schema=LogicArgs,
        description=("Decide a logic or constraint problem (true/false/unknown, which option "
                     "must hold) with the z3 solver. Runs in a sandbox."),
    )
