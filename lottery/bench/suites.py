"""Benchmark suites: loaders that read the ORIGINAL formats of the public sets.

Each suite turns its file into :class:`Item` objects (the question text the
model sees, the gold answer, how to score it) and, for the knowledge-heavy
sets, the documents of a knowledge base. The data folder is ``$LOTTERY_DATA``,
else ``<repo>/../shared/datasets``; nothing of the data is part of the project.

Multi-hop suites load the paragraphs of EVERY question of the file into one
knowledge base, so retrieval must pick a question's paragraphs out of about a
thousand (it is not handed the right ones).
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lottery.bench import scorers
from lottery.errors import ConfigurationError, InputError
from lottery.stores.knowledge import Document

ScoreKind = Literal["numeric", "option", "qa", "yesno"]


@dataclass(frozen=True, slots=True)
class Item:
    """One benchmark question."""

    id: str
    question: str
    """The full text the model sees (context, options and instructions included)."""
    gold: Any
    """A number, an option letter, a list of accepted answers, or a bool."""
    kind: ScoreKind
    options: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def score(self, prediction: str | None) -> scorers.Score:
        """Score ``prediction`` the way this item's suite does."""
        if self.kind == "numeric":
            return scorers.numeric_match(prediction, self.gold)
        if self.kind == "option":
            return scorers.option_match(prediction, self.gold, self.options)
        if self.kind == "qa":
            return scorers.qa_match(prediction, self.gold)
        return scorers.yes_no_match(prediction, bool(self.gold))

    def gold_text(self) -> str:
        """The gold answer as one line of text (for reports)."""
        if isinstance(self.gold, list | tuple):
            return " | ".join(str(g) for g in self.gold)
        if isinstance(self.gold, bool):
            return "yes" if self.gold else "no"
        if isinstance(self.gold, float) and self.gold.is_integer():
            return str(int(self.gold))
        return str(self.gold)


@dataclass(slots=True)
class SuiteData:
    """A loaded suite: its items and the documents of its knowledge base (if any)."""

    name: str
    items: list[Item]
    documents: list[Document] = field(default_factory=list)
    max_input_chars: int = 20000
    """The longest question text of the suite; runs raise their input limit to it."""


