"""Scorers: does a prediction match the gold answer? One function per answer kind.

Each scorer takes the model's short answer (the text after ``Answer:``) and the
gold answer, and returns a :class:`Score`: ``correct`` (the accuracy the suite
reports) and, for free-text answers, the token F1 as well.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+(?:\.\d+)?)?|-?\.\d+")
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_LETTER_ALONE = re.compile(r"^\W*\(?([A-Za-z])\)?\W*$")
_LETTER_MARKED = re.compile(r"(?:^|[\s(\[\"'])\(?([A-Z])(?:[).\]:]|$)")
_LETTER_PHRASE = re.compile(r"\b(?:option|answer|choice)\s*(?:is\s*)?:?\s*\(?([A-Z])\b", re.I)


@dataclass(frozen=True, slots=True)
class Score:
    """How well one prediction matches: ``correct`` counts for accuracy."""

    correct: bool
    f1: float | None = None
    parsed: str | None = None
    """What the scorer read from the prediction (the number, the letter, ...)."""


# -- numbers -----------------------------------------------------------------------------


def parse_number(text: str | None) -> float | None:
    """The last number written in ``text`` (commas, ``$`` and ``%`` allowed; ``3/4`` too)."""
    if not text:
        return None
    matches = _NUMBER.findall(text.replace("$", " ").replace("%", " "))
    for raw in reversed(matches):
        raw = raw.replace(",", "")
        try:
            if "/" in raw:
                num, den = raw.split("/", 1)
                if float(den) == 0:
                    continue
                return float(num) / float(den)
            return float(raw)
        except ValueError:
            continue
    return None


def numeric_match(prediction: str | None, gold: float | str, *, rel_tol: float = 1e-4,
                  abs_tol: float = 1e-6) -> Score:
    """Correct when the last number of ``prediction`` equals ``gold`` within tolerance."""
    target = float(str(gold).replace(",", "")) if not isinstance(gold, float) else gold
    value = parse_number(prediction)
    if value is None:
        return Score(False, parsed=None)
    ok = math.isclose(value, target, rel_tol=rel_tol, abs_tol=abs_tol)
    return Score(ok, parsed=_fmt(value))


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"


# -- option letters ----------------------------------------------------------------------


def parse_option(prediction: str | None, options: Sequence[str]) -> str | None:
    """The option letter a prediction chose: ``B``, ``(B)``, ``B) False``, ``False``, ...

    ``options`` are the suite's option lines (``"A) True"``); when no letter is
    written, an option whose text the prediction states is taken.
    """
    if not prediction:
        return None
    text = prediction.strip()
    letters = [o.strip()[0].upper() for o in options if o.strip()]
    for pattern in (_LETTER_ALONE, _LETTER_PHRASE, _LETTER_MARKED):
        m = pattern.search(text)
        if m and m.group(1).upper() in letters:
            return m.group(1).upper()
    said = normalize_answer(text)
    best: tuple[int, str] | None = None
    for option in options:
        letter, _, body = option.strip().partition(")")
        body_norm = normalize_answer(body)
        if body_norm and (said == body_norm or f" {body_norm} " in f" {said} "):
            if best is None or len(body_norm) > best[0]:
                best = (len(body_norm), letter.strip().upper())
    return best[1] if best else None


def option_match(prediction: str | None, gold: str, options: Sequence[str]) -> Score:
    """Correct when the chosen option letter is the gold letter."""
    letter = parse_option(prediction, options)
    return Score(letter == gold.strip().upper(), parsed=letter)


# -- free text (SQuAD) -------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str | None, golds: Sequence[str]) -> bool:
    """SQuAD exact match against any of the gold answers."""
    pred = normalize_answer(prediction or "")
    return any(pred == normalize_answer(g) for g in golds)


def f1_score(prediction: str | None, golds: Sequence[str]) -> float:
    """SQuAD token F1, the best over the gold answers."""
    pred_tokens = normalize_answer(prediction or "").split()
    best = 0.0
    for gold in golds:
        gold_tokens = normalize_answer(gold).split()
        if not pred_tokens or not gold_tokens:
            best = max(best, float(pred_tokens == gold_tokens))
            continue
        common = Counter(pred_tokens) & Counter(gold_tokens)
        same = sum(common.values())
        if same == 0:
            continue
        precision, recall = same / len(pred_tokens), same / len(gold_tokens)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def qa_match(prediction: str | None, golds: Sequence[str]) -> Score:
    """Exact match (``correct``) and F1 against the gold answers."""
    return Score(exact_match(prediction, golds), f1=f1_score(prediction, golds),
                 parsed=normalize_answer(prediction or ""))


# -- yes / no ----------------------------------------------------------------------------

_YES = {"yes", "true", "correct", "y"}
_NO = {"no", "false", "incorrect", "n"}


def parse_yes_no(prediction: str | None) -> bool | None:
    """``True`` for a yes, ``False`` for a no, ``None`` when the prediction says neither."""
    words = normalize_answer(prediction or "").split()
    for word in words[:3]:
        if word in _YES:
            return True
        if word in _NO:
            return False
    return None


def yes_no_match(prediction: str | None, gold: bool) -> Score:
    """Correct when the prediction's yes/no equals ``gold``."""
    said = parse_yes_no(prediction)
    return Score(said is gold, parsed=None if said is None else ("yes" if said else "no"))
