"""The Weaviate knowledge base (weaviate-client v4, async API), for corpora beyond one machine.

- One collection per knowledge base (``Lottery_<name>``), multi-tenancy on:
  each tenant is a separate shard, created on first write.
- Vectors are self-provided (``Configure.Vectors.self_provided()``), computed by
  the same embeddings as the embedded backend, so both rank alike.
- Keyword search is ``query.bm25`` over the ``text`` property; vector search
  ``query.near_vector``; hybrid ``query.hybrid`` with ``alpha`` and
  ``relativeScoreFusion``.
- Object UUIDs are ``uuid5(document id)``: re-adding an id replaces the object.
  Imports go through ``data.insert_many`` in batches, and every object Weaviate
  rejects is reported by id; a batch lost to a connection error is reported
  whole, and the batches before it stay stored.
- Metadata is kept as JSON (``metadata_json``) and, for filtering, each scalar
  value as a property ``m_<key>`` (added by Weaviate's auto-schema).

Connection: ``WEAVIATE_URL`` (``http://host:8080``), optional
``WEAVIATE_GRPC_URL`` (default: same host, port 50051) and ``WEAVIATE_API_KEY``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from langchain_core.embeddings import Embeddings

from lottery.errors import ConfigurationError, StoreError
from lottery.stores.knowledge import (
    DEFAULT_TENANT,
    Document,
    Hit,
    KnowledgeBase,
    SearchMode,
    UpsertReport,
    check_batch,
    check_name,
    need_embeddings,
)

BATCH_SIZE = 100
"""Objects per ``insert_many`` request."""


_SOURCE_LIMIT = 10_000
"""Weaviate's default QUERY_MAXIMUM_RESULTS: the most chunks of one source it lists."""


def collection_name(kb_name: str) -> str:
    """The Weaviate collection of a knowledge base (class names start with a capital)."""
    return "Lottery_" + kb_name.replace("-", "_")


