"""The tool set C: a registry of typed tools the planner can choose from.

Tools are LangChain tools (``BaseTool``): a name, a description, an argument
schema (pydantic) and a coroutine or function. Users extend the registry with
``@langchain_core.tools.tool`` functions or any ``BaseTool``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from langchain_core.tools import BaseTool
from pydantic import ValidationError

from lottery.errors import (
    SandboxUnavailableError,
    ToolArgumentsError,
    ToolError,
    ToolNotFoundError,
)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What one tool execution produced."""

    tool: str
    args: dict[str, Any]
    ok: bool
    output: str
    error: str | None
    duration_s: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "args": self.args,
            "ok": self.ok,
            "output": self.output,
            "error": self.error,
            "duration_s": round(self.duration_s, 4),
        }


class ToolRegistry:
    """A named set of tools; validates arguments before anything runs."""

    def __init__(self, tools: Iterable[BaseTool] = ()) -> None:
        self._tools: dict[str, BaseTool] = {}
        for t in tools:
            self.register(t)

    def register(self, tool: BaseTool) -> BaseTool:
        """Add (or replace) a tool; returns it so this works as a decorator too."""
        if not isinstance(tool, BaseTool):
            raise TypeError(f"expected a LangChain BaseTool, got {type(tool).__name__}")
        self._tools[tool.name] = tool
        return tool

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> BaseTool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ToolNotFoundError(f"unknown tool {name!r} (known tools: {known})") from None

    def args_schema(self, name: str) -> dict[str, Any]:
        """JSON schema of a tool's arguments."""
        return self.get(name).tool_call_schema.model_json_schema()

    def describe(self) -> str:
        """One line per tool for the planner prompt."""
        lines = []
        for name in self.names():
            t = self._tools[name]
            props = self.args_schema(name).get("properties", {})
            args = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in props.items())
            lines.append(f"- {name}({args}): {t.description.strip().splitlines()[0]}")
        return "\n".join(lines)

    def validate(self, name: str, args: dict[str, Any] | str | None) -> dict[str, Any]:
        """Check ``args`` against the tool's schema; raise before anything runs."""
        tool = self.get(name)
        if isinstance(args, str):
            try:
                parsed = json.loads(args)
            except json.JSONDecodeError:
                # A bare string goes to a tool's single argument.
                props = list(tool.tool_call_schema.model_json_schema().get("properties", {}))
                if len(props) != 1:
                    raise ToolArgumentsError(
                        f"tool {name!r} needs a JSON object of arguments, got text"
                    ) from None
                parsed = {props[0]: args}
            args = parsed
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ToolArgumentsError(f"tool {name!r} needs a JSON object of arguments")
        try:
            model = tool.tool_call_schema.model_validate(args)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "arguments"
            raise ToolArgumentsError(
                f"invalid arguments for tool {name!r}: {where}: {first.get('msg')}"
            ) from None
        return model.model_dump(exclude_unset=True)

    async def arun(self, name: str, args: dict[str, Any] | str | None) -> ToolResult:
        """Validate and run one tool; a failure of the tool itself is a result, not a raise.

        Raises:
            ToolNotFoundError: the tool is not registered (nothing runs).
            ToolArgumentsError: the arguments fail the schema (nothing runs).
            SandboxUnavailableError: a program tool, where the kernel cannot confine it.
        """
        valid = self.validate(name, args)
        tool = self.get(name)
        start = time.perf_counter()
        try:
            out = await tool.ainvoke(valid)
        except SandboxUnavailableError:
            raise  # no program can run here: the run stops instead of guessing without C
        except ToolError as exc:
            return ToolResult(name, valid, False, "", str(exc), time.perf_counter() - start)
        except Exception as exc:  # a user tool's own failure becomes evidence, not a crash
            msg = f"{type(exc).__name__}: {exc}"
            return ToolResult(name, valid, False, "", msg, time.perf_counter() - start)
        text = out if isinstance(out, str) else json.dumps(out, default=str)
        return ToolResult(name, valid, True, text, None, time.perf_counter() - start)
