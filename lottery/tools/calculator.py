"""Exact arithmetic on expressions, by walking the syntax tree (no ``eval``)."""

from __future__ import annotations

import ast
import math
import operator
import re
from decimal import Decimal
from fractions import Fraction

from langchain_core.tools import BaseTool, tool

from lottery.errors import ToolError

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCS = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": lambda x, n=0: Fraction(round(x, _digits(n))),
    "floor": lambda x: Fraction(math.floor(x)),
    "ceil": lambda x: Fraction(math.ceil(x)),
    "sqrt": lambda x: _sqrt(x),
}
_MAX_EXPONENT = 1000
_MAX_BITS = 20_000
"""Largest numerator or denominator (about 6000 digits): hostile input must not hang the tool."""


def _digits(n: Fraction) -> int:
    if n.denominator != 1 or abs(n) > 100:
        raise ToolError("round() takes at most 100 digits")
    return int(n)


def _bounded(value: Fraction) -> Fraction:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > _MAX_BITS:
        raise ToolError("the result is too large to compute exactly")
    return value
_MAX_LEN = 2000


def _sqrt(x: Fraction) -> Fraction:
    if x < 0:
        raise ToolError("sqrt of a negative number")
    root = Fraction(math.isqrt(x.numerator), math.isqrt(x.denominator))
    return root if root * root == x else Fraction(Decimal(float(x)).sqrt())


def _eval(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise ToolError("booleans are not numbers here")
        return Fraction(str(node.value)) if isinstance(node.value, float) else Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            if right.denominator != 1 or abs(right) > _MAX_EXPONENT:
                raise ToolError("exponent must be an integer of at most 1000")
            size = max(left.numerator.bit_length(), left.denominator.bit_length())
            if size * abs(right.numerator) > _MAX_BITS:
                raise ToolError("the result is too large to compute exactly")
        if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
            raise ToolError("division by zero")
        return _bounded(Fraction(_BINARY[type(node.op)](left, right)))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS:
        if node.keywords:
            raise ToolError("keyword arguments are not supported")
        return Fraction(_FUNCS[node.func.id](*[_eval(a) for a in node.args]))
    raise ToolError(f"unsupported expression element: {ast.dump(node)[:60]}")


def format_number(value: Fraction) -> str:
    """An exact value as text: an integer, a finite decimal, or a fraction."""
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d == 1:  # finite decimal expansion
        return format(Decimal(value.numerator) / Decimal(value.denominator), "f").rstrip("0")
    return f"{value.numerator}/{value.denominator} (~{float(value):.6g})"


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression exactly.

    Raises:
        ToolError: the expression is not plain arithmetic or cannot be computed.
    """
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text).rstrip("=").strip()  # 1,000 -> 1000
    if not text:
        raise ToolError("empty expression")
    if len(text) > _MAX_LEN:
        raise ToolError(f"expression longer than {_MAX_LEN} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"not an arithmetic expression: {expression[:80]!r}") from None
    return format_number(_eval(tree))


def make_calculator() -> BaseTool:
    """The ``calculator`` tool."""

    @tool("calculator")
    def calculator(expression: str) -> str:
        """Exact arithmetic on one expression, e.g. "(48 - 12) / 4 * 3". Supports + - * / // % ** and abs, min, max, round, floor, ceil, sqrt."""  # noqa: E501
        return calculate(expression)

    return calculator
