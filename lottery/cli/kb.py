"""``lottery kb``: fill, search, inspect and drop knowledge bases."""

from __future__ import annotations

import asyncio
import time
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lottery.cli.common import JSON_OPTION, cli_errors, print_json, stderr
from lottery.errors import InputError
from lottery.stores.factory import open_knowledge_base
from lottery.stores.ingest import FileProblem, Streamed, iter_files, stream_file
from lottery.stores.knowledge import KnowledgeBase, UpsertReport

app = typer.Typer(help="Knowledge bases: add files, search, stats, drop.", no_args_is_help=True)

KB_OPTION = typer.Option("default", "--kb", help="Knowledge base name.")
TENANT_OPTION = typer.Option(None, "--tenant", help="Tenant (partition) inside the knowledge base.")


def _open(kb: str, tenant: str | None) -> KnowledgeBase:
    return open_knowledge_base(kb, tenant=tenant)


BATCH = 256
"""Chunks embedded and committed at a time: memory stays bounded whatever the file size,
and a kill loses at most one batch of work."""


@app.command("add")
@cli_errors
def add(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (walked recursively).")],
    kb: str = KB_OPTION,
    tenant: str | None = TENANT_OPTION,
    global_ids: bool = typer.Option(
        False, "--global-ids",
        help="Keep JSONL record ids as given (default: namespaced by file, <path>#<id>)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add text, Markdown, HTML, PDF and JSONL files; re-adding a file replaces ALL its
    chunks (a file that shrank leaves none behind)."""
    summary = asyncio.run(_add(paths, _open(kb, tenant), quiet=as_json, global_ids=global_ids))
    if as_json:
        print_json(summary)
    else:
        out = Console()
        out.print(f"{kb}: {summary['added']} chunks added, {summary['updated']} updated, "
                  f"{summary['unchanged']} unchanged, {summary['removed']} stale removed, "
                  f"{len(summary['failed'])} failed "
                  f"({summary['files']} files read)")
        for where, why in summary["failed"].items():
            stderr().print(f"[red]failed[/] {where}: {why}", highlight=False, soft_wrap=True)
    if summary["failed"] and not summary["added"] and not summary["updated"]:
        raise typer.Exit(1)


async def _add(paths: list[Path], kb: KnowledgeBase, *, quiet: bool,
               global_ids: bool = False) -> dict[str, Any]:
    files = list(iter_files(paths))
    summary: dict[str, Any] = {"files": 0, "added": 0, "updated": 0, "removed": 0,
                               "unchanged": 0, "failed": {}, "per_file": {}}
    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                        console=console, disable=quiet, transient=True)
    async with kb:
        with progress:
            task = progress.add_task("adding", total=len(files), rate="")
            for path, problem in files:
                progress.update(task, description=path.name[:40])
                try:
                    if problem:
                        raise FileProblem(problem)
                    streamed = await asyncio.to_thread(stream_file, path, global_ids=global_ids)
                except FileProblem as exc:
                    summary["failed"][str(path)] = str(exc)
                    if not quiet:
                        console.print(f"[red]failed[/] {path}: {exc}", highlight=False)
                    progress.advance(task)
                    continue
                summary["files"] += 1
                report = await _add_file(kb, str(path), streamed, progress)
                summary["failed"].update(streamed.line_errors)
                summary["added"] += report.added
                summary["updated"] += report.updated
                summary["removed"] += report.removed
                summary["unchanged"] += report.unchanged
                summary["failed"].update(report.failed)
                summary["per_file"][str(path)] = {
                    "added": report.added, "updated": report.updated,
                    "unchanged": report.unchanged, "removed": report.removed,
                    "failed": len(report.failed)}
                if not quiet:  # each file's result as it happens
                    console.print(f"{path}: {report.added} added, {report.updated} updated, "
                                  f"{report.unchanged} unchanged, {report.removed} stale removed"
                                  + (f", {len(report.failed)} failed" if report.failed else ""),
                                  highlight=False)
                progress.advance(task)
    return summary


async def _add_file(kb: KnowledgeBase, source: str, streamed: Streamed,
                    progress: Progress) -> UpsertReport:
    """Embed and commit the file's chunks in batches of ``BATCH`` as they are read; the last
    batch also deletes the source's stale chunks (in the same transaction where the backend
    has them), unless some of the file's lines failed: then their old chunks stay."""
    total = UpsertReport()
    keep: set[str] = set()
    chunks = progress.add_task(f"  {Path(source).name[:36]}", total=streamed.expected, rate="")
    start, done = time.monotonic(), 0
    batch = list(islice(streamed.documents, BATCH))
    while batch:
        following = list(islice(streamed.documents, BATCH))  # none left: this batch is the last
        keep.update(d.id for d in batch)
        # Chunks stored as they are (a run killed after some batches) are not embedded again.
        stored = await kb.astored([d.id for d in batch])
        fresh = [d for d in batch if d.id not in stored or stored[d.id].text != d.text
                 or dict(stored[d.id].metadata) != dict(d.metadata)]
        total.unchanged += len(batch) - len(fresh)
        replace = not following and not streamed.line_errors and not total.failed
        report = (await kb.areplace_source(source, fresh, keep=keep) if replace
                  else await kb.aupsert(fresh))
        total.added += report.added
        total.updated += report.updated
        total.removed += report.removed
        total.failed.update(report.failed)
        done += len(batch)
        progress.update(chunks, completed=done, total=max(done, streamed.expected),
                        rate=f"{done / max(time.monotonic() - start, 1e-6):.0f} chunks/s")
        batch = following
    progress.remove_task(chunks)
    return total


@app.command("search")
@cli_errors
def search(
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(4, "-k", help="How many hits."),
    mode: str = typer.Option("hybrid", "--mode", help="bm25, vector or hybrid."),
    alpha: float = typer.Option(0.5, "--alpha", help="Hybrid weight: 1 = vector, 0 = keyword."),
    kb: str = KB_OPTION,
    tenant: str | None = TENANT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Search a knowledge base; prints the hits (id, score, text, metadata)."""

    async def run() -> tuple[list[Any], str | None]:
        async with _open(kb, tenant) as store:
            hits = await store.asearch(query, k=k, mode=mode, alpha=alpha)  # type: ignore[arg-type]
            note = None
            if not hits:
                if not await store.aexists():
                    note = f"knowledge base {kb!r} does not exist: add files with `lottery kb add`"
                elif await store.acount() == 0:
                    note = f"knowledge base {kb!r} is empty: add files with `lottery kb add`"
                else:
                    note = "no document matched the query"
            return hits, note

    hits, note = asyncio.run(run())
    if note:
        stderr().print(f"[yellow]{note}[/]")
    if as_json:
        print_json([h.as_dict() for h in hits])
        return
    out = Console()
    for rank, h in enumerate(hits, start=1):
        out.print(f"[bold]{rank}. {h.id}[/]  [dim]score {h.score:.4f}[/]", highlight=False)
        out.print(h.text[:500].replace("\n", " "), markup=False, highlight=False)


@app.command("stats")
@cli_errors
def stats(kb: str = KB_OPTION, tenant: str | None = TENANT_OPTION,
          as_json: bool = JSON_OPTION) -> None:
    """What a knowledge base holds."""

    async def run() -> dict[str, Any]:
        async with _open(kb, tenant) as store:
            return await store.astats()

    info = asyncio.run(run())
    if as_json:
        print_json(info)
        return
    table = Table(show_header=False)
    for key, value in info.items():
        table.add_row(key, str(value))
    Console().print(table)


@app.command("drop")
@cli_errors
def drop(
    kb: str = KB_OPTION,
    tenant: str | None = TENANT_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a knowledge base (or one tenant of it) and all its documents."""
    if not yes:
        typer.confirm(f"delete knowledge base {kb!r} and all its documents?", abort=True)

    async def run() -> int:
        async with _open(kb, tenant) as store:
            if not await store.aexists():  # a typo must not look like a success
                raise InputError(f"knowledge base {kb!r} does not exist; nothing was dropped")
            count = await store.acount()
            await store.adrop()
            return count

    count = asyncio.run(run())
    Console().print(f"dropped {kb!r} ({count} documents)")
