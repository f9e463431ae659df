"""Files into documents: load (langchain-community loaders), check, chunk, give stable ids.

Supported: plain text and Markdown (``.txt``, ``.md``, ...), HTML
(``BSHTMLLoader``), PDF (``PyPDFLoader``), and JSON Lines with a ``text`` field
(optional ``id``; other fields become metadata). Any other file is read as text
when it is UTF-8 without NUL bytes. Directories are walked recursively (hidden
entries skipped).

Chunk ids are ``<absolute path>#<n>`` (``<id>#<n>`` for JSONL records split
into several chunks), so adding the same file again replaces its chunks.
Every problem (unreadable, binary, empty, not UTF-8, too large, a bad JSONL
line) is reported per file or line; the other files still load.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lottery.stores.knowledge import Document

CHUNK_SIZE = 1000
"""Characters per chunk (RecursiveCharacterTextSplitter)."""
CHUNK_OVERLAP = 100
MAX_FILE_BYTES = 50 * 1024 * 1024
"""Largest file accepted; split bigger ones first."""

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text", ".csv", ".tsv", ".log"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}


class FileProblem(Exception):
    """A file (or a line of it) that cannot be loaded; the message says why."""


@dataclass(slots=True)
class Loaded:
    """The chunks of one file, and the lines of it that failed (JSONL)."""

    path: Path
    documents: list[Document] = field(default_factory=list)
    line_errors: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Streamed:
    """The chunks of one file as they are read (see :func:`stream_file`)."""

    path: Path
    documents: Iterator[Document]
    expected: int
    """Chunks to expect, for progress (for JSON Lines its records: at least that many)."""
    line_errors: dict[str, str] = field(default_factory=dict)
    """The lines that failed: complete once ``documents`` is exhausted."""


def iter_files(paths: Sequence[str | Path]) -> Iterator[tuple[Path, str | None]]:
    """Every file under ``paths`` (recursively), with a reason when the path is unusable."""
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if child.is_file() and not any(p.startswith(".") for p in rel):
                    yield child.resolve(), None
        elif path.is_file():
            yield path.resolve(), None
        elif path.exists():
            yield path, "not a regular file"
        else:
            yield path, "no such file or directory"


def splitter(chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP) -> Any:
    """The text splitter every loader shares."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)


