"""Model-written tool input is hostile: the calculator refuses work that would hang it."""

from __future__ import annotations

import time

import pytest

from lottery.errors import ToolError
from lottery.tools.calculator import calculate


@pytest.mark.parametrize("expression", [
    "((9**999)**999)**999", "(9**999)**999", "round(1/3, 10**9)",
    "*".join(["9**999"] * 8),
])
def test_huge_results_are_refused_at_once(expression):
    start = time.monotonic()
    with pytest.raises(ToolError, match="too large|at most 100 digits"):
        calculate(expression)
    assert time.monotonic() - start < 1.0


def test_ordinary_big_arithmetic_still_works():
    assert calculate("2**1000").startswith("10715086071862673209484250490600018105614048117")
    assert calculate("round(2/3, 3)") == "0.667"
