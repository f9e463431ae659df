"""Retrieval from long prompts: the model sees only the relevant pieces of a long context."""

from __future__ import annotations

import pytest

from lottery.api import make_resources
from lottery.graphs.algorithm1 import build_graph
from lottery.nodes.preprocess import estimate_tokens, select_context
from lottery.stores.embeddings import CachedEmbeddings, LocalEmbeddings
from lottery.stores.knowledge import Hit, relative_score_fusion
from tests.unit.scripted import decision, scripted

pytestmark = pytest.mark.usefixtures("planner_policy")
"""These tests script the model planner's decisions: runs follow the planner policy."""

NEEDLE = "The secret code of the blue vault is 7421."
FILLER = [f"Chapter {i}. The weather in the valley was mild and the farmers harvested barley "
          f"and oats while traders from town {i} sold wool, salt and pottery at the market."
          for i in range(120)]


def haystack(depth: float) -> str:
    paragraphs = list(FILLER)
    paragraphs.insert(int(len(paragraphs) * depth), NEEDLE)
    return "\n\n".join(paragraphs)


@pytest.fixture(scope="module")
def embeddings() -> CachedEmbeddings:
    return CachedEmbeddings(LocalEmbeddings())


@pytest.mark.parametrize("depth", [0.0, 0.5, 1.0])
async def test_long_context_keeps_the_needle_within_budget(embeddings, depth) -> None:
    context = haystack(depth)
    assert estimate_tokens(context) > 4000
    selection = await select_context("What is the secret code of the blue vault?", context,
                                     budget_tokens=400, embeddings=embeddings)
    assert selection.retrieved
    assert any("7421" in text for _, text in selection.pieces)
    assert estimate_tokens(selection.text()) <= 400 + 100
    assert [i for i, _ in selection.pieces] == sorted(i for i, _ in selection.pieces)


async def test_short_context_is_kept_whole_and_in_order() -> None:
    context = "First part.\n\nSecond part."
    selection = await select_context("q?", context, budget_tokens=1500, embeddings=None)
    assert not selection.retrieved and selection.text().replace("\n...\n", "\n\n") == context


async def test_keyword_only_selection_works_without_embeddings() -> None:
    selection = await select_context("secret code blue vault", haystack(0.3), budget_tokens=400,
                                     embeddings=None)
    assert any("7421" in text for _, text in selection.pieces)


async def test_graph_answers_from_the_retrieved_pieces_only(embeddings) -> None:
    """The solve prompt holds the needle and stays small; the planner is not asked."""
    model = scripted(answers=lambda step, user: "Answer: 7421" if "7421" in user else "Answer: ?")
    ctx = make_resources(chat_model=model, embeddings=embeddings, context_budget=500,
                         max_calls=4).settings
    graph = build_graph().compile()
    out = await graph.ainvoke({"question": "What is the secret code of the blue vault?",
                               "context": haystack(0.7)}, context=ctx)
    assert out["answer"] == "7421"
    assert len(model.calls) == 1  # straight to solve
    prompt = str(model.calls[0]["messages"][1].content)
    assert len(prompt) < 500 * 4 + 1000
    root = out["problems"]["0"]
    assert "retrieved" in root["reason"] and all(e["source"] == "prompt" for e in root["evidence"])


def test_relative_score_fusion_follows_weaviate() -> None:
    keyword = [Hit("a", "", 10.0), Hit("b", "", 5.0), Hit("c", "", 0.0)]
    vector = [Hit("c", "", 0.9), Hit("a", "", 0.5), Hit("b", "", 0.1)]
    fused = relative_score_fusion(keyword, vector, alpha=0.75, k=3)
    # a: 0.25*1 + 0.75*0.5 = 0.625; b: 0.25*0.5 + 0 = 0.125; c: 0 + 0.75*1 = 0.75
    assert [(h.id, round(h.score, 3)) for h in fused] == [("c", 0.75), ("a", 0.625), ("b", 0.125)]
    assert [h.id for h in relative_score_fusion(keyword, vector, alpha=0.0, k=1)] == ["a"]


async def test_asolve_takes_a_document_and_the_cli_a_context_file(embeddings, tmp_path) -> None:
    from typer.testing import CliRunner

    from lottery import asolve
    from lottery.cli import app

    model = scripted(answers=lambda step, user: "Answer: 7421" if "7421" in user else "Answer: ?")
    result = await asolve("What is the secret code of the blue vault?", document=haystack(0.2),
                          chat_model=model, embeddings=embeddings, context_budget=400)
    assert result.answer == "7421"
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\xff\xfe\x00")
    cli = CliRunner().invoke(app, ["ask", "q?", "--context", str(binary)])
    assert cli.exit_code == 2 and "not UTF-8" in cli.stderr


async def test_planner_is_told_what_the_knowledge_base_holds() -> None:
    from lottery import asolve
    from lottery.stores import Document, InMemoryKnowledgeBase

    model = scripted()
    plays = InMemoryKnowledgeBase("plays", [Document("hamlet", "Hamlet is by Shakespeare.")])
    await asolve("Who wrote Hamlet?", chat_model=model, knowledge=plays, knowledge_base="plays",
                 knowledge_description="Shakespeare's plays and their authorship")
    system = str(model.calls[0]["messages"][0].content)
    assert "Knowledge base: 'plays' (Shakespeare's plays and their authorship)." in system
    assert '"retrieve"' in system


async def test_an_empty_knowledge_base_is_not_offered_to_the_planner() -> None:
    from lottery import asolve
    from lottery.stores import InMemoryKnowledgeBase

    # A model that would retrieve anyway: the decision becomes a direct solve.
    model = scripted(plans=lambda q: decision("retrieve", query=q))
    result = await asolve("What is 12 * 7?", chat_model=model, durable=False,
                          knowledge=InMemoryKnowledgeBase("empty"))
    plan_call = model.calls[0]
    assert '"retrieve"' not in str(plan_call["messages"][0].content)
    schema = plan_call["kwargs"]["extra_body"]["response_format"]["json_schema"]["schema"]
    assert "retrieve" not in schema["properties"]["action"]["enum"]
    assert result.root["decision"] == "solve" and "knowledge base is empty" in result.root["reason"]
    assert [c for c in model.calls if "Evidence" in str(c["messages"][-1].content)] == []


@pytest.mark.parametrize(("budget", "whole"), [("100000", True), ("300", False)])
async def test_lottery_context_budget_decides_how_much_of_a_context_is_shown(
        embeddings, monkeypatch, budget, whole) -> None:
    monkeypatch.setenv("LOTTERY_CONTEXT_BUDGET", budget)
    model = scripted(answers=lambda step, user: "Answer: 7421" if "7421" in user else "Answer: ?")
    ctx = make_resources(chat_model=model, embeddings=embeddings, max_calls=4,
                         context_window=100_000).settings
    assert ctx.context_budget == int(budget)
    graph = build_graph().compile()
    out = await graph.ainvoke({"question": "What is the secret code of the blue vault?",
                               "context": haystack(0.3)}, context=ctx)
    prompt = "\n".join(str(m.content) for c in model.calls for m in c["messages"])
    shown = sum(f"Chapter {i}." in prompt for i in range(len(FILLER)))
    assert out["answer"] == "7421"
    assert (shown == len(FILLER)) if whole else (0 < shown < len(FILLER) // 4)
