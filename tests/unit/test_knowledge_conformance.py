"""ONE conformance suite for every knowledge-base backend: what "works" means for D.

Three legs, all with the real offline all-MiniLM-L6-v2 embeddings:

- ``embedded`` (SQLite FTS5 + vectors): always runs.
- ``weaviate-fake``: the Weaviate store, unchanged, against an in-process fake of
  Weaviate's REST and gRPC surface (:mod:`tests.fakes.weaviate_server`): always runs.
- ``weaviate``: the Weaviate store against a real server, when ``WEAVIATE_URL``
  points at one, for example::

    docker compose -f deployments/docker-compose.yml up -d weaviate
    WEAVIATE_URL=http://localhost:8080 pytest tests/unit/test_knowledge_conformance.py
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from lottery.errors import InputError
from lottery.stores.embeddings import LocalEmbeddings
from lottery.stores.factory import open_knowledge_base
from lottery.stores.knowledge import MAX_DOCUMENT_CHARS, Document, KnowledgeBase
from tests.fakes.weaviate_server import FakeWeaviate

BACKENDS = [
    "embedded",
    "weaviate-fake",
    pytest.param("weaviate", marks=[
        pytest.mark.integration,
        pytest.mark.skipif(not os.environ.get("WEAVIATE_URL"), reason=(
            "Weaviate leg: set WEAVIATE_URL (and WEAVIATE_API_KEY if needed) to a running "
            "Weaviate, e.g. `docker compose -f deployments/docker-compose.yml up -d weaviate` "
            "then WEAVIATE_URL=http://localhost:8080 pytest -m integration")),
    ]),
]

CORPUS = [
    Document("cats", "Cats are small domesticated felines that people keep as pets.",
             {"topic": "animals", "year": 2001}),
    Document("everest", "Mount Everest is the highest mountain above sea level, in the Himalayas.",
             {"topic": "geography", "year": 1999}),
    Document("python", "Python is a programming language created by Guido van Rossum.",
             {"topic": "computing", "year": 1991}),
    Document("paris", "Paris is the capital and largest city of France.",
             {"topic": "geography", "year": 2005}),
]


@pytest.fixture(scope="session")
def embeddings() -> LocalEmbeddings:
    return LocalEmbeddings()


@pytest.fixture(scope="session")
def fake_weaviate() -> Iterator[FakeWeaviate]:
    """One in-process fake Weaviate (HTTP and gRPC on free ports of 127.0.0.1) for the session."""
    fake = FakeWeaviate().start()
    yield fake
    fake.stop()


@pytest.fixture(params=BACKENDS)
async def open_kb(request: pytest.FixtureRequest, embeddings: LocalEmbeddings,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator:
    """A factory of knowledge bases on one backend; everything it opened is dropped after."""
    opened: list[KnowledgeBase] = []
    prefix = f"t{uuid.uuid4().hex[:8]}"
    backend = request.param
    if backend == "weaviate-fake":
        fake = request.getfixturevalue("fake_weaviate")
        monkeypatch.setenv("WEAVIATE_URL", fake.url)
        monkeypatch.setenv("WEAVIATE_GRPC_URL", fake.grpc_url)
        monkeypatch.delenv("WEAVIATE_API_KEY", raising=False)
        backend = "weaviate"

    def make(name: str = "kb", tenant: str | None = None) -> KnowledgeBase:
        kb = open_knowledge_base(f"{prefix}-{name}", tenant=tenant, embeddings=embeddings,
                                 backend=backend)
        opened.append(kb)
        return kb

    yield make
    for kb in opened:
        await kb.adrop()
        await kb.aclose()


async def filled(open_kb, **kw) -> KnowledgeBase:
    kb = open_kb(**kw)
    report = await kb.aupsert(CORPUS)
    assert (report.added, report.updated, report.failed) == (len(CORPUS), 0, {})
    return kb


async def test_upsert_counts_and_readding_replaces(open_kb) -> None:
    kb = await filled(open_kb)
    assert await kb.acount() == 4
    report = await kb.aupsert([Document("paris", "Paris hosts the Louvre museum.", {"topic": "art"})])
    assert (report.added, report.updated) == (0, 1)
    assert await kb.acount() == 4
    hits = await kb.asearch("Louvre museum", k=1, mode="bm25")
    assert hits[0].id == "paris" and hits[0].metadata["topic"] == "art"
    assert all(h.id != "paris" for h in await kb.asearch("largest city", k=4, mode="bm25"))


async def test_delete_reports_how_many_existed(open_kb) -> None:
    kb = await filled(open_kb)
    assert await kb.adelete(["cats", "no-such-id"]) == 1
    assert await kb.acount() == 3
    assert all(h.id != "cats" for h in await kb.asearch("cats felines pets", k=4, mode="bm25"))


async def test_bm25_ranks_the_keyword_match_first(open_kb) -> None:
    kb = await filled(open_kb)
    hits = await kb.asearch("Guido van Rossum", k=2, mode="bm25")
    assert hits and hits[0].id == "python"
    assert hits[0].score > 0 and "Guido" in hits[0].text


async def test_vector_finds_a_paraphrase_without_shared_words(open_kb) -> None:
    kb = await filled(open_kb)
    assert await kb.asearch("kitty", k=2, mode="bm25") == []
    hits = await kb.asearch("kitty", k=1, mode="vector")
    assert [h.id for h in hits] == ["cats"]


async def test_hybrid_alpha_moves_between_keyword_and_vector(open_kb) -> None:
    kb = await filled(open_kb)
    query = "tallest peak on Earth"  # no word in common with the Everest text
    assert (await kb.asearch(query, k=1, mode="hybrid", alpha=1.0))[0].id == "everest"
    hybrid = await kb.asearch(query, k=4, mode="hybrid", alpha=0.5)
    assert hybrid[0].id == "everest"
    assert all(0.0 <= h.score <= 1.0 for h in hybrid)
    assert [h.score for h in hybrid] == sorted((h.score for h in hybrid), reverse=True)
    keyword_only = await kb.asearch("capital France", k=4, mode="hybrid", alpha=0.0)
    assert keyword_only[0].id == "paris"


async def test_metadata_filters_keep_only_matching_documents(open_kb) -> None:
    kb = await filled(open_kb)
    for mode in ("bm25", "vector", "hybrid"):
        hits = await kb.asearch("mountain city capital", k=4, mode=mode, filters={"topic": "geography"})
        assert {h.id for h in hits} <= {"everest", "paris"} and hits, mode
    hits = await kb.asearch("Python language", k=4, mode="hybrid", filters={"year": 1991})
    assert [h.id for h in hits] == ["python"]
    assert await kb.asearch("Python", k=4, mode="bm25", filters={"topic": "nope"}) == []


async def test_tenants_and_knowledge_bases_are_isolated(open_kb) -> None:
    a = await filled(open_kb, name="shared", tenant="alice")
    b = open_kb(name="shared", tenant="bob")
    other = open_kb(name="other")
    assert await b.acount() == 0 and await other.acount() == 0
    await b.aupsert([Document("bob-only", "Bob keeps notes about sailing boats.")])
    assert await a.acount() == 4
    assert await a.asearch("sailing boats", k=4, mode="bm25") == []
    assert [h.id for h in await b.asearch("sailing boats", k=4)] == ["bob-only"]


async def test_bad_documents_are_reported_and_the_rest_lands(open_kb) -> None:
    kb = await filled(open_kb)
    report = await kb.aupsert([
        Document("good", "Copper conducts electricity well."),
        Document("empty", "   "),
        Document("", "no id"),
        Document("binary", "abc\x00def"),
        Document("huge", "x" * (MAX_DOCUMENT_CHARS + 1)),
        Document("good", "a second document with the same id"),
        Document("badmeta", "text", {"obj": object()}),
    ])
    assert report.added == 1
    assert set(report.failed) == {"empty", "<no id>", "binary", "huge", "good", "badmeta"}
    assert "duplicate" in report.failed["good"] and "split" in report.failed["huge"]
    assert await kb.acount() == 5  # the corpus is untouched, the good one landed
    hits = await kb.asearch("copper electricity", k=1, mode="bm25")
    assert hits[0].id == "good" and "Copper" in hits[0].text


async def test_missing_or_empty_knowledge_base_searches_as_empty(open_kb) -> None:
    kb = open_kb(name="never-filled")
    assert not await kb.aexists()
    assert await kb.acount() == 0
    for mode in ("bm25", "vector", "hybrid"):
        assert await kb.asearch("anything at all", mode=mode) == []
    assert (await kb.astats())["documents"] == 0


async def test_drop_removes_everything_and_survives_a_reopen(open_kb) -> None:
    kb = await filled(open_kb, name="persist")
    await kb.aclose()
    reopened = open_kb(name="persist")
    assert await reopened.acount() == 4
    assert (await reopened.asearch("Everest", k=1, mode="bm25"))[0].id == "everest"
    await reopened.adrop()
    assert await open_kb(name="persist").acount() == 0


async def test_bad_search_arguments_are_refused(open_kb) -> None:
    kb = await filled(open_kb)
    with pytest.raises(InputError, match="mode"):
        await kb.asearch("x", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="alpha"):
        await kb.asearch("x", alpha=1.5)
    with pytest.raises(InputError, match="k must"):
        await kb.asearch("x", k=0)
    with pytest.raises(InputError, match="filter"):
        await kb.asearch("x", filters={"bad key": 1})


async def test_replacing_a_source_leaves_exactly_its_new_chunks(open_kb) -> None:
    kb = open_kb()
    old = [Document(f"f#{i}", f"Old chunk {i} about walruses.", {"source": "f"}) for i in range(3)]
    other = Document("g#0", "Another file about walruses.", {"source": "g"})
    await kb.aupsert([*old, other])
    report = await kb.areplace_source("f", [Document("f#0", "New text about pelicans.",
                                                     {"source": "f"})])
    assert (report.updated, report.removed) == (1, 2)
    assert await kb.asource_ids("f") == {"f#0"} and await kb.asource_ids("g") == {"g#0"}
    assert await kb.acount() == 2  # the other source is untouched


async def test_a_source_is_matched_whole_not_by_its_words(open_kb) -> None:
    # "a.md" and "docs/a.md" share every word: replacing one must not touch the other
    kb = open_kb()
    await kb.aupsert([Document("a#0", "Chunk about herons.", {"source": "a.md"}),
                      Document("d#0", "Chunk about egrets.", {"source": "docs/a.md"}),
                      Document("d#1", "More about egrets.", {"source": "docs/a.md"})])
    assert await kb.asource_ids("a.md") == {"a#0"}
    report = await kb.areplace_source("a.md", [Document("a#0", "New about herons.",
                                                        {"source": "a.md"})])
    assert report.removed == 0
    assert await kb.asource_ids("docs/a.md") == {"d#0", "d#1"} and await kb.acount() == 3


async def test_a_failed_replacement_deletes_nothing(open_kb) -> None:
    kb = open_kb()
    await kb.aupsert([Document(f"f#{i}", f"Chunk {i} about otters.", {"source": "f"})
                      for i in range(3)])
    report = await kb.areplace_source("f", [Document("f#0", "   ", {"source": "f"})])
    assert report.failed and report.removed == 0
    assert await kb.asource_ids("f") == {"f#0", "f#1", "f#2"}
