"""Needle in a haystack: the small model's accuracy with and without prompt preprocessing.

Haystacks are real paragraphs (HotpotQA and MuSiQue dev contexts, shuffled
with a fixed seed, the shorter haystacks being prefixes of the longer ones).
One synthetic needle ("The access code of the <name> is <4 digits>.") goes in
at each depth; the question asks for the code, and a reply is right when it
contains the digits.

Every trial runs the real Algorithm 1 graph with the question and the
haystack as its ``context`` against a real OpenAI-compatible server:

- ``preprocessed``: the default path: over ``context_budget`` tokens, the
  context is split, indexed in a throw-away collection and only the pieces
  relevant to the question reach the model;
- ``whole``: preprocessing off (budget unlimited): the whole haystack goes in
  the prompt; past the server's context window the request is refused and
  the trial counts as wrong;
- ``truncated``: preprocessing off, the haystack cut to what fits the window
  (its head), the usual workaround.

    python benchmarks/niah.py --base-url http://127.0.0.1:8000/v1 \\
        [--lengths 2000,4000,8000,16000,32000,64000] [--depths 0.1,0.5,0.9]

Writes ``results/niah.json`` (every trial) and prints the accuracy table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

from kb_common import data_dir, read_jsonl, write_result

from lottery.api import make_resources
from lottery.core.context import Context
from lottery.graphs.algorithm1 import build_graph
from lottery.nodes.preprocess import select_context
from lottery.stores.embeddings import CachedEmbeddings, LocalEmbeddings

PLACES = ["Thornbury archive", "Velden observatory", "Marrow Street depot", "Ashcombe vault",
          "Kestrel boathouse", "Orlin chapel", "Brackwater mill", "Soren lighthouse",
          "Halvard library", "Quillon armoury", "Pellham granary", "Wyndmoor tower",
          "Castellan cellar", "Ebbridge signal box", "Fennick greenhouse", "Lorne mint",
          "Ravensmere studio", "Tolland pumphouse", "Inverhope bunker", "Galloway kiln"]
CONDITIONS = ("preprocessed", "whole", "truncated")


def paragraphs() -> list[str]:
    """Real paragraphs, deduplicated, in a fixed shuffled order."""
    base = data_dir() / "multihop"
    seen: dict[str, None] = {}
    for row in read_jsonl(base / "hotpot_dev.jsonl"):
        for title, sentences in row["context"]:
            seen.setdefault(f"{title}: " + "".join(sentences).strip(), None)
    for row in read_jsonl(base / "musique_dev.jsonl"):
        for p in row["paragraphs"]:
            seen.setdefault(f"{p['title']}: {p['paragraph_text'].strip()}", None)
    out = list(seen)
    random.Random(13).shuffle(out)
    return out


class Counter:
    """Token counts with the model's own tokenizer when its files are at hand, else chars / 4."""

    def __init__(self, tokenizer_dir: str | None) -> None:
        self._tok = None
        if tokenizer_dir and Path(tokenizer_dir, "tokenizer.json").exists():
            from transformers import AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(tokenizer_dir)

    def __call__(self, text: str) -> int:
        if self._tok is None:
            return len(text) // 4
        return len(self._tok(text, add_special_tokens=False)["input_ids"])

    @property
    def exact(self) -> bool:
        return self._tok is not None


def haystack(pool: list[str], tokens: int, count: Any, needle: str, depth: float) -> str:
    """Paragraphs from the pool's start up to ``tokens`` tokens, the needle at ``depth``."""
    chosen, total = [], 0
    for p in pool:
        if total >= tokens:
            break
        chosen.append(p)
        total += count(p) + 1
    chosen.insert(round(depth * len(chosen)), needle)
    return "\n\n".join(chosen)


def truncate(text: str, tokens: int, count: Any) -> str:
    """The head of ``text`` that fits in ``tokens`` (by paragraphs)."""
    kept, total = [], 0
    for p in text.split("\n\n"):
        n = count(p) + 1
        if total + n > tokens:
            break
        kept.append(p)
        total += n
    return "\n\n".join(kept)


