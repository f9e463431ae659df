"""Showing a problem tree to a person: a rich tree, one node per problem."""

from __future__ import annotations

from rich.markup import escape
from rich.tree import Tree

from lottery.core.state import Problem

_ICONS = {"solve": "●", "retrieve": "🔎", "tool": "🛠", "divide": "⑂", "reuse": "♻", None: "·"}


def problem_tree(problems: dict[str, Problem], root_id: str = "0") -> Tree:
    """A rich ``Tree`` of the problems: decision, evidence sources and answer per node."""
    root = problems[root_id]
    tree = Tree(_label(root))
    _add_children(tree, root, problems)
    return tree


def _add_children(branch: Tree, problem: Problem, problems: dict[str, Problem]) -> None:
    for ev in problem.get("evidence", []):
        ok = ev.get("ok", True)
        text = escape(" ".join(ev["content"].split())[:100])
        branch.add(f"[{'dim' if ok else 'red'}]{escape(ev['source'])}: {text}[/]")
    for cid in problem.get("children", []):
        if cid in problems:
            child = problems[cid]
            _add_children(branch.add(_label(child)), child, problems)


def _label(p: Problem) -> str:
    decision = p.get("decision")
    icon = _ICONS.get(decision, "·")
    answer = p.get("answer")
    shown = f" [green]→ {escape(answer[:120])}[/]" if answer else f" [yellow]({p['status']})[/]"
    deps = f" [dim](uses {', '.join(p['depends_on'])})[/]" if p.get("depends_on") else ""
    sure = ""
    if p.get("confidence") is not None:  # under a policy: how sure, and the rungs climbed
        colour = "green" if p.get("accepted") else "yellow"
        first = ["attempt"] if p.get("attempted", True) else []  # not on a long question
        rungs = " > ".join([*first, *(p.get("rungs") or [])])
        sure = f" [{colour}]confidence {p['confidence']:.2f}[/] [dim]({escape(rungs)})[/]"
    return (f"{icon} [bold]{p['id']}[/] [cyan]{decision or 'unplanned'}[/] "
            f"{escape(p['question'][:140])}{deps}{shown}{sure}")
