"""``lottery kb``: adding files reports every bad one and keeps the rest; search, stats, drop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lottery.cli import app
from lottery.stores.ingest import FileProblem, load_file

runner = CliRunner()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("Paris is the capital of France. The Eiffel Tower is in Paris.\n")
    (root / "sub" / "b.md").write_text("# Llamas\n\nLlamas are South American camelids.\n")
    (root / "c.html").write_text("<html><head><title>DB</title></head><body>"
                                 "<p>Weaviate supports hybrid search.</p></body></html>")
    (root / "d.jsonl").write_text(
        '{"id": "everest", "text": "Mount Everest is the highest mountain.", "topic": "geo"}\n'
        "not json\n"
        '{"text": ""}\n')
    (root / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (root / "empty.txt").write_bytes(b"")
    (root / "blob.bin").write_bytes(b"\x89PNG\x00\x01\x02binary")
    (root / ".hidden.txt").write_text("never read")
    return root


def _json(result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_reports_each_bad_file_and_adds_the_rest(docs: Path) -> None:
    summary = _json(runner.invoke(app, ["kb", "add", str(docs), "--json"]))
    assert summary["added"] == 4 and summary["updated"] == 0
    failed = summary["failed"]
    assert "UTF-8" in failed[str(docs / "latin1.txt")]
    assert "empty" in failed[str(docs / "empty.txt")]
    assert "binary" in failed[str(docs / "blob.bin")]
    assert "not JSON" in failed[f"{docs / 'd.jsonl'}:2"]
    assert "empty" in failed[f"{docs / 'd.jsonl'}:3"]
    assert not any(".hidden" in key for key in failed)
    again = _json(runner.invoke(app, ["kb", "add", str(docs / "a.txt"), "--json"]))
    # stable chunk ids: nothing doubled, and an unchanged chunk is not embedded again
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 1)
    stats = _json(runner.invoke(app, ["kb", "stats", "--json"]))
    assert stats["documents"] == 4 and stats["backend"] == "embedded"


def test_search_returns_hits_with_id_score_text_metadata(docs: Path) -> None:
    runner.invoke(app, ["kb", "add", str(docs), "--kb", "notes"])
    hits = _json(runner.invoke(app, ["kb", "search", "highest mountain", "--kb", "notes",
                                     "-k", "2", "--mode", "bm25", "--json"]))
    assert hits[0]["id"] == f"{docs / 'd.jsonl'}#everest"  # namespaced by its file
    assert hits[0]["metadata"]["record_id"] == "everest" and hits[0]["metadata"]["topic"] == "geo"
    assert set(hits[0]) == {"id", "score", "text", "metadata"}
    hits = _json(runner.invoke(app, ["kb", "search", "hybrid search database", "--kb", "notes",
                                     "--json"]))
    assert hits[0]["metadata"]["type"] == "html" and "Weaviate" in hits[0]["text"]


def test_search_on_a_missing_knowledge_base_is_empty_with_a_note() -> None:
    result = runner.invoke(app, ["kb", "search", "anything", "--kb", "nothing-here", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []
    assert "does not exist" in result.stderr


def test_drop_deletes_the_knowledge_base(docs: Path) -> None:
    runner.invoke(app, ["kb", "add", str(docs / "a.txt"), "--kb", "tmp"])
    result = runner.invoke(app, ["kb", "drop", "--kb", "tmp", "--yes"])
    assert result.exit_code == 0 and "1 documents" in result.stdout
    assert _json(runner.invoke(app, ["kb", "stats", "--kb", "tmp", "--json"]))["documents"] == 0


def test_bad_kb_name_and_missing_path_are_one_line_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["kb", "search", "x", "--kb", "../etc"])
    assert result.exit_code == 2 and "knowledge base name" in result.stderr
    result = runner.invoke(app, ["kb", "add", str(tmp_path / "missing.txt"), "--json"])
    assert result.exit_code == 1
    assert "no such file" in json.loads(result.stdout)["failed"][str(tmp_path / "missing.txt")]


def test_long_text_is_chunked_with_stable_ids(tmp_path: Path) -> None:
    path = tmp_path / "long.md"
    path.write_text("\n\n".join(f"Paragraph {i}. " + "word " * 150 for i in range(20)))
    first, second = load_file(path.resolve()), load_file(path.resolve())
    ids = [d.id for d in first.documents]
    assert len(ids) > 10 and len(set(ids)) == len(ids)
    assert ids == [d.id for d in second.documents]
    assert all(len(d.text) <= 1000 for d in first.documents)


def text_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page (no PDF library writes
    text, so it is assembled here: objects, then the cross-reference table)."""
    n = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{kids}] /Count {n} >>"]
    font = 3 + 2 * n
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] "
                       f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {4 + 2 * i} 0 R >>")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_a_pdf_with_text_loads_page_by_page_with_page_numbers(tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    path = tmp_path / "report.pdf"
    path.write_bytes(text_pdf(["Page one: the tower is 330 metres tall.",
                               "Page two: it was finished in 1889."]))
    docs = load_file(path).documents
    assert [d.metadata["page"] for d in docs] == [1, 2]
    assert "330 metres" in docs[0].text and "1889" in docs[1].text
    assert [d.id for d in docs] == [f"{path}#0", f"{path}#1"]  # the <path>#<n> id format
    assert all(d.metadata["type"] == "pdf" for d in docs)


