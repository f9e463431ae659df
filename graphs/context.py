"""Run-time settings of a run (LangGraph ``context_schema``).

Every setting falls back to an environment variable ``LOTTERY_<NAME>`` when the
caller leaves it at its default, so ``langgraph dev``, the CLI and Python code
read the same configuration. Objects (a chat model, a knowledge base, a tool
registry) can be injected by Python callers and tests; otherwise the defaults
below are built once per run.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lottery.errors import ConfigurationError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from lottery.stores.knowledge import KnowledgeBase
    from lottery.tools.registry import ToolRegistry

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"


@dataclass(frozen=True, kw_only=True)
class Context:
    """Settings of one run. Each field may come from ``LOTTERY_<FIELD>`` in the environment."""

    base_url: str | None = field(
        default=None,
        metadata={"description": "OpenAI-compatible base URL of the model server (…/v1)."},
    )
    model: str = field(
        default=DEFAULT_MODEL, metadata={"description": "Model name as the server knows it."}
    )
    api_key: str = field(default="EMPTY", metadata={"description": "API key for the server."})
    temperature: float = field(default=0.0, metadata={"description": "Sampling temperature."})
    request_timeout: float = field(
        default=300.0, metadata={"description": "Seconds before one model request times out."}
    )
    max_depth: int = field(
        default=2,
        metadata={"description": "Deepest level of sub-problems; problems there are solved directly."},
    )
    max_calls: int = field(
        default=24, metadata={"description": "Budget of model calls for the whole run."}
    )
    max_tokens: int = field(
        default=24000,
        metadata={"description": "Budget of prompt + completion tokens for the whole run."},
    )
    max_fanout: int = field(
        default=6, metadata={"description": "Most sub-problems one divide may create."}
    )
    max_completion_tokens: int = field(
        default=384, metadata={"description": "Most tokens one model answer may have."}
    )
    max_input_chars: int = field(
        default=20000, metadata={"description": "Longest question accepted, in characters."}
    )
    knowledge_base: str = field(
        default="default", metadata={"description": "Name of the knowledge base to retrieve from."}
    )
    top_k: int = field(default=4, metadata={"description": "Documents per retrieval."})
    search_mode: str = field(
        default="hybrid", metadata={"description": "Retrieval ranking: bm25, vector or hybrid."}
    )
    structured_output: bool = field(
        default=True,
        metadata={"description": "Ask the server for JSON-schema constrained decisions."},
    )
    autostart: bool = field(
        default=True,
        metadata={"description": "Without base_url, start (or reuse) a local vLLM server."},
    )

    # Injected objects (Python callers and tests); never read from the environment.
    chat_model: Any = field(default=None, repr=False, compare=False)
    knowledge: Any = field(default=None, repr=False, compare=False)
    tools: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in _INJECTED or f.default is MISSING:
                continue
            env = os.environ.get(f"LOTTERY_{f.name.upper()}")
            if env is None or getattr(self, f.name) != f.default:
                continue
            object.__setattr__(self, f.name, _coerce(f.name, env, f.default))
        for name in ("max_depth", "max_calls", "max_tokens", "max_fanout", "top_k"):
            if getattr(self, name) < (0 if name == "max_depth" else 1):
                raise ConfigurationError(f"{name} must be positive, got {getattr(self, name)}")
        if self.search_mode not in ("bm25", "vector", "hybrid"):
            raise ConfigurationError(
                f"search_mode must be bm25, vector or hybrid, got {self.search_mode!r}"
            )

    # -- resources, built once per run -------------------------------------------------
    @cached_property
    def llm(self) -> BaseChatModel:
        """The chat model: the injected one, else an OpenAI-compatible client."""
        if self.chat_model is not None:
            return self.chat_model
        if not self.base_url:
            raise ConfigurationError(
                "no model server: set LOTTERY_BASE_URL (or pass base_url), "
                "or start one with `lottery serve`"
            )
        import httpx
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            base_url=self.base_url,
            model=self.model,
            api_key=self.api_key,
            temperature=self.temperature,
            timeout=self.request_timeout,
            max_retries=1,
            stream_usage=True,
            # One HTTP client per run: langchain-openai's shared default client keeps
            # connections bound to the event loop of an earlier solve(), which is closed.
            http_async_client=httpx.AsyncClient(timeout=self.request_timeout),
        )

    @cached_property
    def kb(self) -> KnowledgeBase:
        """The knowledge base D to retrieve from."""
        if self.knowledge is not None:
            return self.knowledge
        from lottery.stores.knowledge import InMemoryKnowledgeBase

        return InMemoryKnowledgeBase(self.knowledge_base)

    @cached_property
    def registry(self) -> ToolRegistry:
        """The tool set C."""
        if self.tools is not None:
            return self.tools
        from lottery.tools import default_registry

        return default_registry()


_INJECTED = {"chat_model", "knowledge", "tools"}


def _coerce(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ConfigurationError(f"LOTTERY_{name.upper()}={raw!r} is not a valid {name}") from None
    return raw
