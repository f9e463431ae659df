"""Calling the model from a node: usage accounting, structured output, repair.

A small model will sometimes answer junk where JSON was asked for. Structured
calls therefore (1) ask the server for JSON-schema constrained output when it
supports it, (2) parse tolerantly, (3) retry once with the error when the
task's allowance permits, and (4) report failure to the caller, which falls
back to a safe decision. A malformed decision never crashes a run.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables.config import ensure_config
from pydantic import BaseModel, ValidationError

from lottery.core.context import Context
from lottery.core.state import Usage
from lottery.nodes import prompts
from lottery.resources import Resources
from lottery.sanitize import json_safe, safe_text

M = TypeVar("M", bound=BaseModel)

_NUMBER = re.compile(r"^[-+]?\$?\s*[-+]?\d[\d,]*(?:\.\d+)?\s*%?$")
_BOXED = re.compile(r"\\boxed\{((?:[^{}]|\{[^{}]*\})*)\}")
_ANSWER_LINE = re.compile(r"^\s*(?:\**\s*)?(?:final\s+)?answer\s*[:：]\s*(.+)$", re.I | re.M)


@dataclass(slots=True)
class Reply:
    """Text of one or more model calls and what they cost."""

    text: str = ""
    usage: Usage = field(default_factory=lambda: Usage(calls=0, prompt_tokens=0, completion_tokens=0))

    def add(self, message: AIMessage) -> None:
        meta = message.usage_metadata or {}
        self.usage["calls"] = self.usage.get("calls", 0) + 1
        self.usage["prompt_tokens"] = self.usage.get("prompt_tokens", 0) + meta.get("input_tokens", 0)
        self.usage["completion_tokens"] = (
            self.usage.get("completion_tokens", 0) + meta.get("output_tokens", 0)
        )
        text = message.text if hasattr(message, "text") else str(message.content)
        self.text = safe_text(text)  # no NUL / lone surrogates: every store refuses them


SAFE_CHARS_PER_TOKEN = 3
"""Characters per token assumed when fitting a prompt to the window without a tokenizer: a
safe floor for English on BPE tokenizers. (``preprocess.estimate_tokens`` uses the average,
about 4, where an estimate is enough; here an underestimate gets a request refused.)"""

_TEMPLATE_TOKENS = 64
"""Tokens a chat template adds around the messages (role markers), with a margin."""


def room(ctx: Context, *fixed: str, max_tokens: int | None = None) -> int:
    """Characters left in one request's window (``ctx.context_window``) for a prompt's
    shortenable parts, once its ``fixed`` text and the answer's tokens are in."""
    tokens = ctx.context_window - (max_tokens or ctx.max_completion_tokens) - _TEMPLATE_TOKENS
    return max(0, tokens * SAFE_CHARS_PER_TOKEN - sum(len(f) for f in fixed))


