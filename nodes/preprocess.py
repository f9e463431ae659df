"""Prompt preprocessing: retrieval from long prompts ("Ability 1" of the lottery LLM).

A question may come with a context (a document, a transcript, a haystack).
When the context fits the budget, every piece of it is kept, in order. When
it is longer, it is split into pieces, the pieces are indexed in a throw-away
in-memory collection (:func:`~lottery.stores.factory.scratch_knowledge_base`), and only the
pieces that rank best for the question (hybrid BM25 + vector search) are kept,
in their original order, up to the budget. The model then never sees more
than the budget, however long the context is.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.embeddings import Embeddings

from lottery.core.state import Evidence, Problem
from lottery.errors import InputError
from lottery.resources import Resources
from lottery.stores.factory import scratch_knowledge_base
from lottery.stores.ingest import splitter
from lottery.stores.knowledge import Document, SearchMode

PIECE_CHARS = 800
"""Characters per context piece (about 200 tokens)."""
CHARS_PER_TOKEN = 4
"""Rough size of a token in English text; budgets are in tokens, splitting in characters."""
MAX_CONTEXT_CHARS = 4_000_000
"""Longest context accepted (about a million tokens)."""
SOURCE = "prompt"


@dataclass(frozen=True, slots=True)
class Selection:
    """The pieces of a context the model gets."""

    pieces: list[tuple[int, str]]
    """``(index, text)`` of the kept pieces, in context order."""
    total: int
    """How many pieces the context had."""
    retrieved: bool
    """True when the context was over budget and pieces were chosen by retrieval."""

    def evidence(self) -> list[Evidence]:
        """The kept pieces as evidence for the solve step."""
        return [Evidence(source=SOURCE, content=text, ref=f"{SOURCE}#{i}") for i, text in self.pieces]

    def text(self) -> str:
        """The kept pieces joined, for a single prompt."""
        return "\n...\n".join(text for _, text in self.pieces)


def estimate_tokens(text: str) -> int:
    """A cheap token count (characters / 4), good enough to decide whether to retrieve."""
    return len(text) // CHARS_PER_TOKEN + 1


def split_context(context: str, piece_chars: int = PIECE_CHARS) -> list[str]:
    """The context in pieces of about ``piece_chars`` characters, split at paragraphs first."""
    return [p for p in splitter(piece_chars, piece_chars // 10).split_text(context) if p.strip()]


async def select_context(
    question: str,
    context: str,
    *,
    budget_tokens: int,
    embeddings: Embeddings | None,
    mode: SearchMode = "hybrid",
    piece_chars: int = PIECE_CHARS,
) -> Selection:
    """The pieces of ``context`` worth showing the model for ``question``; see the module doc.

    Raises:
        InputError: the context is not text or is over :data:`MAX_CONTEXT_CHARS`.
    """
    if not isinstance(context, str):
        raise InputError(f"the context must be text, got {type(context).__name__}")
    if len(context) > MAX_CONTEXT_CHARS:
        raise InputError(f"the context has {len(context)} characters, over the limit of "
                         f"{MAX_CONTEXT_CHARS}: put it in a knowledge base with `lottery kb add`")
    pieces = split_context(context, piece_chars)
    if estimate_tokens(context) <= budget_tokens:
        return Selection(list(enumerate(pieces)), len(pieces), retrieved=False)
    budget_chars = budget_tokens * CHARS_PER_TOKEN
    if embeddings is None:
        mode = "bm25"
    kb = scratch_knowledge_base("prompt", embeddings=embeddings)
    async with kb:
        await kb.aupsert([Document(str(i), text) for i, text in enumerate(pieces)])
        # Pieces differ in size: rank more than fit, then fill the budget best first.
        hits = await kb.asearch(question, k=3 * max(1, budget_chars // piece_chars), mode=mode)
    ranked = [int(h.id) for h in hits] or list(range(len(pieces)))  # no match: from the start
    chosen: list[int] = []
    used = 0
    for i in ranked:
        if used + len(pieces[i]) <= budget_chars or not chosen:
            chosen.append(i)
            used += len(pieces[i])
    return Selection([(i, pieces[i]) for i in sorted(chosen)], len(pieces), retrieved=True)


async def attach_context(root: Problem, context: str, res: Resources) -> Problem:
    """The root problem with the relevant pieces of ``context`` as evidence, to be solved.

    A question that comes with its own context is about that context, so it goes
    straight to ``solve`` (the planner would look in the knowledge base instead).
    """
    selection = await select_context(root["question"], context,
                                     budget_tokens=res.settings.context_budget,
                                     embeddings=res.embedder,
                                     mode=res.settings.search_mode)  # type: ignore[arg-type]
    how = (f"{len(selection.pieces)} of {selection.total} pieces retrieved" if selection.retrieved
           else "given in full")
    return {**root, "evidence": root["evidence"] + selection.evidence(), "decision": "solve",
            "status": "solve", "reason": f"answered from the given context ({how})"}
