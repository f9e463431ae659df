"""The bench runner with a scripted model: rows, summary, resume, ablations, report."""

from __future__ import annotations

import asyncio
import json

import pytest

from lottery.bench.report import write_report
from lottery.bench.runner import BenchConfig, ablation_settings, model_params, read_rows, run_bench
from lottery.bench.suites import Item, SuiteData
from lottery.errors import ConfigurationError, ModelServerError
from lottery.stores.knowledge import Document
from lottery.testing import ScriptedChatModel


def arithmetic_suite(n: int = 6) -> SuiteData:
    return SuiteData("toy", [Item(id=f"q{i}", question=f"What is {i} plus {i}?", gold=float(2 * i),
                                  kind="numeric") for i in range(n)])


def adder(messages) -> str:
    """Right for even i, wrong for odd i."""
    text = str(messages[-1].content)
    i = int(text.split("What is ")[1].split(" ")[0])
    return f"Answer: {2 * i if i % 2 == 0 else 2 * i + 1}"


def config(tmp_path, **kw) -> BenchConfig:
    return BenchConfig(**{"suite": "toy", "strategy": "cot", "model": "qwen2.5-coder-0.5b-instruct",
                          "out": str(tmp_path / "run"), "concurrency": 3, **kw})


async def test_writes_one_row_per_item_and_a_summary(tmp_path):
    model = ScriptedChatModel(respond=adder, delay_s=0.01)
    run = await run_bench(config(tmp_path), suite=arithmetic_suite(), chat_model=model)
    rows = read_rows(tmp_path / "run" / "rows.jsonl")
    assert len(rows) == 6 and run.new_rows == 6
    row = next(r for r in rows if r["id"] == "q2")
    assert row["prediction"] == "4" and row["correct"] and row["gold"] == "4"
    assert row["calls"] == 1 and row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    assert row["tree_size"] == 1 and row["wall_time_s"] >= 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["accuracy"] == 0.5 and summary["items"] == 6 and summary["complete"]
    assert summary["compute"] == pytest.approx(0.49e9 * (summary["prompt_tokens"]
                                                         + summary["completion_tokens"]))
    assert model.max_concurrency > 1  # items ran concurrently


async def test_a_stopped_bench_resumes_without_redoing_items(tmp_path):
    first = ScriptedChatModel(respond=adder)
    await run_bench(config(tmp_path), suite=arithmetic_suite(3), chat_model=first)
    assert len(first.calls) == 3
    # Simulate a kill mid-write: a torn last line must not break the resume.
    with (tmp_path / "run" / "rows.jsonl").open("a") as fh:
        fh.write('{"id": "q3", "corr')
    second = ScriptedChatModel(respond=adder)
    run = await run_bench(config(tmp_path), suite=arithmetic_suite(6), chat_model=second)
    assert len(second.calls) == 3  # only q3, q4, q5
    assert run.skipped == 3 and run.new_rows == 3
    ids = [r["id"] for r in read_rows(tmp_path / "run" / "rows.jsonl")]
    assert sorted(ids) == [f"q{i}" for i in range(6)]
    assert run.summary["items"] == 6


async def test_resume_refuses_a_folder_of_a_different_bench(tmp_path):
    await run_bench(config(tmp_path), suite=arithmetic_suite(1),
                    chat_model=ScriptedChatModel(respond=adder))
    with pytest.raises(ConfigurationError, match="different bench.*strategy='cot'"):
        await run_bench(config(tmp_path, strategy="direct"), suite=arithmetic_suite(1),
                        chat_model=ScriptedChatModel(respond=adder))


async def test_a_dead_server_stops_the_bench_and_leaves_items_for_the_resume(tmp_path):
    import httpx

    def down(messages):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(ModelServerError, match=r"in a row \(last: .*connection refused.*run the same"):
        await run_bench(config(tmp_path, concurrency=1), suite=arithmetic_suite(5),
                        chat_model=ScriptedChatModel(respond=down))
    assert read_rows(tmp_path / "run" / "rows.jsonl") == []
    run = await run_bench(config(tmp_path), suite=arithmetic_suite(5),
                          chat_model=ScriptedChatModel(respond=adder))
    assert run.new_rows == 5