async def trial(graph: Any, ctx: Context, question: str, context: str, code: str,
                sem: asyncio.Semaphore) -> dict[str, Any]:
    async with sem:
        t0 = time.perf_counter()
        try:
            out = await graph.ainvoke({"question": question, "context": context}, context=ctx)
            answer, error = out.get("answer") or "", None
            usage = out.get("usage") or {}
        except Exception as exc:  # a refused request is a wrong answer, recorded with its reason
            answer, error, usage = "", f"{type(exc).__name__}: {str(exc)[:200]}", {}
        return {"answer": answer[:200], "correct": code in answer, "error": error,
                "prompt_tokens": usage.get("prompt_tokens", 0),
                "seconds": round(time.perf_counter() - t0, 2)}


async def retrieval_only(args: argparse.Namespace) -> None:
    """No model: is the needle among the pieces preprocessing keeps? (the ceiling of its accuracy)"""
    pool, count = paragraphs(), Counter(args.tokenizer)
    lengths = [int(x) for x in args.lengths.split(",")]
    depths = [float(x) for x in args.depths.split(",")]
    rng = random.Random(7)
    embeddings = CachedEmbeddings(LocalEmbeddings())
    places = iter(rng.sample(PLACES, len(PLACES)) * 10)
    trials, t0 = [], time.perf_counter()
    for length in lengths:
        for depth in depths:
            for _ in range(args.needles):
                place, code = next(places), str(rng.randint(1000, 9999))
                text = haystack(pool, length, count, f"The access code of the {place} is {code}.",
                                depth)
                t = time.perf_counter()
                selection = await select_context(f"What is the access code of the {place}?", text,
                                                 budget_tokens=args.budget, embeddings=embeddings)
                trials.append({"length": length, "depth": depth, "haystack_tokens": count(text),
                               "pieces": selection.total, "kept": len(selection.pieces),
                               "kept_tokens": count(selection.text()),
                               "needle_kept": code in selection.text(),
                               "seconds": round(time.perf_counter() - t, 2)})
                print(trials[-1], flush=True)
    table = {str(n): f"{sum(t['needle_kept'] for t in trials if t['length'] == n)}/"
             f"{sum(1 for t in trials if t['length'] == n)}" for n in lengths}
    write_result(args.out, {
        "benchmark": "niah_retrieval", "context_budget": args.budget,
        "token_counts": "model tokenizer" if count.exact else "chars/4",
        "retrieval": "hybrid (BM25 + all-MiniLM-L6-v2), relativeScoreFusion, alpha 0.5",
        "wall_seconds": round(time.perf_counter() - t0, 1), "needle_kept": table,
        "trials": trials})
    print(json.dumps(table, indent=1))


