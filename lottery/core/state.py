"""The state of a run: the whole problem tree, its usage and its answer.

Parallel branches (one ``Send`` per sub-problem) write the same keys, so each
such key declares its reducer beside it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

# typing_extensions' TypedDict: pydantic (and so Studio's schema of the graph input) rejects
# typing.TypedDict on Python < 3.12.
from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

SURE_CONFIDENCE = 0.8
"""A confidence at or above which an answer is reported sure: calibrated so that such
answers are right at least 80% of the time on every measured suite (docs/policy.md). Memory
M serves only such answers by default, and ``lottery ask`` notes an accepted answer below it."""


Decision = Literal["solve", "retrieve", "tool", "divide", "reuse"]
"""What the planner decided for one problem (``reuse``: answered from memory M, no planner)."""

Status = Literal["pending", "retrieve", "tool", "solve", "divided", "merge", "doubt", "done"]
"""Where a problem stands; for every status but ``divided``, ``doubt`` and ``done`` it is the
next node. ``doubt``: answered, but the answer failed its check (the policy climbs on)."""


class Candidate(TypedDict):
    """One answer a problem received, and where it came from."""

    answer: str
    kind: Literal["words", "program", "passages", "delegate", "merge", "proof", "unproven",
                  "calculation"]
    """``words``: a reasoned answer; ``program``: an executed program's output;
    ``passages``: retrieved passages that contain the answer; ``delegate``: the delegate
    model's answer; ``merge``: the merge of the sub-answers; ``proof``: the ``rules``
    solver derived the statement or its negation from the model's clauses; ``unproven``:
    it derived neither (Unknown); ``calculation``: the ``calculator`` computed a question
    that is nothing but arithmetic."""
    model: NotRequired[str]
    """The model that wrote it."""


class Evidence(TypedDict):
    """A piece of knowledge attached to a problem."""

    source: str
    """``kb:<name>`` for a retrieved document, ``tool:<name>`` for a tool result."""
    content: str
    """The document text or the tool output (or its error)."""
    ref: NotRequired[str]
    """Document id, or the tool call's arguments as JSON."""
    score: NotRequired[float]
    """Retrieval score, when there is one."""
    ok: NotRequired[bool]
    """False when a tool failed; the content is then the error."""


class Problem(TypedDict):
    """One node of the problem tree."""

    id: str
    """Path-like id: ``0`` is the root, ``0.2`` its second sub-problem."""
    parent: str | None
    """Id of the parent problem, ``None`` for the root."""
    depth: int
    """0 for the root."""
    question: str
    """The question, with the answers it depends on substituted in."""
    template: str
    """The question as the planner wrote it (``#1`` marks sub-problem 1's answer)."""
    depends_on: list[str]
    """Ids of sibling problems whose answers this one needs first."""
    decision: Decision | None
    """The planner's decision, ``None`` until planned."""
    reason: str
    """Why: the planner's reason, or the rule that decided (depth limit, fallback)."""
    query: str | None
    """The retrieval query, for ``retrieve``."""
    tool_call: dict[str, Any] | None
    """``{"name", "args"}`` for ``tool`` decisions; with ``result`` once run."""
    evidence: list[Evidence]
    """Retrieved documents and tool results gathered for this problem."""
    children: list[str]
    """Ids of the sub-problems, for ``divide`` decisions."""
    answer: str | None
    """The answer once solved or merged."""
    status: Status
    """Where it stands."""
    calls: int
    """Model calls spent on this problem."""
    reused_from: NotRequired[dict[str, Any]]
    """For ``reuse``: the run and problem whose answer was served, and the calls it had cost."""
    memorized: NotRequired[bool]
    """True once the answer is in memory M for reuse by later problems and runs."""
    check: NotRequired[dict[str, Any]]
    """With ``solve_check``: the worded and executed candidates, and the support of the
    chosen answer (``words``, ``programs`` votes)."""
    rung: NotRequired[str]
    """Under a policy: the rung the problem is on (``attempt``, ``samples``, ``retrieve``,
    ``delegate``, ``divide``; see ``nodes/policy.py``)."""
    rungs: NotRequired[list[str]]
    """The rungs climbed after the attempt, in order."""
    attempted: NotRequired[bool]
    """False when the problem skipped the attempt: a question long enough for the policy to
    send it to the delegate at once (its ``rungs`` then start with ``delegate``)."""
    candidates: NotRequired[list[Candidate]]
    """Every answer the problem received on its way up the ladder."""
    confidence: NotRequired[float]
    """How sure the evidence is of the answer, in [0, 1] (see ``nodes/policy.score``)."""
    accepted: NotRequired[bool]
    """True when the answer passed its check; False for a best-effort answer."""


