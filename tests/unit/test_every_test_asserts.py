"""A lint of the suite itself: every test function makes an assertion.

It asserts directly (``assert``, ``pytest.raises``/``warns``/``fail``) or calls a helper of
the test tree that does, followed through helpers of helpers by name. A test that only runs
code passes whatever the code does.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
_ASSERTING_CALLS = {"raises", "warns", "fail", "deprecated_call", "skip", "importorskip"}


def _called(node: ast.AST) -> set[str]:
    names = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            fn = n.func
            names.add(fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", ""))
    return names


def _asserts_directly(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node)) or bool(
        _called(node) & _ASSERTING_CALLS)


def unasserted_tests(root: Path) -> list[str]:
    """``path::name`` of every ``test_*`` function under ``root`` that asserts nothing."""
    functions: dict[str, list[tuple[Path, ast.AST]]] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.setdefault(node.name, []).append((path, node))
    asserting = {name for name, defs in functions.items()
                 if any(_asserts_directly(node) for _, node in defs)}
    grew = True
    while grew:  # helpers of helpers
        grew = False
        for name, defs in functions.items():
            if name not in asserting and any(_called(node) & asserting for _, node in defs):
                asserting.add(name)
                grew = True
    return [f"{path.relative_to(root.parent)}::{name}" for name, defs in functions.items()
            if name.startswith("test_") and name not in asserting for path, _ in defs]


def test_every_test_function_makes_an_assertion():
    assert unasserted_tests(TESTS) == []


def test_the_lint_finds_a_test_that_only_runs_code(tmp_path):
    (tmp_path / "test_x.py").write_text(
        "def helper(x):\n    assert x\n\n"
        "def test_checks():\n    helper(1)\n\n"
        "def test_runs_only():\n    sum([1, 2])\n")
    assert unasserted_tests(tmp_path) == [f"{tmp_path.name}/test_x.py::test_runs_only"]
