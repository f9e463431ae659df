"""Weaviate down or rejecting objects: a clear error, every failed object named, the rest kept.

The full behaviour is the conformance suite's Weaviate legs (the in-process fake
always, a real server when ``WEAVIATE_URL`` is set); these tests cover the faults.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from lottery.errors import StoreError
from lottery.stores.knowledge import Document
from lottery.stores.weaviate import WeaviateKnowledgeBase, collection_name
from tests.fakes.weaviate_server import FakeWeaviate


class _Vectors:
    model_id = "fixed"

    def embed_documents(self, texts):
        return [[1.0, 0.0] for _ in texts]

    def embed_query(self, text):
        return [1.0, 0.0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_weaviate_down_is_a_store_error_that_says_what_to_do() -> None:
    kb = WeaviateKnowledgeBase("docs", url=f"http://127.0.0.1:{_closed_port()}",
                               grpc_url=f"http://127.0.0.1:{_closed_port()}", embeddings=_Vectors())
    with pytest.raises(StoreError, match="WEAVIATE_URL"):
        await kb.aupsert([Document("a", "text")])
    with pytest.raises(StoreError, match="Weaviate at"):
        await kb.asearch("text")


async def test_rejected_objects_and_lost_batches_are_reported_per_document(monkeypatch) -> None:
    """A stand-in collection: batch 1 has one object rejected, batch 2 hits a dead connection."""
    monkeypatch.setattr("lottery.stores.weaviate.BATCH_SIZE", 3)
    stored: list[str] = []

    async def fetch_objects(**_):
        return SimpleNamespace(objects=[])

    async def insert_many(objects):
        if stored:
            raise ConnectionError("connection reset")
        stored.extend(o.properties["doc_id"] for i, o in enumerate(objects) if i != 1)
        return SimpleNamespace(errors={1: SimpleNamespace(message="vector length mismatch")})

    collection = SimpleNamespace(query=SimpleNamespace(fetch_objects=fetch_objects),
                                 data=SimpleNamespace(insert_many=insert_many))
    kb = WeaviateKnowledgeBase("docs", url="http://127.0.0.1:1", embeddings=_Vectors())

    async def fake_collection(create):
        return collection

    monkeypatch.setattr(kb, "_collection", fake_collection)
    docs = [Document(f"d{i}", f"text {i}") for i in range(5)] + [Document("d0", "dup")]
    report = await kb.aupsert(docs)
    assert report.added == 2 and stored == ["d0", "d2"]
    assert "vector length mismatch" in report.failed["d1"]
    assert "connection reset" in report.failed["d3"] and "connection reset" in report.failed["d4"]
    assert "duplicate" in report.failed["d0"]


async def test_an_object_the_server_rejects_is_named_and_the_batch_lands() -> None:
    """Through the real client and wire protocol: the fake refuses a vector of the wrong length."""

    class _Ragged(_Vectors):
        def embed_documents(self, texts):
            return [[1.0, 0.0, 0.0] if "odd" in t else [1.0, 0.0] for t in texts]

    fake = FakeWeaviate().start()
    kb = WeaviateKnowledgeBase("docs", url=fake.url, grpc_url=fake.grpc_url, embeddings=_Ragged())
    try:
        report = await kb.aupsert([Document("a", "first"), Document("b", "the odd one"),
                                   Document("c", "third")])
        assert report.added == 2 and set(report.failed) == {"b"}
        assert "rejected by Weaviate" in report.failed["b"] and "length 3" in report.failed["b"]
        assert await kb.acount() == 2
        assert "gRPC weaviate.v1.Weaviate/BatchObjects" in fake.calls
    finally:
        await kb.adrop()
        await kb.aclose()
        fake.stop()


def test_collection_names_are_valid_weaviate_class_names() -> None:
    assert collection_name("my-notes") == "Lottery_my_notes"
