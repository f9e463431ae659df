"""Run-time settings of a run (LangGraph ``context_schema``).

Every setting falls back to an environment variable ``LOTTERY_<NAME>`` when the
caller leaves it at its default, so ``langgraph dev``, the CLI and Python code
read the same configuration. Objects (a chat model, a knowledge base, a tool
registry) can be injected by Python callers and tests; otherwise the defaults
below are built once per run.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic.json_schema import SkipJsonSchema

from lottery.errors import ConfigurationError
from lottery.serve.catalogue import DEFAULT_MODEL

if TYPE_CHECKING:
    import httpx
    from langchain_core.language_models import BaseChatModel

    from lottery.core.tracing import Telemetry
    from lottery.stores.knowledge import KnowledgeBase
    from lottery.tools.registry import ToolRegistry



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
    context_window: int = field(
        default=4096,
        metadata={"description": "Tokens one request may hold, prompt and answer together (the "
                  "server's max model length); evidence and earlier results are shortened to "
                  "fit."},
    )
    max_input_chars: int = field(
        default=20000, metadata={"description": "Longest question accepted, in characters."}
    )
    knowledge_base: str = field(
        default="default", metadata={"description": "Name of the knowledge base to retrieve from."}
    )
    knowledge_description: str = field(
        default="", metadata={"description": "What the knowledge base holds, told to the planner "
                              "so it knows when retrieving helps."},
    )
    top_k: int = field(default=4, metadata={"description": "Documents per retrieval."})
    search_mode: str = field(
        default="hybrid", metadata={"description": "Retrieval ranking: bm25, vector or hybrid."}
    )
    reuse: bool = field(
        default=True,
        metadata={"description": "Answer a sub-problem already solved (same model and knowledge "
                                 "base) from memory M instead of calling the model."},
    )
    reuse_ttl_s: float = field(
        default=0.0,
        metadata={"description": "Seconds a remembered answer may be reused; 0 means forever."},
    )
    context_budget: int = field(
        default=1500,
        metadata={"description": "Tokens of a question's context shown as they are; a longer "
                  "context is split and only its pieces relevant to the question are kept."},
    )
    structured_output: bool = field(
        default=True,
        metadata={"description": "Ask the server for JSON-schema constrained decisions."},
    )
    autostart: bool = field(
        default=True,
        metadata={"description": "Without base_url, start (or reuse) a local model server."},
    )
    engine: str = field(
        default="",
        metadata={"description": "Engine of that local server: vllm (the default), llama.cpp "
                  "or auto (lottery/engines)."},
    )
    web_search: bool = field(
        default=False,
        metadata={"description": "Offer the web_search tool (needs network and `wikipedia`)."},
    )
    program_samples: int = field(
        default=5,
        metadata={"description": "Programs per python/logic tool call: one greedy, the rest "
                  "sampled; their executed answers are voted on."},
    )
    program_shots: int = field(
        default=0,
        metadata={"description": "Worked examples in the prompt that asks for a Python "
                  "program (0 to 3). Measured on the 0.5B (100 items each): no example scored "
                  "53% on SVAMP and 22% on GSM8K, three scored 45% and 18% at 2-2.4x the "
                  "tokens. The z3 (logic) prompt always carries its examples."},
    )
    program_temperature: float = field(
        default=0.7, metadata={"description": "Sampling temperature of those programs."}
    )
    solve_samples: int = field(
        default=1,
        metadata={"description": "Answers per solve: one greedy, the rest sampled at "
                  "solve_temperature; the most common final answer wins (self-consistency)."},
    )
    solve_temperature: float = field(
        default=0.7, metadata={"description": "Sampling temperature of those answers."}
    )
    policy: str = field(
        default="auto",
        metadata={"description": "How problems are answered (nodes/policy.py): auto picks "
                  "math, logic, knowledge or general from the question; planner is the model "
                  "planner deciding every step, without checks."},
    )
    delegate_model: str = field(
        default="",
        metadata={"description": "A larger model that problems failing their check are "
                  "delegated to (served at delegate_base_url). Empty: no delegation."},
    )
    delegate_base_url: str = field(
        default="",
        metadata={"description": "OpenAI-compatible base URL (…/v1) of the delegate model."},
    )
    delegate_api_key: str = field(
        default="EMPTY", metadata={"description": "API key for the delegate's server."}
    )
    reuse_min_confidence: float = field(
        default=0.8,
        metadata={"description": "Least confidence of a remembered answer that memory M may "
                  "serve again; only answers that passed their check are remembered."},
    )
    solve_check: str = field(
        default="",
        metadata={"description": "A program tool (python or logic) that checks each solve: "
                  "its executed programs' answers and the solve's answers are voted on "
                  "together, a value both reached winning. Empty: no check."},
    )

    # Injected objects (Python callers and tests); never read from the environment, and
    # left out of the JSON schema that Studio renders as the assistant's settings form.
    chat_model: SkipJsonSchema[Any] = field(default=None, repr=False, compare=False)
    delegate_chat_model: SkipJsonSchema[Any] = field(default=None, repr=False, compare=False)
    """The delegate model as an object (tests, Python callers); else built from delegate_*."""
    knowledge: SkipJsonSchema[Any] = field(default=None, repr=False, compare=False)
    tools: SkipJsonSchema[Any] = field(default=None, repr=False, compare=False)
    tracer_provider: SkipJsonSchema[Any] = field(default=None, repr=False, compare=False)
    """OpenTelemetry tracer provider; the global one (no-op unless the app set one) if None."""
    meter_provider: SkipJsonSchema[Any] = field(default=None, repr=False, compare=False)
    """OpenTelemetry meter provider; the global one if None."""
    embeddings: SkipJsonSchema[Any] = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in INJECTED_FIELDS or f.default is MISSING:
                continue
            env = os.environ.get(f"LOTTERY_{f.name.upper()}")
            if env is None or getattr(self, f.name) != f.default:
                continue
            object.__setattr__(self, f.name, _coerce(f.name, env, f.default))
        if self.reuse_ttl_s < 0:
            raise ConfigurationError(f"reuse_ttl_s must be 0 or more, got {self.reuse_ttl_s}")
        for name in ("max_depth", "max_calls", "max_tokens", "max_fanout", "top_k",
                     "program_samples", "solve_samples", "context_budget", "context_window"):
            if getattr(self, name) < (0 if name == "max_depth" else 1):
                raise ConfigurationError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.program_shots <= 3:
            raise ConfigurationError(f"program_shots must be 0 to 3, got {self.program_shots}")
        if self.solve_check not in ("", "python", "logic"):
            raise ConfigurationError(
                f"solve_check must be python, logic or empty, got {self.solve_check!r}"
            )
        if bool(self.delegate_model) != bool(self.delegate_base_url) and \
                self.delegate_chat_model is None:
            raise ConfigurationError(
                "delegation needs both delegate_model and delegate_base_url "
                f"(got model={self.delegate_model!r}, base_url={self.delegate_base_url!r})")
        if not 0 <= self.reuse_min_confidence <= 1:
            raise ConfigurationError(
                f"reuse_min_confidence must be in [0, 1], got {self.reuse_min_confidence}")
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
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            base_url=self.base_url,
            model=self.model,
            api_key=self.api_key,
            temperature=self.temperature,
            timeout=self.request_timeout,
            # One retry layer only: the nodes' RetryPolicy (graphs/retry.py). Retrying in the
            # client too would multiply the attempts (and the worst-case wait on a dead server).
            max_retries=0,
            stream_usage=True,
            http_async_client=self.http_client,
        )

    @property
    def can_delegate(self) -> bool:
        """Whether a delegate model is configured."""
        return self.delegate_chat_model is not None or bool(self.delegate_model)

    @cached_property
    def delegate_llm(self) -> BaseChatModel:
        """The delegate model: the injected one, else a client of ``delegate_base_url``."""
        if self.delegate_chat_model is not None:
            return self.delegate_chat_model
        if not self.can_delegate:
            raise ConfigurationError("no delegate model: set delegate_model and delegate_base_url")
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(base_url=self.delegate_base_url, model=self.delegate_model,
                          api_key=self.delegate_api_key, temperature=0.0,
                          timeout=self.request_timeout, max_retries=0, stream_usage=True,
                          http_async_client=self.http_client)

    @cached_property
    def http_client(self) -> httpx.AsyncClient:
        """Connections to the model server, owned by this run (see :meth:`aclose`).

        Not langchain-openai's process-wide default client: its pooled connections belong
        to the event loop that opened them, so a second ``solve()`` (a new loop) in the same
        process failed with "Event loop is closed".
        """
        import httpx

        return httpx.AsyncClient(timeout=self.request_timeout)

    async def aprepare(self) -> None:
        """Build the run's tool set and knowledge base off the event loop.

        Opening a knowledge base touches the disk (or a server); done in a worker
        thread once per run, the nodes then find them built and never block the loop
        (``langgraph dev`` refuses blocking calls in async nodes).
        """
        if "registry" not in self.__dict__:
            import asyncio

            await asyncio.to_thread(lambda: (self.kb, self.registry))

    async def aclose(self) -> None:
        """Close the run's connections to the model server, if any were opened."""
        client = self.__dict__.get("http_client")
        if client is not None:
            await client.aclose()

    @cached_property
    def kb(self) -> KnowledgeBase:
        """The knowledge base D to retrieve from."""
        if self.knowledge is not None:
            return self.knowledge
        from lottery.stores.knowledge import open_knowledge_base

        return open_knowledge_base(self.knowledge_base, embeddings=self.embedder)

    @cached_property
    def embedder(self) -> Any:
        """Text embeddings: the injected ones, else the configured ones (loaded on first use)."""
        if self.embeddings is not None:
            return self.embeddings
        from lottery.stores.embeddings import embeddings_from_env

        return embeddings_from_env()

    async def has_knowledge(self, name: str | None = None) -> bool:
        """Whether the knowledge base ``name`` holds documents (asked once per run and name).

        The planner offers "retrieve" only then: an empty knowledge base is no resource,
        and a small model offered one sends arithmetic to it. A knowledge base that
        cannot be counted (a server down) counts as available; retrieving reports why.
        """
        known: dict[str | None, bool] = self.__dict__.setdefault("_has_knowledge", {})
        if name not in known:
            try:
                kb = await asyncio.to_thread(self.kb_for, name)
                known[name] = await kb.acount() > 0
            except Exception:  # noqa: BLE001 - any backend failure: let retrieve report it
                known[name] = True
        return known[name]

    def kb_for(self, name: str | None) -> KnowledgeBase:
        """The knowledge base called ``name`` (a run's input may name another than ``kb``).

        ``None`` or this context's own name gives :attr:`kb`; so does any name when a
        knowledge base object was injected.
        """
        if name is None or name == self.knowledge_base or self.knowledge is not None:
            return self.kb
        if name not in self._other_kbs:
            self._other_kbs[name] = replace(self, knowledge_base=name).kb
        return self._other_kbs[name]

    @cached_property
    def _other_kbs(self) -> dict[str, KnowledgeBase]:
        return {}

    @cached_property
    def registry(self) -> ToolRegistry:
        """The tool set C."""
        if self.tools is not None:
            return self.tools
        from lottery.tools import default_registry

        return default_registry(knowledge=self.kb, web_search=self.web_search)

    @cached_property
    def telemetry(self) -> Telemetry:
        """Spans and metrics of the runs of this context (see ``lottery/core/tracing.py``)."""
        from lottery.core.tracing import Telemetry

        return Telemetry.for_context(self)


INJECTED_FIELDS = frozenset(
    {"chat_model", "delegate_chat_model", "knowledge", "tools", "embeddings", "tracer_provider",
     "meter_provider"}
)
"""Fields that hold objects given by Python callers: never read from the environment or stored."""


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