async def test_algorithm1_rows_carry_the_tree_size_and_kb_is_loaded(tmp_path):
    suite = SuiteData("toyqa", [Item(id="h1", question="Which band did Neil Peart play in?",
                                     gold=["Rush"], kind="qa")],
                      documents=[Document("d1", "Neil Peart was the drummer of Rush."),
                                 Document("d2", "Jeff Porcaro played drums in Toto.")])

    def respond(messages) -> str:
        system, user = str(messages[0].content), str(messages[-1].content)
        if system.startswith("You plan"):
            return json.dumps({"action": "retrieve", "reason": "look up", "query": "Neil Peart band"})
        return "Answer: Rush" if "drummer of Rush" in user else "Answer: Toto"

    run = await run_bench(config(tmp_path, suite="toyqa", strategy="algorithm1"), suite=suite,
                          chat_model=ScriptedChatModel(respond=respond))
    row = read_rows(tmp_path / "run" / "rows.jsonl")[0]
    # run as `lottery ask` would (auto): the knowledge policy retrieves first, no planner call,
    # and the passages hold the answer
    assert row["correct"] and row["f1"] == 1.0 and row["calls"] == 1 and row["decision"] == "retrieve"
    assert row["policy"] == "knowledge" and row["confidence"] == 0.5 and row["rung"] == "attempt"
    assert run.summary["f1"] == 1.0 and run.summary["policy"] == "auto"
    assert run.summary["calibration"] == [{"from": 0.5, "to": 0.8, "items": 1, "accuracy": 1.0,
                                           "accuracy_ci95": [0.2065, 1.0]}]


async def test_retrieval_ablation_empties_the_knowledge_base(tmp_path):
    suite = SuiteData("toyqa", [Item(id="h1", question="Which band did Neil Peart play in?",
                                     gold=["Rush"], kind="qa")],
                      documents=[Document("d1", "Neil Peart was the drummer of Rush.")])

    def respond(messages) -> str:
        system, user = str(messages[0].content), str(messages[-1].content)
        if system.startswith("You plan"):
            return json.dumps({"action": "retrieve", "reason": "look up", "query": "Neil Peart"})
        return "Answer: Rush" if "drummer of Rush" in user else "Answer: unknown"

    run = await run_bench(config(tmp_path, suite="toyqa", strategy="algorithm1",
                                 ablate=("retrieval",)), suite=suite,
                          chat_model=ScriptedChatModel(respond=respond))
    assert run.summary["accuracy"] == 0.0 and run.summary["label"] == "algorithm1-auto-no-retrieval"


def test_ablations_map_onto_context_settings():
    s = ablation_settings(("tools", "divide", "memory"))
    assert len(s["tools"]) == 0 and s["max_depth"] == 0 and "store" in s and s["reuse"] is False
    with pytest.raises(ConfigurationError, match="unknown ablation"):
        BenchConfig(suite="x", strategy="algorithm1", model="m", out="o", ablate=("vision",))
    with pytest.raises(ConfigurationError, match="algorithm1 only"):
        BenchConfig(suite="x", strategy="cot", model="m", out="o", ablate=("tools",))


async def test_rag_baseline_puts_the_retrieved_passages_in_the_prompt(tmp_path):
    suite = SuiteData("toyqa", [Item(id="h1", question="Which band did Neil Peart play in?",
                                     gold=["Rush"], kind="qa")],
                      documents=[Document("d1", "Neil Peart was the drummer of Rush.")])
    model = ScriptedChatModel(respond=lambda m: "Answer: Rush" if "drummer of Rush" in
                              str(m[-1].content) else "Answer: ?")
    run = await run_bench(config(tmp_path, suite="toyqa", rag=True), suite=suite, chat_model=model)
    assert run.summary["accuracy"] == 1.0 and run.summary["label"] == "cot+rag"


def test_model_params_come_from_the_catalogue_or_the_override():
    assert model_params("qwen2.5-coder-0.5b-instruct") == 0.49e9
    assert model_params("Qwen/Qwen2.5-Coder-1.5B-Instruct") == 1.54e9
    assert model_params("smollm2-135m-instruct") == 0.135e9
    assert model_params("mystery-model") is None
    assert model_params("mystery-model", 7e9) == 7e9


