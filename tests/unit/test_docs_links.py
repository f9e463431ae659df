"""The documentation's relative links resolve, and the README stays a short user README.

Every relative Markdown link in README.md and docs/**/*.md must name a file or folder that
exists (http(s) and mailto links and pure #anchors are not checked; a #fragment is dropped
before checking). Links inside fenced code blocks and inline code are not links.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_README_LINES = 200
SETUP_COMMAND = "pip install 'torch==2.13.0' -e . && lottery ask \"What is 17 * 23 + 4?\""
TEST_COMMAND = "bash .ci/run"

_FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.M)
_EXTERNAL = re.compile(r"^(https?:|mailto:)", re.I)


def markdown_files(root: Path = ROOT) -> list[Path]:
    """README.md and every Markdown page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def link_targets(text: str) -> list[str]:
    """The targets of the inline and reference-style links of ``text``, outside code."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", text))
    found = [m.group(1) for m in _INLINE.finditer(text)]
    found += [m.group(1) for m in _REFERENCE.finditer(text)]
    return [t[1:-1] if t.startswith("<") and t.endswith(">") else t for t in found]


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """``page: target`` for every relative link of ``page`` whose file does not exist."""
    broken = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if _EXTERNAL.match(target) or target.startswith("#"):
            continue
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if not path:
            continue
        resolved = (root / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
        if not resolved.exists():
            broken.append(f"{page.relative_to(root)}: {target}")
    return broken


def test_every_relative_link_in_the_docs_resolves():
    pages = markdown_files()
    assert README in pages and len(pages) > 1
    assert [b for page in pages for b in broken_links(page)] == []


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def test_the_readme_keeps_its_setup_and_test_commands_in_bash_blocks():
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S)
    for command in (SETUP_COMMAND, TEST_COMMAND):
        assert any(block.strip() == command for block in blocks), command


def test_the_checker_finds_a_broken_link_and_ignores_code_and_external_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](page.md#top) [web](https://example.org/x) [mail](mailto:a@b.c) [here](#a)\n"
        "`[not a link](gone.md)`\n```\n[nor this](gone.md)\n```\n"
        "[broken](missing.md#part) ![img](<also missing.png>)\n[ref]: ../nowhere.md\n")
    targets = link_targets(page.read_text())
    assert "gone.md" not in targets
    assert targets == ["page.md#top", "https://example.org/x", "mailto:a@b.c", "#a",
                       "missing.md#part", "also missing.png", "../nowhere.md"]
    assert broken_links(page, root=tmp_path) == [
        "page.md: missing.md#part", "page.md: also missing.png", "page.md: ../nowhere.md"]
