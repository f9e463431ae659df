"""Both engines on the same machine in one run: start, memory, decode, batching, prefill.

    python benchmarks/engines.py [--models M ...] [--engines vllm llama.cpp] [--rounds 3]

For each model and engine it starts a server through ``lottery.serve`` (the model already
prepared, so preparation is not timed), then measures:

- **cold start to first answer**: from the start call to the end of the first completion;
- **resident memory** of the server's process group once it answers;
- **decode, 1 request**: completion tokens / latency of one 128-token answer;
- **aggregate, 8 concurrent**: all completion tokens / wall time of 8 simultaneous answers;
- **prefill**: prompt tokens / latency of a ~2,000-token prompt answered with one token
  (a new prompt every round, so no prefix cache helps).

Every answer is exactly ``--max-tokens`` long (``ignore_eos``) at temperature 0. Results go
to ``results/engines.json`` and a table with the llama.cpp / vLLM ratio into
``docs/engines.md`` (between the ``engines-table`` markers). The machine's load is
recorded before each engine: the numbers depend on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from throughput import PROMPT, one_request  # benchmarks/ is on sys.path when run as a script

from lottery.engines import get_engine
from lottery.engines import server as srv

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "engines.json"
DOCS = ROOT / "docs" / "engines.md"
WORDS = ("river stone market lantern orbit maple signal harbor velvet cactus meadow copper "
         "engine puzzle garden thunder pocket violin summit ladder").split()
console = Console(stderr=True)


def group_rss_mb(pid: int) -> float:
    """Resident memory of every process in ``pid``'s process group, in MB."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != pid:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ProcessLookupError, ValueError):
            continue
    return round(total / 1e6, 1)


async def complete(client: httpx.AsyncClient, url: str, model: str, prompt: str,
                   max_tokens: int) -> dict[str, Any]:
    reply = await one_request(client, url, model, max_tokens, prompt)
    return {"s": reply["latency_s"], "prompt": reply["prompt_tokens"],
            "completion": reply["completion_tokens"]}


def long_prompt(seed: int, words: int = 1500) -> str:
    rng = random.Random(seed)
    return (f"Document {seed}: " + " ".join(rng.choice(WORDS) for _ in range(words))
            + "\nHow many times does the word 'river' occur? Answer with a number.")


async def measure(engine: str, model: str, rounds: int, max_tokens: int) -> dict[str, Any]:
    get_engine(engine).ensure(model)  # prepared before the clock starts
    port = srv.free_port()
    load = os.getloadavg()[0]
    started = time.perf_counter()
    info = srv.start_server(model, port=port, engine=engine, kv_cache_gib=2)
    try:
        url = info.base_url
        async with httpx.AsyncClient(timeout=1800) as client:
            await complete(client, url, model, "What is 2 + 3?", 16)
            first = time.perf_counter() - started
            rss = group_rss_mb(info.pid)
            single = [await complete(client, url, model, PROMPT, max_tokens)
                      for _ in range(rounds)]
            aggregate = []
            for _ in range(max(1, rounds - 1)):
                t0 = time.perf_counter()
                batch = await asyncio.gather(*(complete(client, url, model, PROMPT, max_tokens)
                                               for _ in range(8)))
                aggregate.append(sum(r["completion"] for r in batch) / (time.perf_counter() - t0))
            prefill = [await complete(client, url, model, long_prompt(random.randrange(10**9)), 1)
                       for _ in range(rounds)]
    finally:
        srv.stop_server(port)
    return {
        "engine": engine, "model": model, "load_before": round(load, 2),
        "settings": info.settings, "start_to_first_answer_s": round(first, 1),
        "rss_mb": rss,
        "decode_tok_s": round(statistics.median(r["completion"] / r["s"] for r in single), 1),
        "aggregate8_tok_s": round(statistics.median(aggregate), 1),
        "prefill_tok_s": round(statistics.median(r["prompt"] / r["s"] for r in prefill), 1),
        "prefill_prompt_tokens": prefill[0]["prompt"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    """One table per model: both engines and the ratio in llama.cpp's favour (>1: better)."""
    metrics = [("start_to_first_answer_s", "cold start to first answer (s)", "sooner"),
               ("rss_mb", "resident memory (MB)", "less"),
               ("decode_tok_s", "decode, 1 request (tok/s)", "faster"),
               ("aggregate8_tok_s", "aggregate, 8 concurrent (tok/s)", "faster"),
               ("prefill_tok_s", "prefill, ~2k-token prompt (tok/s)", "faster")]
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        by = {r["engine"]: r for r in rows if r["model"] == model}
        if not {"vllm", "llama.cpp"} <= set(by):
            continue
        v, ll = by["vllm"], by["llama.cpp"]
        out += [f"**{model}** (load before: vLLM {v['load_before']}, llama.cpp "
                f"{ll['load_before']})", "",
                "| | vLLM | llama.cpp | better |", "|---|---|---|---|"]
        for key, label, word in metrics:
            a, b = v[key], ll[key]
            ratio = (b / a if word == "faster" else a / b) if a and b else float("nan")
            winner, factor = ("llama.cpp", ratio) if ratio >= 1 else ("vLLM", 1 / ratio)
            out.append(f"| {label} | {a} | {b} | {winner} {factor:.2g}x {word} |")
        out.append("")
    return "\n".join(out)


def write_docs(rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    if not DOCS.exists():
        return
    text = DOCS.read_text()
    begin, end = "<!-- engines-table:begin -->", "<!-- engines-table:end -->"
    if begin not in text or end not in text:
        return
    body = (f"{begin}\nMeasured {meta['date']} by `python benchmarks/engines.py` on {meta['cpu']}, "
            f"{meta['cores']} cores ({meta['machine']}); results/engines.json.\n\n{table(rows)}\n{end}")
    DOCS.write_text(text[:text.index(begin)] + body + text[text.index(end) + len(end):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"])
    parser.add_argument("--engines", nargs="+", default=["llama.cpp", "vllm"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", action="store_true",
                        help="Only write the table from the results file; measure nothing.")
    args = parser.parse_args()
    previous = json.loads(args.out.read_text()) if args.out.exists() else {"rows": []}
    if args.report:
        write_docs(previous["rows"], previous["meta"])
        print(table(previous["rows"]))
        return
    rows = [r for r in previous.get("rows", [])
            if (r["engine"], r["model"]) not in {(e, m) for e in args.engines for m in args.models}]
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    meta = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu, "cores": os.cpu_count(),
            "machine": platform.machine()}
    for model in args.models:
        for engine in args.engines:
            console.print(f"[bold]{engine} / {model}[/]")
            row = asyncio.run(measure(engine, model, args.rounds, args.max_tokens))
            console.print(row)
            rows.append(row)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))  # resumable
    write_docs(rows, meta)
    print(table(rows))


if __name__ == "__main__":
    main()