class Usage(TypedDict, total=False):
    """Resource use of a run; summed across parallel branches."""

    calls: int
    prompt_tokens: int
    completion_tokens: int
    repairs: int
    fallbacks: int
    reuse_hits: int
    """Sub-problems answered from memory M instead of the model."""
    saved_calls: int
    """Model calls those sub-problems had cost when first solved."""
    delegate_calls: int
    """Calls to the delegate model (counted in ``calls`` too: one budget for both)."""
    delegate_prompt_tokens: int
    delegate_completion_tokens: int


def merge_problems(
    left: dict[str, Problem] | None, right: dict[str, dict[str, Any]] | None
) -> dict[str, Problem]:
    """Reducer of the tree: a branch sends only the fields it changed, per problem id."""
    merged = dict(left or {})
    for pid, update in (right or {}).items():
        merged[pid] = {**merged.get(pid, {}), **update}  # type: ignore[typeddict-item]
    return merged


def add_usage(left: Usage | None, right: Usage | None) -> Usage:
    """Reducer of usage: counters add up across branches."""
    out: dict[str, int] = dict(left or {})
    for key, value in (right or {}).items():
        out[key] = out.get(key, 0) + value
    return out  # type: ignore[return-value]


@with_config(ConfigDict(use_attribute_docstrings=True))
class QuestionInput(TypedDict):
    """What a caller gives a baseline graph: the question alone."""

    question: str
    """The question to answer."""


@with_config(ConfigDict(use_attribute_docstrings=True))
class InputState(QuestionInput):
    """What a caller gives (Studio renders this as the input form).

    The optional fields override the run's context settings of the same name for
    this run only; ``schedule`` applies them (see ``nodes.schedule.limits``).
    """

    context: NotRequired[str]
    """Material the question is about (a document, a transcript). Longer than the
    ``context_budget``, it is split and only the pieces relevant to the question reach
    the model (``nodes/preprocess.py``)."""

    knowledge_base: NotRequired[str | None]
    """Knowledge base to retrieve from (default: the context's ``knowledge_base``)."""
    max_depth: NotRequired[int | None]
    """Deepest level of sub-problems (default: the context's ``max_depth``)."""
    max_calls: NotRequired[int | None]
    """Budget of model calls (default: the context's ``max_calls``)."""
    max_tokens: NotRequired[int | None]
    """Budget of prompt + completion tokens (default: the context's ``max_tokens``)."""


class OutputState(TypedDict):
    """What a caller gets back."""

    question: str
    run_id: str
    """Id of the run (the checkpoint thread id when there is one)."""
    answer: str | None
    """The final answer (best effort when ``best_effort`` is true)."""
    best_effort: bool
    """True when the answer is not an accepted one: the budget ran out before the tree
    was finished, or the answer failed its check on every rung."""
    stop_reason: str | None
    """Why the run ended early (budget), ``None`` when it finished."""
    confidence: float | None
    """The root answer's confidence in [0, 1]; ``None`` under the ``planner`` policy."""
    policy: str | None
    """The policy the run followed (``auto`` resolved to its class, e.g. ``math``)."""
    problems: dict[str, Problem]
    """The whole problem tree, keyed by id; the root is ``"0"``."""
    usage: Usage


class State(InputState):
    """The full state of a run."""

    run_id: str
    """Id of the run; the thread id when the caller gave one."""
    problems: Annotated[dict[str, Problem], merge_problems]
    """The problem tree. Parallel branches update different problems: merged per id."""
    usage: Annotated[Usage, add_usage]
    """Model calls and tokens. Parallel branches add theirs: summed."""
    answer: str | None
    best_effort: bool
    stop_reason: str | None
    confidence: float | None
    policy: str | None


class Task(TypedDict):
    """What one ``Send`` carries to a node: one problem and what it needs to act on it."""

    run_id: str
    goal: str
    """The root question, for orientation."""
    problem: Problem
    related: list[dict[str, Any]]
    """``{"id", "question", "answer"}`` (and ``confidence`` under a policy) of the problems
    this one builds on (children or dependencies)."""
    allowance: int
    """Model calls this task may spend: its share of the calls left, at least 1 (2 or more
    let a step add a repair or a check; a ``deduction`` attempt needs one per sentence)."""
    max_depth: NotRequired[int]
    """The run's depth limit, when the input overrides the context's."""
    knowledge_base: NotRequired[str]
    """The run's knowledge base, when the input overrides the context's."""
    policy: NotRequired[str]
    """The run's policy (resolved: ``math``, ``logic``, ...)."""


def new_problem(
    pid: str, question: str, *, parent: str | None = None, depth: int = 0,
    depends_on: list[str] | None = None,
) -> Problem:
    """A fresh, unplanned problem."""
    return Problem(
        id=pid, parent=parent, depth=depth, question=question, template=question,
        depends_on=list(depends_on or []), decision=None, reason="", query=None,
        tool_call=None, evidence=[], children=[], answer=None, status="pending", calls=0,
    )