def fit(texts: Sequence[str], room: int, *, per_item: int = 0) -> list[str]:
    """``texts`` shortened to ``room`` characters in all, longest first: every text longer
    than one common length is cut to it (ending in "…"), so short ones (a number, a name)
    stay whole and the long ones share what is left equally. ``per_item``: characters each
    text brings along in the prompt (its mark, its newline)."""
    room -= per_item * len(texts)
    if sum(map(len, texts)) <= room:
        return list(texts)
    left, cap = room, 0
    lengths = sorted(len(t) for t in texts)
    for i, length in enumerate(lengths):
        share = left // (len(lengths) - i)
        if length > share:
            cap = share
            break
        left -= length
    return [t if len(t) <= cap else t[: max(cap - 1, 0)] + "…" for t in texts]


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: the server is unreachable, slow, overloaded or failed (5xx)."""
    try:
        import openai
    except ImportError:  # pragma: no cover - langchain-openai depends on openai
        openai = None  # type: ignore[assignment]
    if openai is not None:
        if isinstance(exc, openai.APIConnectionError | openai.RateLimitError):
            return True  # APITimeoutError is an APIConnectionError
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code >= 500
    return isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError)


async def complete(
    res: Resources, messages: list[BaseMessage], *, max_tokens: int | None = None,
    json_schema: dict[str, Any] | None = None, reply: Reply | None = None,
    llm: BaseChatModel | None = None, step: str | None = None,
) -> Reply:
    """One model call (to ``llm``, default the run's model); adds its text and usage to
    ``reply``. ``step`` tags the call (``lottery:<step>``) where the node alone does not
    say what it is for (a program written inside ``solve``)."""
    reply = reply or Reply()
    kwargs: dict[str, Any] = {"max_tokens": max_tokens or res.settings.max_completion_tokens}
    if json_schema is not None and res.settings.structured_output:
        # Sent as a raw body field: langchain-openai's own response_format handling goes
        # through the client's parse() path, which raises on a reply cut by max_tokens
        # instead of returning the text for the tolerant parser.
        kwargs["extra_body"] = {"response_format": {
            "type": "json_schema",
            "json_schema": {"name": "decision", "schema": json_schema},
        }}
    with res.telemetry.model_call(messages, kwargs) as call:
        config = {"tags": [*(ensure_config().get("tags") or []), f"lottery:{step}"]} if step else None
        message = await (llm or res.llm).bind(**kwargs).ainvoke(messages, config=config)
        call.done(message)
    reply.add(message)
    return reply


def normalize(answer: str) -> str:
    """A vote key: numbers compare by value (``42.0`` = ``42`` = ``$42``), text by words."""
    text = answer.strip().strip(".")
    if _NUMBER.match(text):
        try:
            value = float(re.sub(r"[$,%\s]", "", text))
        except ValueError:
            return text.lower()
        return repr(round(value, 4)).removesuffix(".0")
    return " ".join(text.lower().split())


def majority(answers: Sequence[str]) -> tuple[int, int] | None:
    """The index of the first answer with the most votes, and its votes (``normalize``-d
    answers count as equal; empty ones have no vote); ``None`` when none has a vote.

    Ties go to the earliest answer: callers put their greedy answer first.
    """
    keys = [normalize(a) if a.strip() else None for a in answers]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None
    best = max(counts.values())
    return next(i for i, k in enumerate(keys) if k is not None and counts[k] == best), best


_LAST_NUMBER = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?")
_LETTER = re.compile(r"[A-Z]")
_OPTION_LEAD = re.compile(r"\s*\(?([A-Z])(?:[).:]|\s*$)")
_OPTION_NAMED = re.compile(r"\b(?i:option|answer is)\s*\(?([A-Z])\b")


@dataclass(frozen=True, slots=True)
class Checked:
    """The answer :func:`cross_check` chose, and who supports it."""

    answer: str
    words: int
    """Worded (reasoned) answers with its value."""
    programs: int
    """Executed programs with its value."""

    @property
    def agreed(self) -> bool:
        """Both ways of answering reached it: the program checks the reasoning."""
        return self.words > 0 and self.programs > 0


def cross_check(words: Sequence[str], programs: Sequence[str]) -> Checked | None:
    """Check reasoned answers against executed programs' answers for the same question.

    A value that both a program run and a worded answer reached wins over any value only
    one side reached, however often; among those, the most votes in all wins, ties going
    to the earliest (callers put the greedy program and the greedy answer first). Worded
    answers are read the way the programs answered (see :func:`answer_key`). ``None``
    when neither side answered.
    """
    kind = answer_kind(programs, programs=programs)
    prog_keys = [normalize(p) if p.strip() else None for p in programs]
    word_keys = [answer_key(w, kind) for w in words]
    counts_p = Counter(k for k in prog_keys if k is not None)
    counts_w = Counter(k for k in word_keys if k is not None)
    order = [(k, p) for k, p in zip(prog_keys, programs, strict=True) if k is not None]
    order += [(k, w) for k, w in zip(word_keys, words, strict=True) if k is not None]
    if not order:
        return None
    agreed = {k for k in counts_p if k in counts_w}
    pool = [(k, text) for k, text in order if k in agreed] or order
    best = max(counts_p[k] + counts_w[k] for k, _ in pool)
    key, text = next((k, t) for k, t in pool if counts_p[k] + counts_w[k] == best)
    return Checked(answer=text.strip(), words=counts_w[key], programs=counts_p[key])


def answer_kind(answers: Sequence[str], *, programs: Sequence[str] = ()) -> str:
    """How a set of answers to one question compares: ``number``, ``letter`` or ``text``.

    Programs decide when they printed something (a number, or option letters only);
    otherwise any answer that is a bare number makes the set numeric.
    """
    shown = [p.strip().strip(".") for p in programs if p.strip()]
    if shown:
        if any(_NUMBER.match(p) for p in shown):
            return "number"
        return "letter" if all(_LETTER.fullmatch(p) for p in shown) else "text"
    plain = [a.strip().strip(".") for a in answers if a.strip()]
    if any(_NUMBER.match(a) for a in plain):
        return "number"
    if plain and all(_OPTION_LEAD.match(a) for a in plain):
        return "letter"
    return "text"


def answer_key(answer: str, kind: str) -> str | None:
    """A vote key for ``answer`` read as ``kind``: a sentence around a number ("He made
    $70,000.") counts as its last number; an option as the letter it opens with or names
    ("B) False", "option B"); text by its words. ``None`` for an empty answer."""
    if not answer.strip():
        return None
    if kind == "number" and not _NUMBER.match(answer.strip().strip(".")):
        found = _LAST_NUMBER.findall(answer)
        return normalize(found[-1]) if found else normalize(answer)
    if kind == "letter":
        m = _OPTION_LEAD.match(answer) or _OPTION_NAMED.search(answer)
        return m.group(1).lower() if m else normalize(answer)
    return normalize(answer)


def is_plain(answer: str, kind: str) -> bool:
    """Whether ``answer`` is the bare value (``18``, ``B``) rather than a sentence around it."""
    text = answer.strip().strip(".")
    return bool(_NUMBER.match(text) if kind == "number" else
                _LETTER.fullmatch(text) if kind == "letter" else text)


async def sample(res: Resources, messages: list[BaseMessage], n: int, reply: Reply, *,
                 temperature: float | None = None, step: str | None = None,
                 llm: BaseChatModel | None = None) -> list[str]:
    """``n`` completions at ``temperature`` (default: the run's, greedy) in ONE request
    (shared prefill), counted as one call. A server that returns fewer than ``n`` (one
    that ignores ``n``, as some OpenAI-compatible servers do) is asked for the rest in
    parallel requests, each counted. ``step`` and ``llm``: as for :func:`complete`.
    """
    texts = await _generate(res, messages, n, reply, temperature, step, llm)
    if len(texts) < n:
        more = await asyncio.gather(*(_generate(res, messages, 1, reply, temperature, step, llm)
                                      for _ in range(n - len(texts))))
        texts += [t for batch in more for t in batch]
    return texts[:n]


async def _generate(res: Resources, messages: list[BaseMessage], n: int, reply: Reply,
                    temperature: float | None, step: str | None,
                    llm: BaseChatModel | None = None) -> list[str]:
    kwargs: dict[str, Any] = {"max_tokens": res.settings.max_completion_tokens}
    if n > 1:
        kwargs["n"] = n
    if temperature is not None:
        kwargs["temperature"] = temperature
    config = ensure_config()  # the node's callbacks (tracing) follow the call
    with res.telemetry.model_call(messages, kwargs) as call:
        tags = [*(config.get("tags") or []), *([f"lottery:{step}"] if step else [])]
        result = await (llm or res.llm).agenerate([messages], callbacks=config.get("callbacks"),
                                         tags=tags, metadata=config.get("metadata"),
                                         **kwargs)
        generations = result.generations[0]
        call.done(generations[0].message)  # type: ignore[attr-defined]  # usage: the request's
    reply.add(generations[0].message)  # type: ignore[attr-defined]
    return [g.text for g in generations]


async def complete_structured(
    res: Resources, messages: list[BaseMessage], schema: type[M], *, allowance: int,
    json_schema: dict[str, Any] | None = None, max_tokens: int | None = None,
) -> tuple[M | None, Reply, str | None]:
    """Ask for ``schema``; parse tolerantly; repair once if ``allowance`` > 1.

    Returns the parsed object (``None`` when even the repair failed), the
    reply with its usage (``usage["repairs"]`` counts repair calls) and the
    last parse error.
    """
    schema_dict = json_schema or schema.model_json_schema()
    reply = await complete(res, messages, json_schema=schema_dict, max_tokens=max_tokens)
    parsed, error = parse_structured(reply.text, schema)
    if parsed is None and allowance > 1:
        retry = [*messages, AIMessage(reply.text[:2000]),
                 HumanMessage(prompts.REPAIR.format(error=error))]
        await complete(res, retry, json_schema=schema_dict, reply=reply, max_tokens=max_tokens)
        reply.usage["repairs"] = reply.usage.get("repairs", 0) + 1
        parsed, error = parse_structured(reply.text, schema)
    return parsed, reply, error


def parse_structured(text: str, schema: type[M]) -> tuple[M | None, str | None]:
    """Parse model text into ``schema``: JSON, fenced JSON, JSON in prose, or a Python dict."""
    data = extract_json_object(text)
    if data is None:
        return None, "no JSON object found"
    try:
        return schema.model_validate(data), None
    except (TypeError, ValueError) as exc:  # a validator met a shape it cannot read
        if not isinstance(exc, ValidationError):
            return None, f"unreadable object ({type(exc).__name__})"
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "object"
        return None, f"{where}: {first.get('msg')}"


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The first decodable ``{...}`` in ``text``, tolerant of fences, prose and Python syntax."""
    if not text:
        return None
    text = text.strip()
    for start in [m.start() for m in re.finditer(r"\{", text)][:20]:
        depth, in_str, esc = 0, False, False
        for i in range(start, len(text)):
            ch = text[i]
            if in_str:
                esc = ch == "\\" and not esc
                if ch == '"' and not esc:
                    in_str = False
                elif ch != "\\":
                    esc = False
                continue
            if ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    obj = _decode(text[start : i + 1])
                    if obj is not None:
                        return obj
                    break
        else:  # unbalanced: a truncated object; try closing it
            obj = _decode(text[start:] + "}" * max(depth, 0))
            if obj is not None:
                return obj
    return None


def _decode(candidate: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(candidate)
    except RecursionError:  # adversarially deep nesting: not a usable decision
        return None
    except json.JSONDecodeError:
        try:
            fixed = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", candidate))
            fixed = re.sub(r"\bnull\b", "None", fixed)
            obj = ast.literal_eval(fixed)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return json_safe(obj) if isinstance(obj, dict) else None  # "\\ud800" decodes to a surrogate


def final_answer(text: str) -> str:
    """The short answer of a reasoning reply: its last ``\\boxed{}``, ``Answer:`` line, or last line."""
    boxed = _BOXED.findall(text or "")
    if boxed:
        return boxed[-1].strip()
    matches = _ANSWER_LINE.findall(text or "")
    if matches:
        return matches[-1].strip().strip("*").strip()
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def system_user(system: str, user: str) -> list[BaseMessage]:
    return [SystemMessage(system), HumanMessage(user)]
