"""Baseline: the model writes one Python program (program-aided, as in PAL); the sandbox
runs it and its output is the answer."""

from langgraph.graph import StateGraph

from lottery.core.state import Usage
from lottery.errors import ConfigurationError
from lottery.graphs.baselines import one_step_graph
from lottery.nodes.programs import run_programs
from lottery.resources import Resources


async def program_answer(res: Resources, question: str) -> tuple[str, Usage]:
    """One greedy program (the few-shot prompt of the policy's Python check), run in the
    sandbox; a program that fails goes back to the model once with its error. No answer
    when no program ran."""
    if "python" not in res.registry:
        raise ConfigurationError("the program baseline needs the python tool in the tool set")
    outcome = await run_programs(res, "python", question, [], allowance=2, samples=1)
    return outcome.answer or "", outcome.reply.usage


def build_graph() -> StateGraph:
    """The uncompiled builder of the program baseline."""
    return one_step_graph(program_answer, reason="program baseline (PAL)")


graph = build_graph().compile(name="pal")
