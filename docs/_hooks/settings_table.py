"""mkdocs hook: the settings table of docs/configuration.md, generated from Context.

The page holds the marker ``<!-- settings-table -->``; each build replaces it with one row
per setting (name, environment variable, default, description), read from
``lottery.graphs.context.Context``, so the page cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

MARKER = "<!-- settings-table -->"


def settings_table() -> str:
    from lottery.graphs.context import INJECTED_FIELDS, Context

    rows = ["| setting | environment variable | default | what it does |", "|---|---|---|---|"]
    for f in fields(Context):
        if f.name in INJECTED_FIELDS or f.name.startswith("_"):
            continue
        default = f.default if f.default is not MISSING else "(computed)"
        shown = "empty" if default in ("", None) else f"`{default}`"
        text = str(f.metadata.get("description", "")).replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{f.name}` | `LOTTERY_{f.name.upper()}` | {shown} | {text} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    return markdown.replace(MARKER, settings_table()) if MARKER in markdown else markdown