def test_pdf_loads_page_by_page(tmp_path: Path) -> None:
    pypdf = pytest.importorskip("pypdf")
    path = tmp_path / "blank.pdf"
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=200, height=200)
    with path.open("wb") as fh:
        writer.write(fh)
    with pytest.raises(FileProblem, match="no text"):
        load_file(path)
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(FileProblem, match="pdf"):
        load_file(tmp_path / "broken.pdf")


def _count(kb: str) -> int:
    return _json(runner.invoke(app, ["kb", "stats", "--kb", kb, "--json"]))["documents"]


def _ids(kb: str, query: str) -> list[str]:
    hits = _json(runner.invoke(app, ["kb", "search", query, "--kb", kb, "-k", "50",
                                     "--mode", "bm25", "--json"]))
    return [h["id"] for h in hits]


def test_readding_a_file_that_shrank_leaves_no_stale_chunk(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("\n\n".join(f"Paragraph {i} tells of the walrus number {i}. " * 12
                                 for i in range(30)))
    first = _json(runner.invoke(app, ["kb", "add", str(path), "--kb", "shrink", "--json"]))
    assert first["added"] > 3
    path.write_text("Only the pelican remains.")
    again = _json(runner.invoke(app, ["kb", "add", str(path), "--kb", "shrink", "--json"]))
    assert (again["updated"], again["removed"]) == (1, first["added"] - 1)
    assert _count("shrink") == 1 and _ids("shrink", "walrus") == []


def test_big_files_are_committed_in_batches_and_replaced_only_at_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lottery.cli.kb as kb_cli

    monkeypatch.setattr(kb_cli, "BATCH", 2)
    path = tmp_path / "big.txt"
    path.write_text("\n\n".join(f"Walrus fact {i}. " * 60 for i in range(9)))
    summary = _json(runner.invoke(app, ["kb", "add", str(path), "--kb", "batches", "--json"]))
    n = summary["added"]
    assert n >= 5 and _count("batches") == n
    path.write_text("\n\n".join(f"Walrus fact {i}. " * 60 for i in range(3)))
    again = _json(runner.invoke(app, ["kb", "add", str(path), "--kb", "batches", "--json"]))
    kept = again["updated"] + again["added"] + again["unchanged"]
    assert kept == 3 * n // 9 and again["removed"] == n - kept and _count("batches") == kept


def test_a_killed_add_continues_where_it_stopped(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import lottery.cli.kb as kb_cli
    from lottery.stores.embedded import EmbeddedKnowledgeBase

    monkeypatch.setattr(kb_cli, "BATCH", 2)
    path = tmp_path / "big.txt"
    path.write_text("\n\n".join(f"Narwhal fact {i}. " * 60 for i in range(9)))
    real, calls = EmbeddedKnowledgeBase.aupsert, []

    async def dies_on_the_second_batch(self, documents):  # type: ignore[no-untyped-def]
        calls.append(len(documents))
        if len(calls) == 2:
            raise KeyboardInterrupt  # as Ctrl-C or a kill between two batches
        return await real(self, documents)

    monkeypatch.setattr(EmbeddedKnowledgeBase, "aupsert", dies_on_the_second_batch)
    runner.invoke(app, ["kb", "add", str(path), "--kb", "resume", "--json"])
    assert _count("resume") == 2  # the first batch was committed
    monkeypatch.setattr(EmbeddedKnowledgeBase, "aupsert", real)
    again = _json(runner.invoke(app, ["kb", "add", str(path), "--kb", "resume", "--json"]))
    assert again["unchanged"] == 2 and again["added"] == _count("resume") - 2 > 0


def test_jsonl_ids_are_namespaced_by_file_unless_global(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "The okapi lives in Congo."}\n')
    (tmp_path / "b.jsonl").write_text('{"id": "1", "text": "The quokka lives in Australia."}\n')
    _json(runner.invoke(app, ["kb", "add", str(tmp_path), "--kb", "ns", "--json"]))
    assert _count("ns") == 2  # the second file's record 1 did not overwrite the first's
    glob = _json(runner.invoke(app, ["kb", "add", str(tmp_path / "a.jsonl"),
                                     str(tmp_path / "b.jsonl"), "--kb", "global",
                                     "--global-ids", "--json"]))
    assert (glob["added"], glob["updated"]) == (1, 1) and _count("global") == 1


def test_a_readded_file_with_a_broken_line_loses_nothing_stored(tmp_path: Path) -> None:
    path = tmp_path / "facts.jsonl"
    path.write_text('{"id": "a", "text": "Axolotls regrow limbs."}\n'
                    '{"id": "b", "text": "Tardigrades survive space."}\n')
    _json(runner.invoke(app, ["kb", "add", str(path), "--kb", "keep", "--json"]))
    path.write_text('{"id": "a", "text": "Axolotls regrow limbs."}\n{"id": "b", broken\n')
    again = runner.invoke(app, ["kb", "add", str(path), "--kb", "keep", "--json"])
    assert json.loads(again.stdout)["removed"] == 0
    assert _count("keep") == 2 and _ids("keep", "tardigrades")  # the old record b is kept


def test_a_file_over_the_size_cap_is_reported_and_the_rest_lands(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lottery.stores.ingest as ingest

    monkeypatch.setattr(ingest, "MAX_FILE_BYTES", 1024)
    (tmp_path / "big.txt").write_text("walrus " * 1000)
    (tmp_path / "small.txt").write_text("The pelican is a bird.")
    summary = _json(runner.invoke(app, ["kb", "add", str(tmp_path), "--kb", "cap", "--json"]))
    assert summary["added"] == 1 and _count("cap") == 1
    assert "over the limit of" in summary["failed"][str(tmp_path / "big.txt")]


def test_tenants_of_one_knowledge_base_see_only_their_own_documents(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Alice keeps notes about okapis.")
    _json(runner.invoke(app, ["kb", "add", str(tmp_path / "a.txt"), "--kb", "shared",
                              "--tenant", "alice", "--json"]))

    def hits(tenant: str) -> list:
        return _json(runner.invoke(app, ["kb", "search", "okapis", "--kb", "shared", "--tenant",
                                         tenant, "--mode", "bm25", "--json"]))

    assert len(hits("alice")) == 1 and hits("bob") == []


def test_dropping_a_knowledge_base_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    out = runner.invoke(app, ["kb", "drop", "--kb", "no-such-kb", "--yes"])
    assert out.exit_code == 2 and "does not exist" in out.output
    assert not out.output.startswith("dropped")


def test_ask_warns_about_a_knowledge_base_that_does_not_exist(monkeypatch) -> None:
    import lottery.cli.ask as ask_cli

    monkeypatch.setattr(ask_cli, "solve", lambda *a, **k: (_ for _ in ()).throw(SystemExit(0)))
    out = runner.invoke(app, ["ask", "Who?", "--kb", "no-such-kb"])
    assert "knowledge base 'no-such-kb' does not exist" in out.output
