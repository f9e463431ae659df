"""Every built-in tool called directly (no model, no network), and the `lottery tools` CLI."""

from __future__ import annotations

import json
import sys
import time
import types

import pytest
from langchain_core.tools import tool
from langgraph.store.memory import InMemoryStore
from typer.testing import CliRunner

from lottery.cli import app
from lottery.errors import ToolArgumentsError, ToolNotFoundError
from lottery.stores import Document, InMemoryKnowledgeBase
from lottery.tools import ToolRegistry, default_registry, make_memory_tools, make_web_search

runner = CliRunner()

ENTAILMENT = """from z3 import *
Thing = DeclareSort('Thing')
x = Const('x', Thing)
tom = Const('tom', Thing)
cat = Function('cat', Thing, BoolSort())
mammal = Function('mammal', Thing, BoolSort())
facts = [ForAll([x], Implies(cat(x), mammal(x))), cat(tom)]
def entails(f, s):
    solver = Solver(); solver.add(f); solver.add(Not(s))
    return solver.check() == unsat
st = mammal(tom)
print('True' if entails(facts, st) else 'False' if entails(facts, Not(st)) else 'Unknown')
"""


async def test_python_tool_returns_the_program_answer():
    result = await default_registry().arun("python", {"code": "def f():\n    return 3 * 14\n"})
    assert result.ok and result.output == "42"


async def test_python_tool_reports_a_sandbox_violation_as_a_failed_result():
    result = await default_registry().arun("python", {"code": "print(open('/etc/passwd').read())"})
    assert not result.ok and "not allowed" in result.error


async def test_logic_tool_decides_entailment_with_z3():
    result = await default_registry().arun("logic", {"program": ENTAILMENT})
    assert result.ok, result.error
    assert result.output == "True"


async def test_logic_tool_reports_a_solver_error():
    result = await default_registry().arun("logic", {"program": "from z3 import *\nInt('x') + 'a'"})
    assert not result.ok and "line 2" in result.error


async def test_knowledge_search_returns_the_matching_documents():
    kb = InMemoryKnowledgeBase("facts", [Document("eiffel", "The Eiffel Tower is in Paris."),
                                         Document("rome", "The Colosseum is in Rome.")])
    result = await default_registry(knowledge=kb).arun("knowledge_search",
                                                       {"query": "Eiffel Tower", "k": 1})
    assert result.ok
    hit = json.loads(result.output.splitlines()[0])
    assert hit["id"] == "eiffel" and "Paris" in hit["text"]


async def test_memory_write_read_copy_over_the_store():
    store = InMemoryStore()
    registry = ToolRegistry(make_memory_tools(store))
    assert (await registry.arun("memory_write", {"key": "eggs", "value": "9"})).ok
    assert (await registry.arun("memory_read", {"key": "eggs"})).output == "9"
    copy = await registry.arun("memory_copy", {"source_key": "eggs", "target_key": "eggs_left",
                                               "target_namespace": "memory/final"})
    assert copy.ok
    read = await registry.arun("memory_read", {"key": "eggs_left", "namespace": "memory/final"})
    assert read.output == "9"
    assert (await store.aget(("memory", "final"), "eggs_left")).value == {"value": "9"}
    missing = await registry.arun("memory_read", {"key": "nope"})
    assert not missing.ok and "no memory entry 'nope'" in missing.error


async def test_memory_tools_reject_bad_namespaces_before_running():
    registry = ToolRegistry(make_memory_tools(InMemoryStore()))
    with pytest.raises(ToolArgumentsError, match="namespace"):
        await registry.arun("memory_write", {"key": "k", "value": "v", "namespace": "a.b/../c"})


async def test_memory_tools_outside_a_graph_without_a_store_say_so():
    result = await ToolRegistry(make_memory_tools()).arun("memory_read", {"key": "k"})
    assert not result.ok and "need a store" in result.error


def test_web_search_is_off_by_default():
    assert "web_search" not in default_registry()
    assert "web_search" in default_registry(web_search=True)


async def test_web_search_reports_unavailable_without_its_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "wikipedia", None)  # import wikipedia -> ImportError
    result = await ToolRegistry([make_web_search(timeout_s=5)]).arun("web_search", {"query": "x"})
    assert not result.ok and "install the 'wikipedia' package" in result.error


@pytest.mark.parametrize(("behaviour", "expected"), [
    ("offline", "(offline?): Failed to resolve 'en.wikipedia.org'"),
    ("slow", "(offline?): timed out after 0.5 s"),
])
async def test_web_search_offline_or_slow_ends_in_a_clear_error_in_bounded_time(
        monkeypatch, behaviour, expected):
    """The package is there but the network is not: the client's own error, or a hang."""
    fake = types.ModuleType("wikipedia")  # the client langchain-community drives
    fake.set_lang = lambda lang: None

    def search(query, results=10):
        if behaviour == "offline":
            raise ConnectionError("Failed to resolve 'en.wikipedia.org'")
        time.sleep(3)
        return []

    fake.search = search
    monkeypatch.setitem(sys.modules, "wikipedia", fake)
    start = time.monotonic()
    result = await ToolRegistry([make_web_search(timeout_s=0.5)]).arun("web_search", {"query": "x"})
    assert not result.ok and result.error.endswith(expected), result.error
    assert time.monotonic() - start < 2.5


async def test_user_tools_join_the_registry():
    @tool
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    registry = default_registry()
    registry.register(shout)
    assert (await registry.arun("shout", {"text": "hi"})).output == "HI"


async def test_program_tools_reject_bad_arguments_before_running():
    registry = default_registry()
    with pytest.raises(ToolArgumentsError, match="code"):
        await registry.arun("python", {"program": "print(1)"})
    with pytest.raises(ToolNotFoundError):
        await registry.arun("shell", {"cmd": "id"})


def test_cli_lists_tools_as_json():
    result = runner.invoke(app, ["tools", "list", "--json"])
    assert result.exit_code == 0
    names = {t["name"] for t in json.loads(result.stdout)}
    assert {"calculator", "python", "logic", "memory_read", "memory_write", "memory_copy",
            "knowledge_search"} <= names


def test_cli_runs_a_program_in_the_sandbox():
    result = runner.invoke(app, ["tools", "run", "python", "--args", '{"code": "print(2**10)"}',
                                 "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["output"] == "1024"


def test_cli_reports_a_contained_program_with_exit_1():
    result = runner.invoke(app, ["tools", "run", "python", "--args", '{"code": "import os"}'])
    assert result.exit_code == 1
    assert "import of 'os' is not allowed" in result.stderr


@pytest.mark.parametrize("argv", [
    ["tools", "run", "shell", "--args", "{}"],
    ["tools", "run", "calculator", "--args", '{"expr": "1+1"}'],
    ["tools", "run", "calculator", "--args", "not json"],
])
def test_cli_rejects_unknown_tools_and_bad_args_with_exit_2(argv):
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
