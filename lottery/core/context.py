"""Run-time settings of a run (LangGraph ``context_schema``).

Every setting falls back to an environment variable ``LOTTERY_<NAME>`` when the
caller leaves it at its default, so ``langgraph dev``, the CLI and Python code
read the same configuration. The objects a run uses are built from these settings
by ``lottery/resources.py`` (or injected there by Python callers and tests).
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from lottery.core.state import SURE_CONFIDENCE
from lottery.errors import ConfigurationError
from lottery.serve.catalogue import DEFAULT_MODEL


@dataclass(frozen=True, kw_only=True)
class Context:
    """Settings of one run. Each field may come from ``LOTTERY_<FIELD>`` in the environment.

    Settings only: the objects a run uses (models, knowledge base, tools, telemetry) are its
    :class:`~lottery.resources.Resources`, built from these."""

    base_url: str | None = field(
        default=None,
        metadata={"description": "OpenAI-compatible base URL of the model server (…/v1)."},
    )
    model: str = field(
        default=DEFAULT_MODEL, metadata={"description": "Model name as the server knows it."}
    )
    api_key: str = field(default="EMPTY", metadata={"description": "API key for the server."})
    temperature: float = field(default=0.0, metadata={"description": "Sampling temperature."})
    request_timeout: float = field(
        default=300.0, metadata={"description": "Seconds before one model request times out."}
    )
    max_depth: int = field(
        default=2,
        metadata={"description": "Deepest level of sub-problems; problems there are solved directly."},
    )
    max_calls: int = field(
        default=32, metadata={"description": "Budget of model calls for the whole run."}
    )
    max_tokens: int = field(
        default=24000,
        metadata={"description": "Budget of prompt + completion tokens for the whole run."},
    )
    max_fanout: int = field(
        default=6, metadata={"description": "Most sub-problems one divide may create."}
    )
    max_completion_tokens: int = field(
        default=384, metadata={"description": "Most tokens one model answer may have."}
    )
    context_window: int = field(
        default=4096,
        metadata={"description": "Tokens one request may hold, prompt and answer together (the "
                  "server's max model length); evidence and earlier results are shortened to "
                  "fit."},
    )
    max_input_chars: int = field(
        default=20000, metadata={"description": "Longest question accepted, in characters."}
    )
    knowledge_base: str = field(
        default="default", metadata={"description": "Name of the knowledge base to retrieve from."}
    )
    knowledge_description: str = field(
        default="", metadata={"description": "What the knowledge base holds, told to the planner "
                              "so it knows when retrieving helps."},
    )
    top_k: int = field(default=4, metadata={"description": "Documents per retrieval."})
    search_mode: str = field(
        default="hybrid", metadata={"description": "Retrieval ranking: bm25, vector or hybrid."}
    )
    reuse: bool = field(
        default=True,
        metadata={"description": "Answer a sub-problem already solved (same model and knowledge "
                                 "base) from memory M instead of calling the model."},
    )
    reuse_ttl_s: float = field(
        default=0.0,
        metadata={"description": "Seconds a remembered answer may be reused; 0 means forever."},
    )
    context_budget: int = field(
        default=1500,
        metadata={"description": "Tokens of a question's context shown as they are; a longer "
                  "context is split and only its pieces relevant to the question are kept."},
    )
    structured_output: bool = field(
        default=True,
        metadata={"description": "Ask the server for JSON-schema constrained decisions."},
    )
    autostart: bool = field(
        default=True,
        metadata={"description": "Without base_url, start (or reuse) a local model server."},
    )
    engine: str = field(
        default="",
        metadata={"description": "Engine of that local server: vllm (the default), llama.cpp "
                  "or auto (lottery/engines)."},
    )
    web_search: bool = field(
        default=False,
        metadata={"description": "Offer the web_search tool (needs network and `wikipedia`)."},
    )
    program_samples: int = field(
        default=5,
        metadata={"description": "Programs per python/logic tool call: one greedy, the rest "
                  "sampled; their executed answers are voted on."},
    )
    program_shots: int = field(
        default=0,
        metadata={"description": "Worked examples in the prompt that asks for a Python "
                  "program (0 to 3). Measured on the 0.5B (100 items each): no example scored "
                  "53% on SVAMP and 22% on GSM8K, three scored 45% and 18% at 2-2.4x the "
                  "tokens. The z3 (logic) prompt always carries its examples."},
    )
    program_temperature: float = field(
        default=0.7, metadata={"description": "Sampling temperature of those programs."}
    )
    solve_samples: int = field(
        default=1,
        metadata={"description": "Answers per solve: one greedy, the rest sampled at "
                  "solve_temperature; the most common final answer wins (self-consistency)."},
    )
    solve_temperature: float = field(
        default=0.7, metadata={"description": "Sampling temperature of those answers."}
    )
    policy: str = field(
        default="auto",
        metadata={"description": "How problems are answered (nodes/policy.py): auto picks "
                  "math, deduction, ordering, logic, knowledge or general from the question; "
                  "planner is the model planner deciding every step, without checks."},
    )
    delegate_model: str = field(
        default="",
        metadata={"description": "A larger model that problems failing their check are "
                  "delegated to (served at delegate_base_url). Empty: no delegation."},
    )
    delegate_base_url: str = field(
        default="",
        metadata={"description": "OpenAI-compatible base URL (…/v1) of the delegate model."},
    )
    delegate_strategy: str = field(
        default="pal",
        metadata={"description": "How the delegate answers a math problem: pal (one program "
                  "of its own, no worked example, executed in the sandbox) or cot (its chain of "
                  "thought). Measured on the 1.5B (100 items each): the program scored 86% on "
                  "SVAMP and 57% on GSM8K, the chain of thought 80% and 55%, at 0.64x and "
                  "0.63x the compute. Other classes always get its chain of thought."},
    )
    delegate_api_key: str = field(
        default="EMPTY", metadata={"description": "API key for the delegate's server."}
    )
    reuse_min_confidence: float = field(
        default=SURE_CONFIDENCE,
        metadata={"description": "Least confidence of a remembered answer that memory M may "
                  "serve again; only answers that passed their check are remembered."},
    )
    solve_check: str = field(
        default="",
        metadata={"description": "A program tool (python or logic) that checks each solve: "
                  "its executed programs' answers and the solve's answers are voted on "
                  "together, a value both reached winning. Empty: no check."},
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.default is MISSING:
                continue
            env = os.environ.get(f"LOTTERY_{f.name.upper()}")
            if env is None or getattr(self, f.name) != f.default:
                continue
            object.__setattr__(self, f.name, _coerce(f.name, env, f.default))
        if self.reuse_ttl_s < 0:
            raise ConfigurationError(f"reuse_ttl_s must be 0 or more, got {self.reuse_ttl_s}")
        for name in ("max_depth", "max_calls", "max_tokens", "max_fanout", "top_k",
                     "program_samples", "solve_samples", "context_budget", "context_window"):
            if getattr(self, name) < (0 if name == "max_depth" else 1):
                raise ConfigurationError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.program_shots <= 3:
            raise ConfigurationError(f"program_shots must be 0 to 3, got {self.program_shots}")
        if self.solve_check not in ("", "python", "logic"):
            raise ConfigurationError(
                f"solve_check must be python, logic or empty, got {self.solve_check!r}"
            )
        if self.delegate_strategy not in ("cot", "pal"):
            raise ConfigurationError(
                f"delegate_strategy must be cot or pal, got {self.delegate_strategy!r}")
        if not 0 <= self.reuse_min_confidence <= 1:
            raise ConfigurationError(
                f"reuse_min_confidence must be in [0, 1], got {self.reuse_min_confidence}")
        if self.search_mode not in ("bm25", "vector", "hybrid"):
            raise ConfigurationError(
                f"search_mode must be bm25, vector or hybrid, got {self.search_mode!r}"
            )


def _coerce(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ConfigurationError(f"LOTTERY_{name.upper()}={raw!r} is not a valid {name}") from None
    return raw
