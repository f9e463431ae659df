"""mkdocs hook: the tables generated from the code at each build, so the pages cannot drift.

- ``<!-- settings-table -->`` (docs/configuration.md): one row per setting of
  ``lottery.core.context.Context`` (name, environment variable, default, description);
- ``<!-- resources-table -->`` (docs/configuration.md): one row per object a Python caller
  may inject (the fields of ``lottery.resources.Resources``);
- ``<!-- errors-table -->`` (docs/errors.md): one row per class of ``lottery.errors``
  (class, code, parent, CLI exit status, meaning).
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

MARKERS = {"<!-- settings-table -->": "settings_table",
           "<!-- resources-table -->": "resources_table",
           "<!-- errors-table -->": "errors_table"}


def settings_table() -> str:
    from lottery.core.context import Context

    rows = ["| setting | environment variable | default | what it does |", "|---|---|---|---|"]
    for f in fields(Context):
        default = f.default if f.default is not MISSING else "(computed)"
        shown = "empty" if default in ("", None) else f"`{default}`"
        text = str(f.metadata.get("description", "")).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{f.name}` | `LOTTERY_{f.name.upper()}` | {shown} | {text} |")
    return "\n".join(rows)


def resources_table() -> str:
    from lottery.resources import Resources

    rows = ["| keyword | what it replaces |", "|---|---|"]
    for f in fields(Resources):
        if f.name in Resources.INJECTABLE:
            text = str(f.metadata.get("description", "")).replace("|", "\\|")
            rows.append(f"| `{f.name}` | {text} |")
    return "\n".join(rows)


def errors_table() -> str:
    import inspect

    from lottery import errors

    rows = ["| error | code | is a | CLI exit status | meaning |", "|---|---|---|---|---|"]
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)
               if issubclass(c, errors.LotteryError)]
    for c in sorted(classes, key=lambda c: [k.__name__ for k in reversed(c.__mro__[:-1])]):
        parents = ", ".join(b.__name__ for b in c.__bases__)
        doc = " ".join((c.__doc__ or "").split()).replace("|", "\\|")
        rows.append(f"| `{c.__name__}` | `{c.code}` | {parents} | {c.exit_code} | {doc} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    for marker, table in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, globals()[table]())
    return markdown
