"""Ingest: `lottery kb add` throughput (chunks/s) and peak memory for 10k, 100k and 1M chunks.

Each size is a fresh embedded knowledge base filled from JSON Lines files (one short
record = one chunk, files of at most 250,000 records: under the 50 MiB file cap),
added by a separate ``lottery kb add`` process whose peak RSS is read from the kernel
(``VmHWM``, see ``lottery.testing.wait_peak_rss_mib``). Embeddings come from an
OpenAI-compatible ``/v1/embeddings`` server on 127.0.0.1 that embeds a text as its letter
counts, so the figures are the pipeline's (read, chunk, batch, store, commit), not an
embedding model's; ``--local`` adds a row with the local MiniLM model for the smallest
size. With ``--kill`` the largest size is first SIGKILLed half way and added again: the
report says how many chunks each try stored and whether any is missing or doubled::

    python benchmarks/ingest.py --sizes 10000 100000 1000000 --kill --local
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kb_common import write_result  # noqa: E402

from lottery.testing import letter_embeddings_server, wait_peak_rss_mib  # noqa: E402

PER_FILE = 250_000


def write_corpus(folder: Path, n: int) -> list[Path]:
    """``n`` records in JSONL files of at most PER_FILE records each."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for f, start in enumerate(range(0, n, PER_FILE)):
        path = folder / f"part-{f:03d}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for i in range(start, min(n, start + PER_FILE)):
                out.write(json.dumps({"id": str(i), "text": f"Record {i}: walrus fact number {i}."})
                          + "\n")
        files.append(path)
    return files


def kb_add(files: list[Path], env: dict[str, str], *, kill_after_s: float | None = None
           ) -> dict[str, Any]:
    """One ``lottery kb add`` process: its wall time, peak RSS and exit."""
    cmd = [sys.executable, "-m", "lottery.cli", "kb", "add", *map(str, files), "--kb", "bench",
           "--json"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    if kill_after_s is not None:
        time.sleep(kill_after_s)
        proc.send_signal(signal.SIGKILL)
    out = bytearray()
    reader = threading.Thread(target=lambda: out.extend(proc.stdout.read() if proc.stdout else b""))
    reader.start()
    peak = wait_peak_rss_mib(proc)
    reader.join()
    return {"wall_s": round(time.monotonic() - start, 2), "peak_rss_mib": peak,
            "exit": proc.returncode, "summary": json.loads(bytes(out)) if proc.returncode == 0 else None}


def stored(home: Path) -> tuple[int, int]:
    """(rows, distinct ids) in the benchmark's knowledge base."""
    with sqlite3.connect(home / "kb" / "bench.sqlite") as conn:
        rows, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM docs").fetchone()
    return rows, distinct


def measure(n: int, root: Path, base_env: dict[str, str], *, kill: bool) -> dict[str, Any]:
    files = write_corpus(root / f"corpus-{n}", n)
    home = root / f"home-{n}"
    env = {**base_env, "LOTTERY_HOME": str(home)}
    row: dict[str, Any] = {"chunks": n, "files": len(files)}
    if kill:  # SIGKILL half way (by the time a full add takes), then add again
        probe = kb_add(files, {**env, "LOTTERY_HOME": str(root / f"probe-{n}")})
        killed = kb_add(files, env, kill_after_s=probe["wall_s"] / 2)
        row["killed_after_s"] = round(probe["wall_s"] / 2, 2)
        row["stored_when_killed"] = stored(home)[0]
    result = kb_add(files, env)
    rows, distinct = stored(home)
    row.update(wall_s=result["wall_s"], chunks_per_s=round(n / result["wall_s"]),
               peak_rss_mib=result["peak_rss_mib"], exit=result["exit"], stored=rows,
               duplicates=rows - distinct, missing=n - distinct)
    if kill:
        summary = result["summary"] or {}
        row["resumed_unchanged"] = summary.get("unchanged")
        row["resumed_added"] = summary.get("added")
        row["killed_exit"] = killed["exit"]
    return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--kill", action="store_true", help="kill the largest size half way first")
    parser.add_argument("--local", action="store_true",
                        help="also the smallest size with the local MiniLM embeddings")
    parser.add_argument("--out", default="ingest")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ingest-") as tmp, letter_embeddings_server() as url:
        env = {**os.environ, "LOTTERY_EMBEDDINGS_URL": url, "LOTTERY_EMBEDDINGS_MODEL": "letters"}
        for n in sorted(args.sizes):
            row = measure(n, Path(tmp), env, kill=args.kill and n == max(args.sizes))
            rows.append({"embeddings": "remote stub (letter counts)", **row})
            print(json.dumps(rows[-1]), flush=True)
        if args.local:
            local = {k: v for k, v in os.environ.items() if not k.startswith("LOTTERY_EMBEDDINGS")}
            row = measure(min(args.sizes), Path(tmp) / "local", local, kill=False)
            rows.append({"embeddings": "local all-MiniLM-L6-v2 (CPU)", **row})
            print(json.dumps(rows[-1]), flush=True)
    report = {"benchmark": "ingest", "backend": "embedded (SQLite)", "command": "lottery kb add",
              "record": "one JSONL record of ~40 characters = one chunk",
              "machine": platform.platform(), "cpus": os.cpu_count(), "rows": rows}
    write_result(args.out, report)
    return report


if __name__ == "__main__":
    main()