class WeaviateKnowledgeBase(KnowledgeBase):
    """A knowledge base in a Weaviate collection; one tenant of it per instance."""

    backend = "weaviate"

    def __init__(self, name: str, *, url: str, api_key: str | None = None,
                 grpc_url: str | None = None, tenant: str = DEFAULT_TENANT,
                 embeddings: Embeddings | None = None) -> None:
        check_name(name, "knowledge base")
        check_name(tenant, "tenant")
        self.name = name
        self.tenant = tenant
        self.url = url
        self._api_key = api_key
        self._grpc_url = grpc_url
        self._embeddings = embeddings
        self._client: Any = None

    @classmethod
    def from_env(cls, name: str, *, tenant: str = DEFAULT_TENANT,
                 embeddings: Embeddings | None = None) -> WeaviateKnowledgeBase:
        """Connection settings from ``WEAVIATE_URL``, ``WEAVIATE_GRPC_URL``, ``WEAVIATE_API_KEY``."""
        url = os.environ.get("WEAVIATE_URL")
        if not url:
            raise ConfigurationError("WEAVIATE_URL is not set (for example http://localhost:8080)")
        return cls(name, url=url, api_key=os.environ.get("WEAVIATE_API_KEY") or None,
                   grpc_url=os.environ.get("WEAVIATE_GRPC_URL") or None, tenant=tenant,
                   embeddings=embeddings)

    # -- connection -------------------------------------------------------------------
    def _down(self, exc: BaseException) -> StoreError:
        return StoreError(
            f"Weaviate at {self.url} failed: {type(exc).__name__}: {str(exc)[:300]}; check that "
            "it runs (docker compose -f deployments/docker-compose.yml up -d weaviate) or unset "
            "WEAVIATE_URL to use the embedded store"
        )

    async def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        import weaviate
        from weaviate.classes.init import AdditionalConfig, Auth, Timeout

        http = urlparse(self.url)
        if http.scheme not in ("http", "https") or not http.hostname:
            raise ConfigurationError(f"WEAVIATE_URL={self.url!r} is not an http(s) URL")
        grpc = urlparse(self._grpc_url or f"{http.scheme}://{http.hostname}:50051")
        secure = http.scheme == "https"
        try:
            client = weaviate.use_async_with_custom(
                http_host=http.hostname, http_port=http.port or (443 if secure else 80),
                http_secure=secure, grpc_host=grpc.hostname or http.hostname,
                grpc_port=grpc.port or 50051, grpc_secure=grpc.scheme == "https",
                auth_credentials=Auth.api_key(self._api_key) if self._api_key else None,
                additional_config=AdditionalConfig(timeout=Timeout(init=10, query=60, insert=120)),
            )
        except ValueError as exc:  # pydantic validation of the connection parameters
            raise ConfigurationError(f"WEAVIATE_URL={self.url!r}: {exc}".splitlines()[0]) from None
        try:
            await client.connect()
        except Exception as exc:  # the client raises several connection error types
            await client.close()
            raise self._down(exc) from exc
        self._client = client
        return client

    async def _collection(self, create: bool) -> Any:
        """This tenant's view of the collection; ``None`` when it does not exist (and not create)."""
        client = await self._connect()
        name = collection_name(self.name)
        try:
            if not await client.collections.exists(name):
                if not create:
                    return None
                await self._create(client, name)
            collection = client.collections.use(name)
            if self.tenant not in await collection.tenants.get():
                if not create:
                    return None
                from weaviate.classes.tenants import Tenant

                await collection.tenants.create([Tenant(name=self.tenant)])
            return collection.with_tenant(self.tenant)
        except (StoreError, ConfigurationError):
            raise
        except Exception as exc:
            raise self._down(exc) from exc

    async def _create(self, client: Any, name: str) -> None:
        from weaviate.classes.config import Configure, DataType, Property, Tokenization

        await client.collections.create(
            name,
            description=f"lottery knowledge base {self.name!r}",
            vector_config=Configure.Vectors.self_provided(),
            multi_tenancy_config=Configure.multi_tenancy(
                enabled=True, auto_tenant_creation=True, auto_tenant_activation=True),
            properties=[
                Property(name="text", data_type=DataType.TEXT, tokenization=Tokenization.WORD),
                Property(name="doc_id", data_type=DataType.TEXT,
                         tokenization=Tokenization.FIELD, index_searchable=False),
                Property(name="metadata_json", data_type=DataType.TEXT,
                         index_searchable=False, index_filterable=False),
                # matched whole: with the word tokenization auto-schema gives a new text
                # property, "a.md" equalled "docs/a.md" and replacing one deleted the other
                Property(name="m_source", data_type=DataType.TEXT,
                         tokenization=Tokenization.FIELD, index_searchable=False),
            ],
        )

    def _need_embeddings(self) -> Embeddings:
        return need_embeddings(self.name, self._embeddings)

    # -- writes -----------------------------------------------------------------------
    async def aupsert(self, documents: Sequence[Document]) -> UpsertReport:
        from weaviate.classes.data import DataObject
        from weaviate.classes.query import Filter
        from weaviate.util import generate_uuid5

        report = UpsertReport()
        good = check_batch(documents, report)
        if not good:
            return report
        vectors = await asyncio.to_thread(self._need_embeddings().embed_documents,
                                          [d.text for d in good])
        collection = await self._collection(create=True)
        for start in range(0, len(good), BATCH_SIZE):
            docs = good[start:start + BATCH_SIZE]
            uuids = [generate_uuid5(d.id) for d in docs]
            try:
                found = await collection.query.fetch_objects(
                    filters=Filter.by_id().contains_any(uuids), limit=len(uuids))
                existing = {str(o.uuid) for o in found.objects}
                result = await collection.data.insert_many([
                    DataObject(properties=_properties(d), uuid=u, vector=v)
                    for d, u, v in zip(docs, uuids, vectors[start:start + BATCH_SIZE],
                                       strict=True)
                ])
            except Exception as exc:  # connection lost or batch refused: report each object
                reason = str(self._down(exc))
                for d in docs:
                    report.failed[d.id] = reason
                continue
            for index, d in enumerate(docs):
                error = result.errors.get(index)
                if error is not None:
                    report.failed[d.id] = f"rejected by Weaviate: {error.message}"
                elif str(uuids[index]) in existing:
                    report.updated += 1
                else:
                    report.added += 1
        return report

    async def adelete(self, ids: Sequence[str]) -> int:
        from weaviate.classes.query import Filter

        collection = await self._collection(create=False)
        if collection is None or not ids:
            return 0
        try:
            result = await collection.data.delete_many(
                where=Filter.by_property("doc_id").contains_any(list(ids)))
        except Exception as exc:
            raise self._down(exc) from exc
        return int(result.successful)

    async def astored(self, ids: Sequence[str]) -> dict[str, Document]:
        from weaviate.classes.query import Filter

        collection = await self._collection(create=False)
        if collection is None or not ids:
            return {}
        try:
            result = await collection.query.fetch_objects(
                filters=Filter.by_property("doc_id").contains_any(list(ids)), limit=len(ids))
        except Exception as exc:
            raise self._down(exc) from exc
        hits = [_hit(o, None) for o in result.objects]
        return {h.id: Document(h.id, h.text, h.metadata) for h in hits}

    async def asource_ids(self, source: str) -> set[str]:
        from weaviate.classes.query import Filter

        collection = await self._collection(create=False)
        if collection is None:
            return set()
        try:
            result = await collection.query.fetch_objects(
                filters=Filter.by_property("m_source").equal(source), limit=_SOURCE_LIMIT,
                return_properties=["doc_id"])
        except Exception as exc:
            raise self._down(exc) from exc
        if len(result.objects) >= _SOURCE_LIMIT:
            raise StoreError(f"{source} has more than {_SOURCE_LIMIT} chunks in Weaviate (its "
                             "query limit): split the file")
        return {str(o.properties.get("doc_id")) for o in result.objects}

    async def adrop(self) -> None:
        collection = await self._collection(create=False)
        if collection is None:
            return
        client, name = self._client, collection_name(self.name)
        try:
            base = client.collections.use(name)
            await base.tenants.remove([self.tenant])
            if not await base.tenants.get():
                await client.collections.delete(name)
        except Exception as exc:
            raise self._down(exc) from exc

    # -- reads ------------------------------------------------------------------------
    async def aexists(self) -> bool:
        return await self._collection(create=False) is not None

    async def acount(self) -> int:
        collection = await self._collection(create=False)
        if collection is None:
            return 0
        try:
            result = await collection.aggregate.over_all(total_count=True)
        except Exception as exc:
            raise self._down(exc) from exc
        return int(result.total_count or 0)

    async def astats(self) -> dict[str, Any]:
        stats = await super().astats()
        return {**stats, "url": self.url, "collection": collection_name(self.name)}

    async def _search(self, query: str, k: int, mode: SearchMode, alpha: float,
                      filters: Mapping[str, Any] | None) -> list[Hit]:
        from weaviate.classes.query import Filter, HybridFusion, MetadataQuery

        collection = await self._collection(create=False)
        if collection is None:
            return []
        where = None
        if filters:
            where = Filter.all_of([Filter.by_property(f"m_{key}").equal(value)
                                   for key, value in filters.items()])
        try:
            if mode == "bm25":
                result = await collection.query.bm25(
                    query, query_properties=["text"], limit=k, filters=where,
                    return_metadata=MetadataQuery(score=True))
                return [_hit(o, o.metadata.score) for o in result.objects]
            vector = await asyncio.to_thread(self._need_embeddings().embed_query, query)
            if mode == "vector":
                result = await collection.query.near_vector(
                    vector, limit=k, filters=where, return_metadata=MetadataQuery(distance=True))
                return [_hit(o, 1.0 - (o.metadata.distance or 0.0)) for o in result.objects]
            result = await collection.query.hybrid(
                query, vector=vector, alpha=alpha, query_properties=["text"],
                fusion_type=HybridFusion.RELATIVE_SCORE, limit=k, filters=where,
                return_metadata=MetadataQuery(score=True))
            return [_hit(o, o.metadata.score) for o in result.objects]
        except (StoreError, ConfigurationError):
            raise
        except Exception as exc:
            raise self._down(exc) from exc

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()


def _properties(doc: Document) -> dict[str, Any]:
    props: dict[str, Any] = {"text": doc.text, "doc_id": doc.id,
                             "metadata_json": json.dumps(dict(doc.metadata))}
    for key, value in doc.metadata.items():
        if isinstance(value, str | int | float | bool) and key.isidentifier():
            props[f"m_{key}"] = value
    return props


def _hit(obj: Any, score: float | None) -> Hit:
    props = obj.properties
    return Hit(str(props.get("doc_id")), str(props.get("text")), float(score or 0.0),
               json.loads(props.get("metadata_json") or "{}"))
