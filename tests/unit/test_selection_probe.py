"""benchmarks/selection.py: the selection rules and the equation check it measures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "selection.py"


@pytest.fixture(scope="module")
def selection():
    spec = importlib.util.spec_from_file_location("selection", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sample(answer, *, logprob=-0.2, finish="stop", wrong=0):
    return {"answer": answer, "mean_logprob": logprob, "finish": finish, "wrong_equations": wrong}


def test_wrong_equations_are_counted_in_plain_latex_and_money_notation(selection):
    text = "3 x 12 = 38 apples, then $1,200 + 300 = $1,500 and \\frac{6}{3} = 2; (2 + 3) * 4 = 21"
    assert selection.wrong_equations(text) == 2
    assert selection.wrong_equations("She has 5 apples. Answer: 5") == 0


def test_each_rule_picks_what_it_says(selection):
    samples = [sample("Answer: 10", logprob=-0.5, wrong=1),  # greedy
               sample("12", logprob=-0.1), sample("$12.00", logprob=-0.9, finish="length"),
               sample("10", logprob=-0.6, wrong=1), sample("no number", logprob=-0.01)]
    assert selection.select(samples, "greedy") == 10
    assert selection.select(samples, "majority") == 10  # 2 votes each: the greedy's first
    assert selection.select(samples, "finished") == 10  # the cut-off 12 loses its vote
    assert selection.select(samples, "arithmetic") == 12  # both 10s wrote a wrong equation
    assert selection.select(samples, "best_confidence") == 12
    assert selection.select(samples, "confidence") == 12
    assert selection.select([sample("none")], "majority") is None
