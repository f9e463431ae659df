"""What Studio and streaming clients see: progress events, input overrides, schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph.store.memory import InMemoryStore

from lottery import Context, Resources, astream_events, make_resources
from lottery.errors import InputError
from lottery.graphs import algorithm1, cot, direct
from lottery.stores import Document, InMemoryKnowledgeBase
from tests.unit.scripted import decision, scripted, step_of

pytestmark = pytest.mark.usefixtures("planner_policy")
"""These tests script the model planner's decisions: runs follow the planner policy."""

ROOT_DIR = Path(__file__).resolve().parents[2]
Q = "Which of the towers A and B is taller?"
SUBS = {"How tall is tower A?": "100 m", "How tall is tower B?": "300 m"}


def dividing_model(**kwargs):
    def answers(step, user):
        if step == "merge":
            return "Answer: B"
        return "Answer: " + next((h for s, h in SUBS.items() if s in user), "B")

    return scripted(plans={Q: decision("divide", subproblems=[{"question": s} for s in SUBS])},
                    answers=answers, **kwargs)


async def test_streams_each_decision_and_answer_in_the_order_they_happen():
    events = [e async for e in astream_events(Q, chat_model=dividing_model())]
    kinds = [(e["event"], e.get("problem")) for e in events]
    assert kinds[0] == ("decision", "0")
    assert events[0]["decision"] == "divide"
    assert [c["question"] for c in events[0]["children"]] == list(SUBS)
    # each sub-problem is decided and answered before the root's merged answer
    for pid in ("0.1", "0.2"):
        assert kinds.index(("decision", pid)) < kinds.index(("answer", pid)) < kinds.index(
            ("answer", "0"))
    root_answer = next(e for e in events if e["event"] == "answer" and e["problem"] == "0")
    assert root_answer["step"] == "merge" and root_answer["answer"] == "B"
    assert kinds[-1] == ("result", None)
    result = events[-1]["result"]
    assert result.answer == "B" and set(result.tree) == {"0", "0.1", "0.2"}


async def test_graph_astream_shows_tree_updates_and_custom_events_together():
    graph = algorithm1.build_graph().compile(store=InMemoryStore())
    seen_custom, tree_sizes = [], []
    ctx = make_resources(chat_model=dividing_model()).settings
    async for mode, chunk in graph.astream({"question": Q}, context=ctx,
                                           stream_mode=["updates", "custom"]):
        if mode == "custom":
            seen_custom.append(chunk)
        else:
            for update in chunk.values():
                if isinstance(update, dict) and update.get("problems"):
                    tree_sizes.append(len(update["problems"]))
    assert {e["event"] for e in seen_custom} == {"decision", "answer"}
    assert sum(1 for e in seen_custom if e["event"] == "answer") == 3
    assert max(tree_sizes) == 3, "the divide step adds the root's two sub-problems at once"


async def test_depth_limit_from_the_input_is_streamed_as_a_rule_decision():
    model = dividing_model()
    graph = algorithm1.build_graph().compile(store=InMemoryStore())
    ctx = make_resources(chat_model=model).settings
    events = [c async for c in graph.astream({"question": Q, "max_depth": 0},
                                             context=ctx, stream_mode="custom")]
    assert events[0]["decision"] == "solve" and "depth limit" in events[0]["reason"]
    assert not any(step_of(c["messages"]) == "plan" for c in model.calls)


async def test_input_max_calls_overrides_the_context_budget():
    model = dividing_model()
    graph = algorithm1.build_graph().compile(store=InMemoryStore())
    ctx = make_resources(chat_model=model).settings
    state = await graph.ainvoke({"question": Q, "max_calls": 2}, context=ctx)
    assert state["usage"]["calls"] <= 2
    assert state["best_effort"] and state["stop_reason"] == "budget"


@pytest.mark.parametrize("bad", [{"max_calls": 0}, {"max_depth": -1}, {"max_tokens": "many"},
                                 {"knowledge_base": "  "}])
async def test_rejects_an_unusable_input_override_before_any_model_call(bad):
    model = dividing_model()
    graph = algorithm1.build_graph().compile(store=InMemoryStore())
    with pytest.raises(InputError, match=next(iter(bad))):
        await graph.ainvoke({"question": Q, **bad}, context=make_resources(chat_model=model).settings)
    assert model.calls == []


async def test_input_knowledge_base_selects_another_base_than_the_context():
    res = Resources(settings=Context(knowledge_base="default"))
    other = res.kb_for("physics")
    assert other.name == "physics" and res.kb_for("physics") is other
    assert res.kb_for(None) is res.kb and res.kb_for("default") is res.kb
    injected = InMemoryKnowledgeBase("mine", [Document("d", "text")])
    assert Resources(knowledge=injected).kb_for("physics") is injected


def test_studio_forms_come_from_the_graph_schemas():
    form = algorithm1.graph.get_input_jsonschema()
    assert form["required"] == ["question"]
    assert {"knowledge_base", "max_depth", "max_calls", "max_tokens"} <= set(form["properties"])
    assert "Budget of model calls" in form["properties"]["max_calls"]["description"]
    for baseline in (direct.graph, cot.graph):  # one model call: no limits to set
        baseline_form = baseline.get_input_jsonschema()
        assert baseline_form["required"] == ["question"]
        assert not {"max_depth", "max_calls", "max_tokens"} & set(baseline_form["properties"])
    settings = algorithm1.graph.get_context_jsonschema()["properties"]
    assert {"base_url", "model", "max_depth", "max_calls", "knowledge_base"} <= set(settings)
    assert not {"chat_model", "knowledge", "tools"} & set(settings), "objects are not form fields"
    untyped = [name for name, spec in settings.items() if not ({"type", "anyOf", "enum"} & set(spec))]
    assert not untyped, f"annotate injected objects SkipJsonSchema[...]: {untyped}"
    assert "problems" in algorithm1.graph.get_output_jsonschema()["properties"]


def test_langgraph_json_points_at_the_compiled_graphs():
    config = json.loads((ROOT_DIR / "langgraph.json").read_text())
    assert set(config["graphs"]) == {"algorithm1", "direct", "cot"}
    for spec in config["graphs"].values():
        path, attr = spec.split(":")
        assert (ROOT_DIR / path).is_file() and attr == "graph"


async def test_stream_raises_the_error_of_the_run():
    with pytest.raises(InputError, match="empty"):
        async for _ in astream_events("   ", chat_model=dividing_model()):
            pass


async def test_leaving_the_stream_early_cancels_the_run():
    import asyncio

    model = dividing_model(delay_s=0.2)
    async for event in astream_events(Q, chat_model=model):
        assert event["event"] == "decision"
        break
    calls = len(model.calls)
    await asyncio.sleep(0.6)
    assert len(model.calls) == calls == 1, "no model call after the consumer left"