async def test_report_renders_a_table_and_plots(tmp_path):
    for strategy, respond in (("cot", adder), ("direct", lambda m: "Answer: 0")):
        await run_bench(config(tmp_path, strategy=strategy, out=str(tmp_path / strategy)),
                        suite=arithmetic_suite(4), chat_model=ScriptedChatModel(respond=respond))
    written = write_report([tmp_path], tmp_path / "report")
    table = written["table"]
    assert "| toy | qwen2.5-coder-0.5b-instruct | vllm | cot | 4 | 50.0" in table
    assert "| toy | qwen2.5-coder-0.5b-instruct | vllm | direct | 4 | 25.0" in table
    for name in ("accuracy.png", "accuracy_vs_compute.png", "cost.png", "report.md"):
        assert (tmp_path / "report" / name).stat().st_size > 1000 or name == "report.md"


def test_bench_cli_needs_suite_and_out():
    from typer.testing import CliRunner

    from lottery.cli import app

    result = CliRunner().invoke(app, ["bench", "--suite", "gsm8k"])
    assert result.exit_code == 2
    assert "--suite and --out" in result.output


def test_run_bench_is_usable_from_sync_code(tmp_path):
    run = asyncio.run(run_bench(config(tmp_path), suite=arithmetic_suite(2),
                                chat_model=ScriptedChatModel(respond=adder)))
    assert run.summary["items"] == 2


async def test_a_bench_never_reuses_answers_from_an_earlier_bench(tmp_path):
    def respond(messages) -> str:
        system, user = str(messages[0].content), str(messages[-1].content)
        if system.startswith("You plan"):
            if "Part" in user:
                return json.dumps({"action": "solve", "reason": "easy"})
            q = user.split("Question: ")[-1]
            return json.dumps({"action": "divide", "reason": "two parts", "subproblems": [
                {"question": f"Part one of: {q}"}, {"question": f"Part two of: {q}"}]})
        return "Answer: 1"

    costs = []
    for name in ("first", "second"):
        model = ScriptedChatModel(respond=respond)
        # the planner policy with unchecked answers remembered: the most reuse there can be
        await run_bench(config(tmp_path, strategy="algorithm1", out=str(tmp_path / name),
                               policy="planner", settings={"reuse_min_confidence": 0}),
                        suite=arithmetic_suite(2), chat_model=model)
        costs.append(len(model.calls))
    assert costs[0] == costs[1] > 2 * 4  # the second bench solved its sub-problems again


def test_the_label_names_ablations_and_self_consistency():
    def label(**kw):
        return BenchConfig(suite="x", strategy="algorithm1", model="m", out="o", **kw).label
    assert label() == "algorithm1-auto"
    assert label(policy="planner", ablate=("divide",), settings={"solve_samples": 5}) == \
        "algorithm1-planner-no-divide-sc5"
    assert label(settings={"solve_samples": 1, "request_timeout": 30}) == "algorithm1-auto"
    assert (label(policy="planner", ablate=("divide",),
                  settings={"solve_samples": 5, "solve_check": "python"})
            == "algorithm1-planner-no-divide-sc5-checked-python")
    assert label(policy="math", delegate_model="qwen2.5-coder-1.5b-instruct",
                 delegate_base_url="http://x/v1") == "algorithm1-math+delegate-1.5b"
    assert label(delegate_model="qwen2.5-coder-1.5b-instruct", delegate_base_url="http://x/v1",
                 settings={"delegate_strategy": "cot"}) == "algorithm1-auto+delegate-1.5b-cot"
    assert BenchConfig(suite="x", strategy="cot", model="m", out="o").label == "cot"
    assert BenchConfig(suite="x", strategy="pal", model="m", out="o",
                       settings={"program_shots": 0}).label == "pal-0shot"
    with pytest.raises(ConfigurationError, match="unknown policy"):
        label(policy="mathh")
    with pytest.raises(ConfigurationError, match="apply to --strategy algorithm1 only"):
        BenchConfig(suite="x", strategy="cot", model="m", out="o", policy="math")


