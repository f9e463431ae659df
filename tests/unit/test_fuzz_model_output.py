"""Fuzz: random and adversarial model output at every structured step never crashes or loops.

Every planner decision, tool-argument reply, solve and merge reply comes from hypothesis.
Whatever the model says, a run ends with an answer (or a marked best effort), within its
call budget, its depth and its fan-out limits.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lottery import asolve
from lottery.testing import ScriptedChatModel
from tests.unit.scripted import step_of

pytestmark = pytest.mark.usefixtures("planner_policy")
"""These tests script the model planner's decisions: runs follow the planner policy."""

LIMITS = {"max_depth": 2, "max_calls": 12, "max_fanout": 4}
CASES = 300  # random examples per fuzz test (docs/reliability.md quotes this)

_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    _leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12)
actions = st.sampled_from(["solve", "retrieve", "tool", "divide", "Divide", "split", "fly", "", None, 7])
subproblem = st.one_of(
    st.text(max_size=40),
    st.fixed_dictionaries({"question": st.text(max_size=40) | json_values},
                          optional={"depends_on": json_values | st.lists(st.integers(-3, 9))}),
    json_values,
)
decisions = st.fixed_dictionaries({"action": actions}, optional={
    "reason": st.text(max_size=30) | json_values,
    "query": st.text(max_size=30) | json_values,
    "tool": st.sampled_from(["calculator", "nope", "", None, 3]),
    "tool_input": st.text(max_size=30) | json_values
    | st.fixed_dictionaries({"expression": st.text(max_size=30) | json_values}),
    "subproblems": st.lists(subproblem, max_size=8) | json_values,
})


def _wrap(d: dict, how: str, cut: float) -> str:
    text = json.dumps(d)
    if how == "fenced":
        return f"```json\n{text}\n```"
    if how == "prose":
        return f"Sure! Here is my decision: {text} Hope that helps."
    if how == "python":
        return repr(d)
    if how == "truncated":
        return text[: int(len(text) * cut)]
    return text


wrapped = st.builds(_wrap, decisions, st.sampled_from(["json", "fenced", "prose", "python", "truncated"]),
                    st.floats(0, 1))
ADVERSARIAL = [
    "{" * 5000, "[" * 5000 + "]" * 5000, '{"action": "divide", "subproblems": ' + "[" * 3000,
    json.dumps({"action": "divide", "subproblems": [f"part {i}" for i in range(1000)]}),
    json.dumps({"action": "divide", "subproblems": [{"question": "me", "depends_on": [1, 2, 99]},
                                                   {"question": "you", "depends_on": [2, 1]}]}),
    json.dumps({"action": "divide", "subproblems": ["   ", "\n", "\x00"]}),
    *[json.dumps({"action": "tool", "tool": "calculator", "tool_input": {"expression": e}})
      for e in ("((9**999)**999)**999", "round(1/3, 10**9)", "__import__('os').system('rm -rf /')")],
    '{"action": "solve", "reason": "\\ud800"}', "Answer:", "Answer: " + "x" * 100_000, "\x00\x01\x02",
]
outputs = st.one_of(st.text(max_size=200), wrapped, st.sampled_from(ADVERSARIAL))


def fuzz_model(plans: list[str], others: list[str]) -> ScriptedChatModel:
    """Replies cycle through ``plans`` for planner calls and ``others`` for every other call."""
    lock = threading.Lock()
    cycles = {"plan": itertools.cycle(plans), "other": itertools.cycle(others)}

    def respond(messages):
        with lock:
            return next(cycles["plan" if step_of(messages) == "plan" else "other"])

    return ScriptedChatModel(respond=respond)


def check_run(plans: list[str], others: list[str]) -> None:
    model = fuzz_model(plans, others)
    start = time.monotonic()
    result = asyncio.run(asolve("Fuzz question?", chat_model=model, durable=False, **LIMITS))
    assert time.monotonic() - start < 10
    assert result.usage.calls == len(model.calls) <= LIMITS["max_calls"]
    assert isinstance(result.answer, str)  # a finished run always answers, best effort or not
    assert result.root["status"] == "done" or result.best_effort
    for p in result.tree.values():
        assert p["depth"] <= LIMITS["max_depth"]
        assert len(p["children"]) <= LIMITS["max_fanout"]
        assert all(d < p["id"] for d in p["depends_on"]) and p["id"] not in p["depends_on"]


def test_fuzzed_model_output_at_every_step_never_crashes_a_run():
    tried = []

    @settings(max_examples=CASES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(outputs, min_size=1, max_size=5), st.lists(outputs, min_size=1, max_size=5))
    def run(plans, others):
        tried.append(1)
        check_run(plans, others)

    run()
    assert len(tried) >= CASES


def test_every_adversarial_output_at_every_step_is_survived():
    for text in ADVERSARIAL:
        check_run([text], [text])
        check_run([text], ["Answer: ok"])
        check_run([json.dumps({"action": "divide", "subproblems": ["a", "b"]})], [text])


def test_cases_found_by_the_fuzzer_stay_fixed():
    # Each crashed a run before: a RecursionError in the JSON decoder, a TypeError in the
    # sub-problem validators, a calculator that never returned.
    for text in ['000000000000{"subproblems":false', '{"action": "divide", "subproblems": 3}',
                 '{"action": "divide", "subproblems": [{"question": "a", "depends_on": 1.5}, "b"]}',
                 '{"action": "divide", "subproblems": [{"question": "a", "depends_on": {"x": 1}}]}']:
        check_run([text], [""])