def load_file(path: Path, *, chunk_size: int = CHUNK_SIZE, global_ids: bool = False) -> Loaded:
    """Chunks of one file; raises :class:`FileProblem` when the file cannot be used at all.

    A JSON Lines record's ``id`` is namespaced by the file (``<path>#<id>``), so two files
    with ``{"id": "1"}`` never overwrite each other; ``global_ids`` keeps the ids as given
    (for a corpus whose ids are unique across files). The record's own id is kept in the
    metadata (``record_id``) either way."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        streamed = stream_file(path, chunk_size=chunk_size, global_ids=global_ids)
        return Loaded(path, list(streamed.documents), streamed.line_errors)
    _check_size(path)
    split = splitter(chunk_size, min(CHUNK_OVERLAP, chunk_size // 5))
    if suffix == ".pdf":
        pages = _run_loader("pdf", path)
    elif suffix in HTML_SUFFIXES:
        _read_text(path)  # binary / encoding check with a clear message
        pages = _run_loader("html", path)
    else:
        text = _read_text(path)
        pages = [(text, {})]
    base = {"source": str(path), "title": path.name, "type": suffix.lstrip(".") or "text"}
    loaded = Loaded(path)
    chunks = []
    for text, extra in pages:
        for segment in _segments(text):
            for piece in split.split_text(segment):
                if piece.strip():
                    chunks.append((piece, extra))
    if not chunks:
        raise FileProblem("no text found in it")
    for n, (piece, extra) in enumerate(chunks):
        loaded.documents.append(Document(f"{path}#{n}", piece, {**base, **extra, "chunk": n}))
    return loaded


def stream_file(path: Path, *, chunk_size: int = CHUNK_SIZE, global_ids: bool = False) -> Streamed:
    """:func:`load_file` as a stream: the chunks of a JSON Lines file are made one record at
    a time as they are read, so that adding a file of a million short records holds one
    batch of documents at a time, not all of them; other files load whole (their size cap
    bounds them). Raises :class:`FileProblem` when the file cannot be used at all."""
    if path.suffix.lower() != ".jsonl":
        loaded = load_file(path, chunk_size=chunk_size, global_ids=global_ids)
        return Streamed(path, iter(loaded.documents), len(loaded.documents), loaded.line_errors)
    _check_size(path)
    text = _read_text(path)
    records = sum(1 for line in io.StringIO(text) if line.strip())
    if not records:
        raise FileProblem("no records in it")
    errors: dict[str, str] = {}
    split = splitter(chunk_size, min(CHUNK_OVERLAP, chunk_size // 5))
    return Streamed(path, _jsonl_documents(path, text, split, global_ids, errors), records, errors)


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileProblem(f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise FileProblem("empty file")
    if size > MAX_FILE_BYTES:
        raise FileProblem(f"{size / 2**20:.1f} MiB is over the limit of "
                          f"{MAX_FILE_BYTES / 2**20:.0f} MiB: split it first")


SEGMENT_CHARS = 256 * 1024
"""The splitter sees a text this much at a time (cut at a paragraph or line end): on a
million short lines it otherwise holds a million pieces at once (peak RSS over 500 MB)."""


def _segments(text: str, size: int = SEGMENT_CHARS) -> Iterator[str]:
    """``text`` in pieces of about ``size`` characters, cut after a blank line or a newline."""
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = text.rfind("\n\n", start, end)
        cut = cut + 2 if cut > start else text.rfind("\n", start, end) + 1
        if cut <= start:
            cut = end
        yield text[start:cut]
        start = cut
    yield text[start:]


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileProblem(f"cannot read: {exc.strerror or exc}") from None
    if b"\x00" in raw[:8192]:
        raise FileProblem("binary file (NUL bytes): not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem(f"not UTF-8 text (bad byte at offset {exc.start}): "
                          "convert it to UTF-8 first") from None
    if not text.strip():
        raise FileProblem("empty file (only whitespace)")
    return text


def _run_loader(kind: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Load through langchain-community; any loader failure becomes a :class:`FileProblem`."""
    try:
        if kind == "pdf":
            from langchain_community.document_loaders import PyPDFLoader

            docs = PyPDFLoader(str(path)).load()
            return [(d.page_content, {"page": int(d.metadata.get("page", 0)) + 1}) for d in docs]
        from langchain_community.document_loaders import BSHTMLLoader

        docs = BSHTMLLoader(str(path), open_encoding="utf-8",
                            bs_kwargs={"features": "html.parser"},
                            get_text_separator="\n").load()
        return [(d.page_content, {"html_title": d.metadata.get("title", "")}) for d in docs]
    except ImportError as exc:
        raise FileProblem(f"{kind} support is missing a package ({exc}): "
                          "reinstall lottery-llm") from None
    except Exception as exc:  # loaders raise anything from parser internals
        raise FileProblem(f"cannot parse as {kind}: {type(exc).__name__}: {exc}") from None


def _jsonl_documents(path: Path, text: str, split: Any, global_ids: bool,
                     errors: dict[str, str]) -> Iterator[Document]:
    """The chunks of each record of a JSON Lines text, as it is read; a line that fails is
    written to ``errors``."""
    for lineno, line in enumerate(io.StringIO(text), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            errors[where] = f"not JSON: {exc.msg}"
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            errors[where] = "no string 'text' field"
            continue
        if not record["text"].strip():
            errors[where] = "empty 'text'"
            continue
        record_id = record.get("id")
        doc_id = (where if record_id in (None, "") else
                  str(record_id) if global_ids else f"{path}#{record_id}")
        meta = record.get("metadata") if isinstance(record.get("metadata"), dict) else {
            k: v for k, v in record.items() if k not in ("id", "text")
            and isinstance(v, str | int | float | bool)}
        meta = {**meta, "source": str(path), "line": lineno,
                **({"record_id": str(record_id)} if record_id not in (None, "") else {})}
        pieces = [p for p in split.split_text(record["text"]) if p.strip()]
        for n, piece in enumerate(pieces):
            chunk_id = doc_id if len(pieces) == 1 else f"{doc_id}#{n}"
            yield Document(chunk_id, piece, {**meta, "chunk": n})
