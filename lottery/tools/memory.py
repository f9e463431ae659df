"""Memory tools over M (a LangGraph ``BaseStore``): read, write and copy.

These are the basic operations of the blog's Ability 4. Inside a graph the
store is the one the graph was compiled with (``langgraph.config.get_store``);
outside a graph pass one explicitly.
"""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from langgraph.store.base import BaseStore
from pydantic import BaseModel, Field

from lottery.errors import ToolError

DEFAULT_NAMESPACE = "memory/notes"
_LABEL = re.compile(r"^[A-Za-z0-9_\-:]{1,64}$")
_MAX_VALUE_CHARS = 20_000


def parse_namespace(text: str) -> tuple[str, ...]:
    """``"memory/notes"`` -> ``("memory", "notes")``; labels are plain words."""
    parts = tuple(p for p in text.strip().strip("/").split("/") if p)
    if not parts or len(parts) > 6 or not all(_LABEL.match(p) for p in parts):
        raise ValueError("a namespace is 1-6 '/'-separated words of letters, digits, _ - :")
    return parts


_NS_PATTERN = r"^/?[A-Za-z0-9_\-:]{1,64}(/[A-Za-z0-9_\-:]{1,64}){0,5}/?$"


def _ns_field(**kw: Any) -> Any:
    return Field(default=DEFAULT_NAMESPACE, pattern=_NS_PATTERN,
                 description="Where: 1-6 '/'-separated words, e.g. memory/notes.", **kw)


class ReadArgs(BaseModel):
    """Arguments of ``memory_read``."""

    key: str = Field(min_length=1, max_length=200, description="The entry's key.")
    namespace: str = _ns_field()


class WriteArgs(BaseModel):
    """Arguments of ``memory_write``."""

    key: str = Field(min_length=1, max_length=200, description="The entry's key.")
    value: str = Field(max_length=_MAX_VALUE_CHARS, description="What to remember.")
    namespace: str = _ns_field()


class CopyArgs(BaseModel):
    """Arguments of ``memory_copy``."""

    source_key: str = Field(min_length=1, max_length=200)
    target_key: str = Field(min_length=1, max_length=200)
    source_namespace: str = _ns_field()
    target_namespace: str = _ns_field()


def _resolve(store: BaseStore | None) -> BaseStore:
    if store is not None:
        return store
    try:
        from langgraph.config import get_store

        found = get_store()
    except (RuntimeError, KeyError):  # not inside a graph run
        found = None
    if found is None:
        raise ToolError("memory tools need a store: run them inside a graph compiled with "
                        "store=..., or pass one to make_memory_tools(store)")
    return found


def make_memory_tools(store: BaseStore | None = None) -> list[BaseTool]:
    """``memory_read``, ``memory_write`` and ``memory_copy`` over ``store`` (or the graph's)."""

    async def memory_read(key: str, namespace: str = DEFAULT_NAMESPACE) -> str:
        item = await _resolve(store).aget(parse_namespace(namespace), key)
        if item is None:
            raise ToolError(f"no memory entry {key!r} in {namespace!r}")
        return _text(item.value)

    async def memory_write(key: str, value: str, namespace: str = DEFAULT_NAMESPACE) -> str:
        await _resolve(store).aput(parse_namespace(namespace), key, {"value": value}, index=False)
        return f"stored {key!r} in {namespace!r}"

    async def memory_copy(source_key: str, target_key: str,
                          source_namespace: str = DEFAULT_NAMESPACE,
                          target_namespace: str = DEFAULT_NAMESPACE) -> str:
        m = _resolve(store)
        item = await m.aget(parse_namespace(source_namespace), source_key)
        if item is None:
            raise ToolError(f"no memory entry {source_key!r} in {source_namespace!r} to copy")
        await m.aput(parse_namespace(target_namespace), target_key, dict(item.value), index=False)
        return f"copied {source_namespace}/{source_key} to {target_namespace}/{target_key}"

    return [
        StructuredTool.from_function(
            coroutine=memory_read, name="memory_read", args_schema=ReadArgs,
            description="Read a remembered value (an earlier result or note) by key."),
        StructuredTool.from_function(
            coroutine=memory_write, name="memory_write", args_schema=WriteArgs,
            description="Remember a value under a key for later steps."),
        StructuredTool.from_function(
            coroutine=memory_copy, name="memory_copy", args_schema=CopyArgs,
            description="Copy a remembered value to another key or namespace."),
    ]


def _text(value: dict[str, Any]) -> str:
    if set(value) == {"value"} and isinstance(value["value"], str):
        return value["value"]
    return json.dumps(value, ensure_ascii=False, default=str)
