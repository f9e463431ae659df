"""The resources of a run: what its nodes use, built from its settings once per run.

:class:`~lottery.core.context.Context` holds settings only (LangGraph's ``context_schema``:
plain values, ``LOTTERY_*`` fallbacks, the form Studio renders). The objects a run talks to
are built here, from those settings, on first use: the chat model and the delegate's, their
HTTP connections, the knowledge base D and its embeddings, the tool set C, and the run's
telemetry. Python callers and tests inject any of them instead::

    res = Resources(settings=Context(max_depth=1), chat_model=my_model, knowledge=my_kb)
    await graph.ainvoke(inputs, context=res.settings)

Constructing a ``Resources`` binds it to its ``settings`` object (the settings object keeps
a private reference to it; a copy made with ``dataclasses.replace`` has none); a node finds
them with :meth:`Resources.of`. A run started without
any (``langgraph dev``, the LangGraph server) gets the default ones, built from the
settings the server passed. Like pydantic-graph's ``deps``, resources are never part of the
state, the checkpoint or the recorded settings.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from lottery.core.context import Context
from lottery.errors import ConfigurationError

if TYPE_CHECKING:
    import httpx
    from langchain_core.language_models import BaseChatModel

    from lottery.core.tracing import Telemetry
    from lottery.stores.knowledge import KnowledgeBase
    from lottery.tools.registry import ToolRegistry


_BOUND = "_lottery_resources"
"""The private attribute of a :class:`Context` that holds its run's resources."""