def test_compute_counts_each_models_tokens_at_its_own_size():
    from lottery.bench.runner import summarize

    cfg = BenchConfig(suite="x", strategy="algorithm1", model="qwen2.5-coder-0.5b-instruct",
                      out="o", delegate_model="qwen2.5-coder-1.5b-instruct",
                      delegate_base_url="http://x/v1")
    rows = [{"correct": True, "prompt_tokens": 300, "completion_tokens": 100,
             "delegate_prompt_tokens": 100, "delegate_completion_tokens": 50, "delegated": True},
            {"correct": False, "prompt_tokens": 200, "completion_tokens": 100}]
    s = summarize(rows, cfg)
    # small: (400 - 150) + 300 = 550 tokens at 0.49e9; delegate: 150 tokens at 1.54e9
    assert s["compute"] == pytest.approx(550 * 0.49e9 + 150 * 1.54e9)
    assert s["delegated"] == 1 and s["delegated_fraction"] == 0.5


def test_the_report_shows_what_auto_chose_and_which_letters_were_given(tmp_path):
    from lottery.bench.report import choices_table
    from lottery.bench.runner import summarize

    cfg = BenchConfig(suite="x", strategy="algorithm1", model="m", out="o")
    rows = [{"gold": "A", "parsed": "B", "correct": False, "policy": "logic"},
            {"gold": "B", "parsed": "B", "correct": True, "policy": "logic"},
            {"gold": "C", "parsed": None, "correct": False, "policy": "general"}]
    s = summarize(rows, cfg)
    assert s["classes"] == {"logic": {"items": 2, "correct": 1},
                            "general": {"items": 1, "correct": 0}}
    assert s["answers"] == {"gold": {"A": 1, "B": 1, "C": 1}, "given": {"B": 2, "none": 1}}
    assert "| logic 1/2, general 0/1 | B 2, none 1 | A 1, B 1, C 1 |" in choices_table([s])
    numbers = summarize([{"gold": 18.0, "parsed": "18", "correct": True}], cfg)
    assert numbers["answers"] is None and numbers["classes"] == {}


def window_refusal(messages) -> str:
    """q1's prompt is 'too long': the server refuses it with HTTP 400, as vLLM does."""
    import httpx
    from langchain_openai.chat_models.base import OpenAIContextOverflowError

    if "What is 1 " in str(messages[-1].content):
        response = httpx.Response(400, request=httpx.Request("POST", "http://127.0.0.1/v1"))
        raise OpenAIContextOverflowError(
            "This model's maximum context length is 4096 tokens.", response=response, body=None)
    return adder(messages)


async def test_rows_name_the_question_by_id_and_do_not_copy_the_data(tmp_path):
    long = "A farmer has " + "many fields of wheat and barley, " * 20 + "how many in all?"
    suite = SuiteData("toy", [Item(id="long", question=long, gold=1.0, kind="numeric")])
    model = ScriptedChatModel(respond=lambda messages: "Answer: 1")
    await run_bench(config(tmp_path), suite=suite, chat_model=model)
    (row,) = read_rows(tmp_path / "run" / "rows.jsonl")
    assert row["id"] == "long" and row["correct"]
    assert long.startswith(row["question"][:-1]) and len(row["question"]) <= 80


async def test_a_refused_request_is_a_scored_error_row_not_a_dead_server(tmp_path):
    model = ScriptedChatModel(respond=window_refusal)
    run = await run_bench(config(tmp_path), suite=arithmetic_suite(4), chat_model=model)
    rows = {r["id"]: r for r in read_rows(tmp_path / "run" / "rows.jsonl")}
    assert len(rows) == 4 and run.summary["complete"], "the bench went on and finished"
    assert rows["q1"]["correct"] is False
    assert "ModelRequestError" in rows["q1"]["error"] and "maximum context" in rows["q1"]["error"]


def test_an_item_written_twice_counts_once(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"id": "a", "correct": true}\n{"id": "b", "correct": false}\n'
                    '{"id": "a", "correct": false}\n', encoding="utf-8")
    assert read_rows(rows) == [{"id": "a", "correct": True}, {"id": "b", "correct": False}]


def test_a_bench_stopped_before_its_summary_is_reported_as_partial(tmp_path):
    from lottery.bench.report import load_results

    folder = tmp_path / "stopped"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(
        {"suite": "svamp", "strategy": "cot", "model": "qwen2.5-coder-1.5b-instruct", "limit": 10}))
    (folder / "rows.jsonl").write_text("".join(
        json.dumps({"id": f"q{i}", "correct": i == 0, "prompt_tokens": 1, "completion_tokens": 1})
        + "\n" for i in range(3)))
    (result,) = load_results([folder])
    assert result["items"] == 3 and result["items_planned"] == 10 and not result["complete"]
