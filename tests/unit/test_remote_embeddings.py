"""Remote embeddings (``LOTTERY_EMBEDDINGS_URL``) against a real HTTP server on 127.0.0.1.

The server speaks OpenAI's ``/v1/embeddings`` and embeds a text as its letter counts: a
deterministic stand-in for an embedding model, so vector search has something to rank.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lottery.cli import app
from lottery.testing import letter_embeddings_server

runner = CliRunner()


SEEN: list[dict] = []


@pytest.fixture
def embedding_server() -> Iterator[str]:
    SEEN.clear()
    with letter_embeddings_server(SEEN) as url:
        yield url


def test_kb_add_and_vector_search_use_the_remote_embedding_server(
        embedding_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOTTERY_EMBEDDINGS_URL", embedding_server)
    monkeypatch.setenv("LOTTERY_EMBEDDINGS_MODEL", "letters-26")
    (tmp_path / "zoo.txt").write_text("zzzz zebra buzz")
    (tmp_path / "sea.txt").write_text("aaaa anaconda banana")
    added = runner.invoke(app, ["kb", "add", str(tmp_path / "zoo.txt"), str(tmp_path / "sea.txt"),
                                "--kb", "remote", "--json"])
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["added"] == 2
    assert SEEN and all(b["model"] == "letters-26" for b in SEEN)
    hits = runner.invoke(app, ["kb", "search", "zzz", "--kb", "remote", "--mode", "vector",
                               "-k", "2", "--json"])
    assert hits.exit_code == 0, hits.output
    assert [h["id"] for h in json.loads(hits.stdout)][0].startswith(str(tmp_path / "zoo.txt"))


def test_a_dead_embedding_server_is_one_clear_line_and_nothing_is_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOTTERY_EMBEDDINGS_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("LOTTERY_EMBEDDINGS_MODEL", "letters-26")
    (tmp_path / "a.txt").write_text("some text")
    out = runner.invoke(app, ["kb", "add", str(tmp_path / "a.txt"), "--kb", "dead", "--json"])
    assert out.exit_code != 0 and "Traceback" not in out.output
    assert "embedding server failed" in out.output and "LOTTERY_EMBEDDINGS_URL" in out.output


def test_a_url_without_a_model_name_is_refused_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOTTERY_EMBEDDINGS_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("LOTTERY_EMBEDDINGS_MODEL", raising=False)
    (tmp_path / "a.txt").write_text("some text")
    out = runner.invoke(app, ["kb", "add", str(tmp_path / "a.txt"), "--json"])
    assert out.exit_code == 2 and "LOTTERY_EMBEDDINGS_MODEL" in out.output