@dataclass(eq=False, kw_only=True)
class Resources:
    """The objects one run uses. Each is the injected one, else built from ``settings``."""

    settings: Context = field(default_factory=Context)
    chat_model: BaseChatModel | None = field(default=None, metadata={
        "description": "The run's model; else an OpenAI-compatible client of `base_url`."})
    delegate_chat_model: BaseChatModel | None = field(default=None, metadata={
        "description": "The delegate model; else a client of `delegate_base_url`."})
    knowledge: KnowledgeBase | None = field(default=None, metadata={
        "description": "Knowledge base D, for every name; else the one `knowledge_base` "
                       "names (opened on first use)."})
    tools: ToolRegistry | None = field(default=None, metadata={
        "description": "Tool set C; else the default registry (`lottery tools list`)."})
    embeddings: Any = field(default=None, metadata={
        "description": "Text embeddings (LangChain `Embeddings`); else the configured ones, "
                       "loaded on first use."})
    tracer_provider: Any = field(default=None, metadata={
        "description": "OpenTelemetry tracer provider; else the global one (no-op unless "
                       "the application set one)."})
    meter_provider: Any = field(default=None, metadata={
        "description": "OpenTelemetry meter provider; else the global one."})

    INJECTABLE: ClassVar[frozenset[str]] = frozenset(
        {"chat_model", "delegate_chat_model", "knowledge", "tools", "embeddings",
         "tracer_provider", "meter_provider"})
    """The keyword arguments of ``solve`` / ``asolve`` that are objects, not settings (the
    fields above but ``settings``; a test holds the two together)."""

    def __post_init__(self) -> None:
        if (bool(self.settings.delegate_model) != bool(self.settings.delegate_base_url)
                and self.delegate_chat_model is None):
            raise ConfigurationError(
                "delegation needs both delegate_model and delegate_base_url "
                f"(got model={self.settings.delegate_model!r}, "
                f"base_url={self.settings.delegate_base_url!r})")
        object.__setattr__(self.settings, _BOUND, self)  # Context is frozen

    @classmethod
    def of(cls, settings: Context) -> Resources:
        """The resources bound to ``settings``; default ones, bound now, if there are none."""
        found = settings.__dict__.get(_BOUND)
        return found if isinstance(found, Resources) else cls(settings=settings)

    # -- models --------------------------------------------------------------------------
    @cached_property
    def llm(self) -> BaseChatModel:
        """The chat model: the injected one, else an OpenAI-compatible client."""
        if self.chat_model is not None:
            return self.chat_model
        s = self.settings
        if not s.base_url:
            raise ConfigurationError(
                "no model server: set LOTTERY_BASE_URL (or pass base_url), "
                "or start one with `lottery serve`"
            )
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            base_url=s.base_url, model=s.model, api_key=s.api_key, temperature=s.temperature,
            timeout=s.request_timeout,
            # One retry layer only: the nodes' RetryPolicy (graphs/retry.py). Retrying in the
            # client too would multiply the attempts (and the worst-case wait on a dead server).
            max_retries=0, stream_usage=True, http_async_client=self.http_client,
        )

    @property
    def can_delegate(self) -> bool:
        """Whether a delegate model is configured."""
        return self.delegate_chat_model is not None or bool(self.settings.delegate_model)

    @cached_property
    def delegate_llm(self) -> BaseChatModel:
        """The delegate model: the injected one, else a client of ``delegate_base_url``."""
        if self.delegate_chat_model is not None:
            return self.delegate_chat_model
        if not self.can_delegate:
            raise ConfigurationError("no delegate model: set delegate_model and delegate_base_url")
        from langchain_openai import ChatOpenAI

        s = self.settings
        return ChatOpenAI(base_url=s.delegate_base_url, model=s.delegate_model,
                          api_key=s.delegate_api_key, temperature=0.0,
                          timeout=s.request_timeout, max_retries=0, stream_usage=True,
                          http_async_client=self.http_client)

    @cached_property
    def http_client(self) -> httpx.AsyncClient:
        """Connections to the model servers, owned by this run (see :meth:`aclose`).

        Not langchain-openai's process-wide default client: its pooled connections belong
        to the event loop that opened them, so a second ``solve()`` (a new loop) in the same
        process failed with "Event loop is closed".
        """
        import httpx

        return httpx.AsyncClient(timeout=self.settings.request_timeout)

    # -- knowledge and tools ---------------------------------------------------------------
    @cached_property
    def kb(self) -> KnowledgeBase:
        """The knowledge base D to retrieve from."""
        return self.kb_for(None)

    @cached_property
    def embedder(self) -> Any:
        """Text embeddings: the injected ones, else the configured ones (loaded on first use)."""
        if self.embeddings is not None:
            return self.embeddings
        from lottery.stores.embeddings import embeddings_from_env

        return embeddings_from_env()

    def kb_for(self, name: str | None) -> KnowledgeBase:
        """The knowledge base called ``name`` (a run's input may name another than
        ``settings.knowledge_base``); ``None`` is that one. An injected knowledge base
        answers for every name."""
        if self.knowledge is not None:
            return self.knowledge
        name = name or self.settings.knowledge_base
        if name not in self._kbs:
            from lottery.stores.factory import open_knowledge_base

            self._kbs[name] = open_knowledge_base(name, embeddings=self.embedder)
        return self._kbs[name]

    @cached_property
    def _kbs(self) -> dict[str, KnowledgeBase]:
        return {}

    async def has_knowledge(self, name: str | None = None) -> bool:
        """Whether the knowledge base ``name`` holds documents (asked once per run and name).

        The planner offers "retrieve" only then: an empty knowledge base is no resource,
        and a small model offered one sends arithmetic to it. A knowledge base that
        cannot be counted (a server down) counts as available; retrieving reports why.
        """
        if name not in self._has_knowledge:
            try:
                kb = await asyncio.to_thread(self.kb_for, name)
                self._has_knowledge[name] = await kb.acount() > 0
            except Exception:  # noqa: BLE001 - any backend failure: let retrieve report it
                self._has_knowledge[name] = True
        return self._has_knowledge[name]

    @cached_property
    def _has_knowledge(self) -> dict[str | None, bool]:
        return {}

    @cached_property
    def registry(self) -> ToolRegistry:
        """The tool set C."""
        if self.tools is not None:
            return self.tools
        from lottery.tools import default_registry

        return default_registry(knowledge=self.kb, web_search=self.settings.web_search)

    # -- telemetry ---------------------------------------------------------------------------
    @cached_property
    def telemetry(self) -> Telemetry:
        """Spans and metrics of the run (see ``lottery/core/tracing.py``)."""
        from lottery.core.tracing import Telemetry

        return Telemetry.for_run(self.settings, chat_model=self.chat_model,
                                 tracer_provider=self.tracer_provider,
                                 meter_provider=self.meter_provider)

    # -- the run's life ----------------------------------------------------------------------
    async def aprepare(self) -> None:
        """Build the run's tool set and knowledge base off the event loop.

        Opening a knowledge base touches the disk (or a server); done in a worker
        thread once per run, the nodes then find them built and never block the loop
        (``langgraph dev`` refuses blocking calls in async nodes).
        """
        if "registry" not in self.__dict__:
            await asyncio.to_thread(lambda: (self.kb, self.registry))

    async def aclose(self) -> None:
        """Close the run's connections to the model servers, if any were opened."""
        client = self.__dict__.get("http_client")
        if client is not None:
            await client.aclose()
