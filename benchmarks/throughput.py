"""Decode throughput of a vLLM server: tokens/s for 1 and 8 concurrent requests.

    python benchmarks/throughput.py [--base-url URL] [--model NAME] [--concurrency 1 8]

Without ``--base-url`` (or ``LOTTERY_BASE_URL``) it uses the embedded default:
a running local server for the model, or one started now. Every request asks
for exactly ``--max-tokens`` tokens (``ignore_eos``) at temperature 0, so the
rounds are comparable. Results go to ``results/throughput.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

PROMPT = ("Write a Python function that returns the n-th Fibonacci number, then explain "
          "step by step how it works.")
RESULTS = Path(__file__).resolve().parents[1] / "results" / "throughput.json"


async def one_request(client: httpx.AsyncClient, base_url: str, model: str,
                      max_tokens: int, prompt: str = PROMPT) -> dict[str, Any]:
    """One chat completion of exactly ``max_tokens`` tokens; its token counts and latency."""
    start = time.perf_counter()
    reply = await client.post(f"{base_url}/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True})
    reply.raise_for_status()
    usage = reply.json()["usage"]
    return {"latency_s": time.perf_counter() - start, "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": usage["completion_tokens"]}


async def requests_running(client: httpx.AsyncClient, base_url: str) -> float | None:
    """Requests the server is already running (its Prometheus metrics), if it says."""
    try:
        text = (await client.get(base_url.removesuffix("/v1") + "/metrics", timeout=10)).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith("vllm:num_requests_running"):
            return float(line.rsplit(" ", 1)[-1])
    return None


async def measure(base_url: str, model: str, concurrency: int, rounds: int,
                  max_tokens: int) -> dict[str, Any]:
    """``rounds`` rounds of ``concurrency`` simultaneous requests."""
    async with httpx.AsyncClient(timeout=1800) as client:
        await one_request(client, base_url, model, 8)  # warm-up
        # A shared server may be busy with other clients: record it, the numbers depend on it.
        busy = await requests_running(client, base_url)
        walls, tokens, latencies = [], 0, []
        for _ in range(rounds):
            start = time.perf_counter()
            done = await asyncio.gather(*(one_request(client, base_url, model, max_tokens)
                                          for _ in range(concurrency)))
            walls.append(time.perf_counter() - start)
            tokens += sum(r["completion_tokens"] for r in done)
            latencies += [r["latency_s"] for r in done]
    wall = sum(walls)
    return {
        "concurrency": concurrency, "rounds": rounds, "max_tokens": max_tokens,
        "completion_tokens": tokens, "wall_s": round(wall, 2),
        "aggregate_tokens_per_s": round(tokens / wall, 1),
        "per_request_tokens_per_s": round(statistics.mean(max_tokens / x for x in latencies), 1),
        "mean_latency_s": round(statistics.mean(latencies), 2),
        "other_requests_running_at_start": busy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("LOTTERY_BASE_URL"))
    parser.add_argument("--model", default=os.environ.get("LOTTERY_MODEL")
                        or "qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    base_url = args.base_url
    if not base_url:
        from lottery.engines.server import ensure_server

        base_url = ensure_server(args.model)
    base_url = base_url.rstrip("/")
    runs = []
    load_before = os.getloadavg()
    for c in args.concurrency:
        row = asyncio.run(measure(base_url, args.model, c, args.rounds, args.max_tokens))
        print(f"concurrency {c:>2}: {row['aggregate_tokens_per_s']:6.1f} tokens/s aggregate, "
              f"{row['per_request_tokens_per_s']:5.1f} tokens/s per request, "
              f"mean latency {row['mean_latency_s']:.1f}s")
        runs.append(row)
    report = {
        "model": args.model, "base_url": base_url,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor(),
                    # Other work on the machine slows a CPU server down: say how busy it was.
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
