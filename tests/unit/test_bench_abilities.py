"""The abilities probe with scripted models: a perfect model passes, a broken one fails."""

from __future__ import annotations

import json
import re

from lottery.bench.abilities import ABILITIES, memory_registry, run_abilities
from lottery.resources import Resources
from lottery.testing import ScriptedChatModel


def oracle(messages) -> str:
    """Answers every probe right, by reading the prompt."""
    system, user = str(messages[0].content), str(messages[-1].content)
    if system.startswith("You plan"):
        q = user.split("Question: ", 1)[1]
        if re.search(r"\d+ \* \d+|exactly", q):
            return json.dumps({"action": "tool", "reason": "math", "tool": "calculator",
                               "tool_input": {"expression": "1+1"}})
        if "knowledge base" in q or "our internal" in q:
            return json.dumps({"action": "retrieve", "reason": "private", "query": q})
        if "opposite" in q:
            return json.dumps({"action": "solve", "reason": "easy"})
        words = re.findall(r"[a-z]+", q.lower())
        return json.dumps({"action": "divide", "reason": "parts", "subproblems": [
            {"question": " ".join(words[: len(words) // 2])},
            {"question": " ".join(words[len(words) // 2 - 3:]) + " #1", "depends_on": [1]},
            {"question": q.lower(), "depends_on": [2]}]})
    if system.startswith("You operate an external memory"):
        if "returned:" in user:
            return "Answer: " + user.split("returned: ")[1].split("\n")[0]
        m = re.search(r"Write the value (\S+) under the key (\S+)\.", user)
        if m:
            return json.dumps({"tool": "memory_write", "args": {"key": m[2], "value": m[1]}})
        m = re.search(r"Copy the value of key (\S+) to key (\S+)\.", user)
        if m:
            return json.dumps({"tool": "memory_copy", "args": {"source": m[1], "target": m[2]}})
        m = re.search(r"under key (\S+)\.", user)
        return json.dumps({"tool": "memory_read", "args": {"key": m[1]}})
    if system.startswith("Combine the answers"):
        values = {m[0]: int(m[1]) for m in re.findall(r"in (warehouse \w)\? -> (\d+)", user)}
        q = user.split("Main question: ")[1]
        named = re.findall(r"warehouse \w", q)
        if "together" in q:
            return f"Answer: {sum(values[n] for n in named)}"
        if "more crates are in" in q:
            return f"Answer: {values[named[0]] - values[named[1]]}"
        if "most" in q:
            return f"Answer: {max(values, key=values.get)}"
        return f"Answer: {sum(v > 50 for v in values.values())}"
    secret = re.search(r"vault is (\S+)\.", user)[1]
    return f"Answer: {secret}"


async def test_a_model_with_every_ability_is_lottery_ready():
    report = await run_abilities(Resources(chat_model=ScriptedChatModel(respond=oracle)))
    assert set(report["abilities"]) == set(ABILITIES)
    for name, ability in report["abilities"].items():
        assert ability["score"] == 1.0, (name, ability["details"])
    assert report["verdict"].startswith("lottery-ready")
    assert report["usage"]["calls"] > 20


async def test_a_model_that_only_says_solve_fails_tools_planning_and_memory():
    model = ScriptedChatModel(respond=lambda m: '{"action": "solve", "reason": "x"}')
    report = await run_abilities(Resources(chat_model=model))
    scores = {n: a["score"] for n, a in report["abilities"].items()}
    assert scores["decomposition"] == 0.0 and scores["memory_ops"] == 0.0
    assert scores["tool_choice"] == 0.2  # only the 'solve' case is right
    assert report["verdict"].startswith("not ready")


async def test_only_runs_the_named_abilities():
    report = await run_abilities(Resources(chat_model=ScriptedChatModel(respond=oracle)),
                                 only=("working_memory",))
    assert list(report["abilities"]) == ["working_memory"]


async def test_memory_tools_copy_exactly():
    memory: dict[str, str] = {}
    registry = memory_registry(memory)
    await registry.arun("memory_write", {"key": "a", "value": "x-Y-1"})
    await registry.arun("memory_copy", {"source": "a", "target": "b"})
    assert (await registry.arun("memory_read", {"key": "b"})).output == "x-Y-1"


def test_abilities_cli_without_a_server_is_a_one_line_error():
    from typer.testing import CliRunner

    from lottery.cli import app

    result = CliRunner().invoke(app, ["abilities"])
    assert result.exit_code == 2
    assert "no model server" in result.output
    result = CliRunner().invoke(app, ["abilities", "--only", "telepathy", "--base-url", "http://x/v1"])
    assert result.exit_code == 2 and "unknown ability" in result.output