def data_root(path: str | Path | None = None) -> Path:
    """The benchmark data folder: ``path``, ``$LOTTERY_DATA``, or ``<repo>/../shared/datasets``."""
    if path:
        return Path(path).expanduser()
    env = os.environ.get("LOTTERY_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


# -- readers -----------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    _require(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); is it the original file?") from None


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    _require(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                raise InputError(f"{path}:{n} is not a JSON line; is it the original file?") from None


def _require(path: Path) -> None:
    if not path.is_file():
        raise ConfigurationError(
            f"benchmark file {path} not found: pass --data or set LOTTERY_DATA to the datasets folder"
        )


# -- arithmetic --------------------------------------------------------------------------


def load_gsm8k(root: Path) -> SuiteData:
    """GSM8K: JSONL ``question``, ``answer`` ending in ``#### N``."""
    items = []
    for i, row in enumerate(_read_jsonl(root / "gsm8k" / "test_dev.jsonl")):
        gold = row["answer"].rsplit("####", 1)[-1].strip().replace(",", "")
        items.append(Item(id=f"gsm8k-{i}", question=row["question"].strip(), gold=float(gold),
                          kind="numeric"))
    return SuiteData("gsm8k", items)


def load_svamp(root: Path) -> SuiteData:
    """SVAMP: JSON list of ``Body``, ``Question``, ``Answer`` (float)."""
    items = []
    for i, row in enumerate(_read_json(root / "svamp" / "svamp_dev.json")):
        body = row["Body"].strip()
        sep = "" if body.endswith((".", "?", "!")) else "."
        question = f"{body}{sep} {row['Question'].strip()}"
        items.append(Item(id=str(row.get("ID") or f"svamp-{i}"), question=question,
                          gold=float(row["Answer"]), kind="numeric"))
    return SuiteData("svamp", items)


# -- logic (Logic-LM packaging) ----------------------------------------------------------

LOGIC_FILES = {
    "prontoqa": "prontoqa_dev.json",
    "proofwriter": "proofwriter_dev.json",
    "folio": "folio_dev.json",
    "logicaldeduction": "logicaldeduction_dev.json",
    "arlsat": "ar-lsat_dev.json",
}


def logic_question(context: str, question: str, options: list[str]) -> str:
    """The text a model sees for a multiple-choice logic problem."""
    lines = "\n".join(o.strip() for o in options)
    return (f"{context.strip()}\n\nQuestion: {question.strip()}\nOptions:\n{lines}\n"
            "Reply with the letter of the correct option.")


def _logic_loader(name: str) -> Callable[[Path], SuiteData]:
    def load(root: Path) -> SuiteData:
        items = []
        for row in _read_json(root / "logic" / LOGIC_FILES[name]):
            options = list(row["options"])
            items.append(Item(id=row["id"], question=logic_question(row["context"], row["question"],
                                                                    options),
                              gold=row["answer"].strip().upper(), kind="option",
                              options=tuple(options)))
        return SuiteData(name, items)

    load.__doc__ = f"{name}: Logic-LM JSON list of ``context``, ``question``, ``options``, ``answer``."
    return load


# -- multi-hop QA with a knowledge base --------------------------------------------------


def _title_docs(pairs: list[tuple[str, str]], prefix: str, seen: dict[str, Document]) -> None:
    for title, text in pairs:
        text = text.strip()
        if not text:
            continue
        doc_id = f"{prefix}:{title}"
        if doc_id in seen and seen[doc_id].text != text:
            doc_id = f"{doc_id}#{len(seen)}"
        seen.setdefault(doc_id, Document(doc_id, f"{title}: {text}", {"title": title}))


def load_hotpot(root: Path) -> SuiteData:
    """HotpotQA (distractor): ``context`` is 10 ``[title, [sentences]]``; KB of all of them."""
    items, docs = [], {}
    for row in _read_jsonl(root / "multihop" / "hotpot_dev.jsonl"):
        _title_docs([(t, "".join(s)) for t, s in row["context"]], "hotpot", docs)
        items.append(Item(id=row["_id"], question=row["question"].strip(), gold=[row["answer"]],
                          kind="qa", meta={"type": row.get("type")}))
    return SuiteData("hotpot", items, list(docs.values()))


def load_musique(root: Path) -> SuiteData:
    """MuSiQue-Ans: 20 ``paragraphs`` per question; gold ``answer`` plus ``answer_aliases``."""
    items, docs = [], {}
    for row in _read_jsonl(root / "multihop" / "musique_dev.jsonl"):
        _title_docs([(p["title"], p["paragraph_text"]) for p in row["paragraphs"]], "musique", docs)
        items.append(Item(id=row["id"], question=row["question"].strip(),
                          gold=[row["answer"], *row.get("answer_aliases", [])], kind="qa"))
    return SuiteData("musique", items, list(docs.values()))


def load_2wiki(root: Path) -> SuiteData:
    """2WikiMultihopQA: HotpotQA-like ``context``; records without context are skipped."""
    items, docs = [], {}
    for row in _read_jsonl(root / "multihop" / "wikihop_dev.jsonl"):
        if not row.get("context"):
            continue
        _title_docs([(t, " ".join(s)) for t, s in row["context"]], "2wiki", docs)
        items.append(Item(id=row["_id"], question=row["question"].strip(), gold=[row["answer"]],
                          kind="qa", meta={"type": row.get("type")}))
    return SuiteData("2wiki", items, list(docs.values()))


def load_strategyqa(root: Path) -> SuiteData:
    """StrategyQA: yes/no ``answer``; its 998-passage corpus is the knowledge base."""
    docs = [Document(f"sqa:{r['title']}-{r['para_index']}", f"{r['title']}: {r['contents']}",
                     {"title": r["title"]})
            for r in _read_jsonl(root / "multihop" / "strategyqa_corpus.jsonl")]
    items = [Item(id=row["qid"], question=f"{row['question'].strip()} Answer yes or no.",
                  gold=bool(row["answer"]), kind="yesno")
             for row in _read_jsonl(root / "multihop" / "strategyqa_dev.jsonl")]
    return SuiteData("strategyqa", items, docs)


def load_nq(root: Path) -> SuiteData:
    """NQ-open with its oracle passage (``ctxs[0]``); all passages form the knowledge base."""
    items, docs = [], []
    for i, row in enumerate(_read_jsonl(root / "nq" / "nq_open_oracle_dev.jsonl.gz")):
        for j, ctx in enumerate(row.get("ctxs") or []):
            docs.append(Document(f"nq:{i}.{j}", f"{ctx['title']}: {ctx['text']}",
                                 {"title": ctx["title"]}))
        items.append(Item(id=f"nq-{i}", question=row["question"].strip().rstrip("?") + "?",
                          gold=list(row["answers"]), kind="qa"))
    return SuiteData("nq", items, docs)


# -- needle in a haystack ----------------------------------------------------------------

NIAH_LENGTHS = (1000, 3000)
"""Haystack sizes, in approximate tokens (4 characters each)."""
NIAH_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
_NIAH_CITIES = ("Lisbon", "Nairobi", "Osaka", "Quito", "Tallinn", "Hobart")
_NIAH_WORDS = ("amber", "falcon", "glacier", "harbor", "juniper", "lantern", "meadow", "quartz")


def niah_haystack(sentences: list[str], n_chars: int, needle: str, depth: float) -> str:
    """``sentences`` joined up to ``n_chars`` with ``needle`` inserted at ``depth`` (0 to 1)."""
    chunks, size, i = [], 0, 0
    while size < n_chars and sentences:
        s = sentences[i % len(sentences)].strip()
        chunks.append(s)
        size += len(s) + 1
        i += 1
    at = round(depth * len(chunks))
    chunks.insert(at, needle)
    return " ".join(chunks)


def niah_items(sentences: list[str], *, lengths: tuple[int, ...] = NIAH_LENGTHS,
               depths: tuple[float, ...] = NIAH_DEPTHS, per_cell: int = 3,
               seed: int = 7) -> list[Item]:
    """Needle-in-a-haystack items: a passphrase hidden in ``sentences`` at each length x depth."""
    rng = random.Random(seed)
    items = []
    for tokens in lengths:
        for depth in depths:
            for k in range(per_cell):
                city = rng.choice(_NIAH_CITIES)
                secret = f"{rng.choice(_NIAH_WORDS)}-{rng.randint(100, 999)}"
                needle = f"The secret passphrase for the {city} vault is {secret}."
                start = rng.randrange(len(sentences))
                hay = niah_haystack(sentences[start:] + sentences[:start], tokens * 4, needle, depth)
                question = (f"{hay}\n\nQuestion: What is the secret passphrase for the {city} vault? "
                            "Reply with the passphrase only.")
                items.append(Item(id=f"niah-{tokens}-{depth:g}-{k}", question=question,
                                  gold=[secret], kind="qa",
                                  meta={"tokens": tokens, "depth": depth}))
    return items


def load_niah(root: Path) -> SuiteData:
    """Needle in a haystack built from the real HotpotQA paragraphs (seeded, reproducible)."""
    sentences = []
    for row in _read_jsonl(root / "multihop" / "hotpot_dev.jsonl"):
        for _title, sents in row["context"]:
            sentences.extend(s.strip() for s in sents if len(s.strip()) > 20)
    items = niah_items(sentences)
    return SuiteData("niah", items, max_input_chars=max(len(i.question) for i in items) + 100)


SUITES: dict[str, Callable[[Path], SuiteData]] = {
    "gsm8k": load_gsm8k,
    "svamp": load_svamp,
    **{name: _logic_loader(name) for name in LOGIC_FILES},
    "hotpot": load_hotpot,
    "musique": load_musique,
    "2wiki": load_2wiki,
    "strategyqa": load_strategyqa,
    "nq": load_nq,
    "niah": load_niah,
}
"""Every suite by name."""


def load_suite(name: str, data: str | Path | None = None, *, limit: int | None = None,
               skip: int = 0) -> SuiteData:
    """Load suite ``name`` from the data folder; the first ``limit`` items when given, after
    the first ``skip`` (held-out items: ``skip=100`` is disjoint from ``limit=100``).

    The knowledge base documents always come from the whole file, so a small
    ``limit`` does not make retrieval easier.
    """
    try:
        loader = SUITES[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown suite {name!r} (choose from {', '.join(SUITES)})"
        ) from None
    suite = loader(data_root(data))
    if skip < 0:
        raise ConfigurationError(f"--skip must be 0 or more, got {skip}")
    if skip >= len(suite.items):
        raise ConfigurationError(f"--skip {skip} leaves no item: {name} has {len(suite.items)}")
    suite.items = suite.items[skip:]
    if limit is not None:
        if limit < 1:
            raise ConfigurationError(f"--limit must be positive, got {limit}")
        suite.items = suite.items[:limit]
    suite.max_input_chars = max([suite.max_input_chars, *(len(i.question) + 100 for i in suite.items)])
    return suite