async def main(args: argparse.Namespace) -> None:
    pool = paragraphs()
    count = Counter(args.tokenizer)
    lengths = [int(x) for x in args.lengths.split(",")]
    depths = [float(x) for x in args.depths.split(",")]
    conditions = args.conditions.split(",")
    rng = random.Random(7)
    embeddings = CachedEmbeddings(LocalEmbeddings())
    common = dict(base_url=args.base_url, model=args.model, max_calls=4, max_tokens=10**7,
                  max_completion_tokens=32, embeddings=embeddings, request_timeout=args.timeout)
    contexts = {
        "preprocessed": make_resources(context_budget=args.budget, **common).settings,
        "whole": make_resources(context_budget=10**9, **common).settings,
        "truncated": make_resources(context_budget=10**9, **common).settings,
    }
    graph = build_graph().compile()
    sem = asyncio.Semaphore(args.concurrency)
    places = iter(rng.sample(PLACES, len(PLACES)) * 10)
    jobs: list[Any] = []
    meta: list[dict[str, Any]] = []
    for length in lengths:
        for depth in depths:
            for _ in range(args.needles):
                place, code = next(places), str(rng.randint(1000, 9999))
                needle = f"The access code of the {place} is {code}."
                question = f"What is the access code of the {place}?"
                text = haystack(pool, length, count, needle, depth)
                for cond in conditions:
                    body = truncate(text, args.window_tokens, count) if cond == "truncated" else text
                    meta.append({"length": length, "depth": depth, "condition": cond,
                                 "depth_rank": depths.index(depth),
                                 "haystack_tokens": count(text), "code": code,
                                 "needle_kept": needle in body})
                    jobs.append(trial(graph, contexts[cond], question, body, code, sem))
    t0 = time.perf_counter()
    results: list[dict[str, Any]] = []

    async def run(i: int) -> None:
        results.append(meta[i] | await jobs[i])
        save(args, count, lengths, depths, conditions, results, len(jobs), time.perf_counter() - t0)

    # Cheapest informative trials first: one per length and condition before any repeat, so a
    # run stopped early (a busy shared server) still covers every length.
    order = sorted(range(len(jobs)), key=lambda i: (meta[i]["depth_rank"], conditions.index(
        meta[i]["condition"]), -meta[i]["length"]))
    await asyncio.gather(*(run(i) for i in order))
    print(json.dumps(accuracy(results, conditions, lengths), indent=1))


def accuracy(results: list[dict[str, Any]], conditions: list[str],
             lengths: list[int]) -> dict[str, dict[str, str]]:
    """``right/trials`` per condition and haystack length."""
    table: dict[str, dict[str, str]] = {}
    for cond in conditions:
        for length in lengths:
            rows = [r for r in results if r["condition"] == cond and r["length"] == length]
            right = sum(r["correct"] for r in rows)
            table.setdefault(cond, {})[str(length)] = f"{right}/{len(rows)}"
    return table


def save(args: argparse.Namespace, count: Counter, lengths: list[int], depths: list[float],
         conditions: list[str], results: list[dict[str, Any]], planned: int,
         wall: float) -> None:
    """Write the results so far (a long run that is stopped keeps what it finished)."""
    table = accuracy(results, conditions, lengths)
    payload = {
        "benchmark": "niah", "model": args.model, "base_url": args.base_url,
        "server_context_window": args.window_tokens + 600, "context_budget": args.budget,
        "token_counts": "model tokenizer" if count.exact else "chars/4",
        "lengths": lengths, "depths": depths, "needles_per_cell": args.needles,
        "haystack_source": "multihop/hotpot_dev.jsonl + musique_dev.jsonl paragraphs",
        "retrieval": "hybrid (BM25 + all-MiniLM-L6-v2), relativeScoreFusion, alpha 0.5",
        "wall_seconds": round(wall, 1), "trials_planned": planned,
        "trials_done": len(results), "accuracy": table, "trials": results,
    }
    write_result(args.out, payload)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="the model server (not needed with --retrieval-only)")
    parser.add_argument("--retrieval-only", action="store_true",
                        help="no model calls: only check the needle survives preprocessing")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--tokenizer", default=None, help="folder with the model's tokenizer.json")
    parser.add_argument("--lengths", default="2000,4000,8000,16000,32000,64000")
    parser.add_argument("--depths", default="0.1,0.5,0.9")
    parser.add_argument("--needles", type=int, default=1, help="needles per (length, depth)")
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--budget", type=int, default=1500, help="context_budget in tokens")
    parser.add_argument("--window-tokens", type=int, default=3400,
                        help="haystack tokens that fit the server's window (truncated condition)")
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per request")
    parser.add_argument("--out", default="niah")
    parsed = parser.parse_args()
    if not parsed.retrieval_only and not parsed.base_url:
        parser.error("--base-url is required unless --retrieval-only")
    asyncio.run(retrieval_only(parsed) if parsed.retrieval_only else main(parsed))
