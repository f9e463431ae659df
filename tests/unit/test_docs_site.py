"""The documentation site builds with ``mkdocs build --strict``, and its configuration page
is generated from ``Context``: every setting, its environment variable and its default."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from lottery.core.context import Context
from lottery.resources import Resources

ROOT = Path(__file__).resolve().parents[2]


def test_the_site_builds_strict_and_lists_every_setting_of_context(tmp_path: Path):
    pytest.importorskip("mkdocs", reason="the docs site needs the test extra: pip install -e '.[test]'")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    page = (tmp_path / "site" / "configuration" / "index.html").read_text()
    assert "settings-table" not in page  # the marker was replaced
    for f in fields(Context):
        assert f"LOTTERY_{f.name.upper()}" in page, f.name
        if f.default not in (MISSING, "", None):
            assert str(f.default) in page, f.name
    for name in Resources.INJECTABLE:
        assert f"<code>{name}</code>" in page, name
    errors_page = (tmp_path / "site" / "errors" / "index.html").read_text()
    for cls in _error_classes():
        assert f"<code>{cls.code}</code>" in errors_page, cls.__name__


def _error_classes() -> list[type]:
    import inspect

    from lottery import errors

    return [c for _, c in inspect.getmembers(errors, inspect.isclass)
            if issubclass(c, errors.LotteryError)]


def test_every_error_has_its_own_code_and_every_class_is_raised():
    classes = _error_classes()
    codes = [c.code for c in classes]
    assert len(set(codes)) == len(codes), "two errors share a code"
    source = "\n".join(p.read_text() for folder in ("lottery", "graphs", "nodes", "stores")
                       for p in (ROOT / folder).rglob("*.py") if p.name != "errors.py")
    abstract = {"LotteryError", "StoreError", "ToolError"}  # bases that callers catch
    never = [c.__name__ for c in classes
             if c.__name__ not in abstract and f"raise {c.__name__}" not in source
             and f"{c.__name__} if" not in source and f"({c.__name__} " not in source]
    assert not never, f"never raised: {never}"


def test_every_error_refines_a_builtin_and_none_is_retried_as_a_network_error():
    from lottery import errors
    from lottery.nodes.llm import is_transient

    for cls in _error_classes():
        if cls is errors.LotteryError:
            continue
        builtins_ = [b for b in cls.__mro__ if b.__module__ == "builtins"]
        assert builtins_[0] is not Exception, f"{cls.__name__} refines no builtin"
        assert not issubclass(cls, ConnectionError | TimeoutError), cls.__name__
        assert not is_transient(cls("x")), cls.__name__
