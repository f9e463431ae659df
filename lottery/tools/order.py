"""The ``order`` tool: which option must hold when objects stand in one order.

The solver of ordering puzzles (Logic-LM's constraint step): objects in a row from a first
end to a last end, statements that put one object nearer an end than another or at a place
counted from an end, and options stated the same way. Every order of the objects is tried
(seven objects: 5,040 orders); the answer is the option that holds in every order the
statements allow. Pure data in, a letter out: nothing the model wrote runs.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_OBJECTS = 8
"""Most objects the tool orders (8! = 40,320 orders)."""


class Placement(BaseModel):
    """One statement: ``object`` is ``before`` (nearer the first end than) or ``after``
    ``other``, or at ``place`` (1 = the first end) when ``kind`` is ``place``."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["before", "after", "place"]
    object: str = Field(min_length=1, max_length=80)
    other: str = Field(default="", max_length=80)
    place: int = Field(default=0, ge=0, le=MAX_OBJECTS)


class OrderArgs(BaseModel):
    """Arguments of the ``order`` tool."""

    model_config = ConfigDict(extra="forbid")
    objects: list[str] = Field(min_length=2, max_length=MAX_OBJECTS)
    statements: list[Placement] = Field(max_length=50)
    options: dict[str, Placement] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _known_objects(self) -> OrderArgs:
        names = set(self.objects)
        if len(names) != len(self.objects):
            raise ValueError("objects must be distinct")
        for p in [*self.statements, *self.options.values()]:
            if p.object not in names or (p.kind != "place" and p.other not in names - {p.object}):
                raise ValueError(f"a statement names an unknown object: {p.object!r} / {p.other!r}")
            if p.kind == "place" and not 1 <= p.place <= len(self.objects):
                raise ValueError(f"place {p.place} is outside 1..{len(self.objects)}")
        return self


def _holds(order: tuple[int, ...], p: Placement, index: dict[str, int]) -> bool:
    """``order[i]`` is the place (0 = the first end) of object ``i``."""
    at = order[index[p.object]]
    if p.kind == "place":
        return at == p.place - 1
    other = order[index[p.other]]
    return at < other if p.kind == "before" else at > other


def orders(args: OrderArgs) -> list[tuple[int, ...]]:
    """Every order of the objects that the statements allow."""
    index = {name: i for i, name in enumerate(args.objects)}
    return [o for o in itertools.permutations(range(len(args.objects)))
            if all(_holds(o, p, index) for p in args.statements)]


def must_hold(args: OrderArgs) -> tuple[list[str], int]:
    """The options that hold in every allowed order, and how many orders there are (none
    when the statements contradict each other)."""
    index = {name: i for i, name in enumerate(args.objects)}
    allowed = orders(args)
    letters = [letter for letter, p in args.options.items()
               if allowed and all(_holds(o, p, index) for o in allowed)]
    return letters, len(allowed)


def decide(args: OrderArgs) -> str:
    """The one option that must hold; ``none`` when the statements allow no order or no
    single option."""
    letters, _ = must_hold(args)
    return letters[0] if len(letters) == 1 else "none"


def make_order_tool() -> BaseTool:
    """The ``order`` tool."""

    def order(objects: list[str], statements: list[Placement],
              options: dict[str, Placement]) -> str:
        return decide(OrderArgs(objects=objects, statements=statements, options=options))

    return StructuredTool.from_function(
        func=order, name="order", args_schema=OrderArgs,
        description=(f"Decide which option must hold when up to {MAX_OBJECTS} objects stand in "
                     f"one order (at most {math.factorial(MAX_OBJECTS):,} orders tried)."),
    )
