"""The model-server interface: what an engine must provide to be served by ``lottery serve``.

An engine knows how to make a model servable (``ensure``: install itself, prepare the
weights), how to start its OpenAI-compatible server (``launch``: a command line and its
environment) and how to recognise its process. Everything else, the life cycle that is
the same for every engine (the state file per port, ``--status``/``--stop``/``--detach``,
the log, the health wait, the start lock), lives once in :mod:`lottery.engines.server`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from rich.progress import Progress

from lottery.errors import ConfigurationError

ENGINE_NAMES = ("vllm", "llama.cpp")
"""The engines, in order of preference when nothing is asked for (vLLM is the default)."""
DEFAULT_ENGINE = "vllm"


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """What the user asked of a server, engine-neutral (``lottery serve`` options)."""

    host: str
    port: int
    max_model_len: int = 4096
    """Tokens one request may hold (prompt and answer)."""
    kv_cache_gib: float | None = None
    """vLLM's CPU KV cache (``VLLM_CPU_KVCACHE_SPACE``); llama.cpp sizes its own."""


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start one server: the command, its environment, and the settings chosen."""

    command: list[str]
    env: dict[str, str]
    settings: dict[str, object] = field(default_factory=dict)
    """What the engine chose and why (shown by ``--status --json`` and in the log)."""
    gpu: bool = False


@runtime_checkable
class Engine(Protocol):
    """A model-server engine (``vllm``, ``llama.cpp``)."""

    name: str
    """The name users pass (``--engine``, ``LOTTERY_ENGINE``)."""

    def ensure(self, model: str, progress: Progress | None = None) -> Path:
        """Install the engine if needed and prepare ``model``; return what the server loads.

        Raises:
            UnknownModelError, ConfigurationError: the engine cannot serve this model.
            ModelPrepareError: installing, building or preparing failed.
        """
        ...

    def launch(self, model: str, target: Path, options: ServeOptions) -> Launch:
        """The command that serves ``target`` under the name ``model``.

        Raises:
            ServerStartError: too little memory for it.
        """
        ...

    def owns(self, cmdline: bytes) -> bool:
        """Whether a process with this command line is a server of this engine."""
        ...


def engine_names() -> str:
    """The engine choices, for messages."""
    return ", ".join((*ENGINE_NAMES, "auto"))


def get_engine(name: str | None = None) -> Engine:
    """The engine called ``name`` (``LOTTERY_ENGINE`` when ``None``, else vLLM); ``auto``
    picks one for this machine (:func:`choose_engine`).

    Raises:
        ConfigurationError: an unknown name (one line, with the choices).
    """
    return choose_engine(name)[0]


def choose_engine(name: str | None = None) -> tuple[Engine, str]:
    """The engine for ``name`` and why it was chosen (the reason matters for ``auto``)."""
    raw = (name or os.environ.get("LOTTERY_ENGINE") or DEFAULT_ENGINE).strip().lower()
    aliases = {"llamacpp": "llama.cpp", "llama-cpp": "llama.cpp", "llama_cpp": "llama.cpp"}
    chosen = aliases.get(raw, raw)
    reason = "asked for" if name or os.environ.get("LOTTERY_ENGINE") else "the default"
    if chosen == "auto":
        chosen, reason = _auto()
    if chosen not in ENGINE_NAMES:
        raise ConfigurationError(f"unknown engine {raw!r}: choose one of {engine_names()}")
    if chosen == "vllm":
        from lottery.engines.vllm import VLLMEngine

        return VLLMEngine(), reason
    from lottery.engines.llamacpp import LlamaCppEngine

    return LlamaCppEngine(), reason


SMALL_MEMORY_GIB = 16
"""Below this much memory and without a GPU, ``auto`` picks llama.cpp: vLLM's CPU server
held 6.8 GB for the 0.5B model and 9.7 GB for the 1.5B (docs/engines.md)."""


def _auto() -> tuple[str, str]:
    from lottery.serve.prepare import memory_total
    from lottery.serve.venv import has_gpu

    if has_gpu():
        return "vllm", "auto: a GPU is present"
    total = memory_total()
    if total is not None and total < SMALL_MEMORY_GIB * 1024**3:
        return "llama.cpp", (f"auto: no GPU and {total / 1024**3:.0f} GiB of memory (vLLM's CPU "
                             "server held 6.8 GB for the 0.5B model)")
    return "vllm", "auto: no GPU, but memory enough for vLLM's CPU server"
