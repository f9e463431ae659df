"""Text that every store accepts: no NUL characters, no lone UTF-16 surrogates.

Model output is hostile: it may carry ``\\x00`` or an escaped lone surrogate
(``"\\ud800"`` in JSON), which PostgreSQL text/jsonb, orjson and msgpack all
refuse. They are replaced (by U+FFFD and ``?``) where text enters the framework
and again before anything is written to the memory.
"""

from __future__ import annotations

from typing import Any

_REPLACEMENT = "\ufffd"


def safe_text(text: str) -> str:
    """``text`` with NUL characters replaced by U+FFFD and lone surrogates by ``?``."""
    if "\x00" in text:
        text = text.replace("\x00", _REPLACEMENT)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")  # each lone surrogate -> "?"
    return text


def json_safe(value: Any) -> Any:
    """``value`` with :func:`safe_text` applied to every string in it (keys included)."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_text(k) if isinstance(k, str) else k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
