"""Who may use the graph server, and what is theirs.

Both graph servers load this module from ``langgraph.json`` (``auth.path``):
``langgraph dev`` / the LangGraph server, and Aegra (``python -m lottery.server``).
It uses their own mechanism, a ``langgraph_sdk.Auth`` object:

- **authentication**: an API key, sent as ``Authorization: Bearer <key>`` or
  ``X-Api-Key: <key>``, names the user. Keys come from ``LOTTERY_API_KEYS``
  (``alice:key1,bob:key2``) or from the file ``LOTTERY_API_KEYS_FILE`` (one
  ``user:key`` per line; a mounted Kubernetes or Compose secret).
- **ownership**: a thread (with its runs), a cron or an assistant belongs to the
  user who created it; anyone else gets 404 and never sees it in a search.
  Store items live under namespaces that start with the user's id.
- **dev mode**: with no keys configured every client is the user ``dev``. The
  servers say so loudly at start, and every response carries
  ``X-Lottery-Auth: off``. ``python -m lottery.server`` refuses to start that way
  unless ``LOTTERY_AUTH=off`` says it is meant.
"""

from __future__ import annotations

import functools
import hmac
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langgraph_sdk import Auth

from lottery.errors import ConfigurationError

KEYS_ENV = "LOTTERY_API_KEYS"
KEYS_FILE_ENV = "LOTTERY_API_KEYS_FILE"
MODE_ENV = "LOTTERY_AUTH"
DEV_USER = "dev"
MIN_KEY_CHARS = 16
"""A key shorter than this is refused: it could be guessed."""

DEV_WARNING = (
    f"AUTHENTICATION IS OFF: no API keys are configured ({KEYS_ENV} / {KEYS_FILE_ENV}), so every "
    "client is the user 'dev' and can read every thread. Use this only on a server no one "
    "else can reach."
)


def parse_keys(text: str, *, source: str) -> dict[str, str]:
    """``user:key`` items (separated by commas or new lines) as a key -> user map.

    Raises ConfigurationError with one line naming the problem (never the key)."""
    keys: dict[str, str] = {}
    for n, item in enumerate(text.replace("\n", ",").split(","), start=1):
        item = item.strip()
        if not item or item.startswith("#"):
            continue
        user, sep, key = item.partition(":")
        user, key = user.strip(), key.strip()
        if not sep or not user or not key:
            raise ConfigurationError(f"{source}: item {n} is not 'user:key'")
        if len(key) < MIN_KEY_CHARS:
            raise ConfigurationError(
                f"{source}: the key of user {user!r} is shorter than {MIN_KEY_CHARS} characters")
        if key in keys:
            raise ConfigurationError(f"{source}: users {keys[key]!r} and {user!r} share a key")
        keys[key] = user
    return keys


def load_keys(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The configured keys (key -> user): ``LOTTERY_API_KEYS`` and ``LOTTERY_API_KEYS_FILE``."""
    keys = parse_keys(environ.get(KEYS_ENV, ""), source=KEYS_ENV)
    if path := environ.get(KEYS_FILE_ENV):
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"{KEYS_FILE_ENV}: cannot read {path}: {exc.strerror}") from None
        for key, user in parse_keys(text, source=path).items():
            if keys.get(key, user) != user:
                raise ConfigurationError(f"{path}: users {keys[key]!r} and {user!r} share a key")
            keys[key] = user
    return keys


def current_keys() -> dict[str, str]:
    """The keys of this process's configuration, read once (a new key needs a restart)."""
    return _keys(os.environ.get(KEYS_ENV, ""), os.environ.get(KEYS_FILE_ENV, ""))


def dev_mode() -> bool:
    """Whether every client is the user ``dev``: no keys configured."""
    return not current_keys()


def dev_mode_meant(environ: Mapping[str, str] = os.environ) -> bool:
    """``LOTTERY_AUTH=off``: running without keys is what the operator asked for."""
    return environ.get(MODE_ENV, "").strip().lower() in ("off", "none", "dev")


@functools.cache
def _keys(_env: str, _file: str) -> dict[str, str]:
    """The keys, read once per configuration (the arguments are the cache key)."""
    return load_keys()


def _token(headers: Mapping[Any, Any]) -> str | None:
    """The API key a request carries, whichever server handed over the headers (bytes or str)."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        name = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        found[name.lower()] = value
    if key := found.get("x-api-key", "").strip():
        return key
    scheme, _, credentials = found.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


auth = Auth()


@auth.authenticate
async def authenticate(headers: Mapping[Any, Any]) -> Auth.types.MinimalUserDict:
    """The user a request's API key names; 401 without a key or with an unknown one."""
    keys = current_keys()
    if not keys:
        return {"identity": DEV_USER, "display_name": "dev (authentication off)",
                "is_authenticated": True}
    token = _token(headers)
    if token is None:
        raise Auth.exceptions.HTTPException(
            status_code=401, detail="missing API key: send 'Authorization: Bearer <key>'")
    for key, user in keys.items():
        if hmac.compare_digest(key.encode(), token.encode()):
            return {"identity": user, "display_name": user, "is_authenticated": True}
    raise Auth.exceptions.HTTPException(status_code=401, detail="invalid API key")


def _own(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, str]:
    """Stamp the caller as owner of what it creates; filter what it reads to what it owns."""
    metadata = value.setdefault("metadata", {}) if isinstance(value, dict) else None
    if isinstance(metadata, dict):
        metadata["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}


@auth.on.threads
async def own_threads(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, str]:
    """Threads and the runs on them: the creator's alone."""
    if ctx.action == "create_run" and "aegra_api.main" in sys.modules:
        # Aegra checks the owner on every thread route but this one: a run started on
        # another user's thread would read and extend that thread's state.
        owner = await _aegra_thread_owner(str(value.get("thread_id") or ""))
        if owner is not None and owner != ctx.user.identity:
            raise Auth.exceptions.HTTPException(status_code=404, detail="thread not found")
    return _own(ctx, value)


async def _aegra_thread_owner(thread_id: str) -> str | None:
    """The owner of a thread in Aegra's database (``None``: no such thread yet)."""
    try:
        from aegra_api.core.orm import Thread, _get_session_maker
        from sqlalchemy import select
    except ImportError:  # a changed Aegra: refuse rather than run on a thread of unknown owner
        raise Auth.exceptions.HTTPException(
            status_code=503, detail="cannot check the thread's owner on this Aegra") from None
    async with _get_session_maker()() as session:
        return await session.scalar(select(Thread.user_id).where(Thread.thread_id == thread_id))


@auth.on.crons
async def own_crons(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, str]:
    return _own(ctx, value)


@auth.on.assistants
async def own_assistants(ctx: Auth.types.AuthContext,
                         value: dict[str, Any]) -> dict[str, str] | None:
    """The graphs' assistants are everyone's to read and run; a user's own assistants
    (configurations it created) are its alone to change."""
    if ctx.action in ("read", "search"):
        return None
    return _own(ctx, value)


@auth.on.store()
async def own_store(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> dict[str, Any] | None:
    """Store items: only under a namespace that starts with the caller's id (or
    ``users/<id>``, Aegra's own convention)."""
    namespace = value.get("namespace") or ()
    # Aegra hands over a GET's dotted query parameter ("alice.notes", or inside a list); a
    # label never holds a period (the LangGraph store refuses one)
    labels = [namespace] if isinstance(namespace, str) else list(namespace)
    namespace = tuple(part for label in labels for part in str(label).split(".") if part)
    user = ctx.user.identity
    if namespace[:1] != (user,) and namespace[:2] != ("users", user):
        raise Auth.exceptions.HTTPException(
            status_code=403, detail=f"store namespaces of user {user!r} start with {user!r}")
    if "aegra_api.main" in sys.modules:
        # Aegra 0.6 reads a GET's "alice.notes" as ONE label and fails; it takes the
        # namespace an auth handler returns instead
        return {"namespace": list(namespace)}
    return None
