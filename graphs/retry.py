"""Retry policy shared by the nodes that call the model server."""

from langgraph.types import RetryPolicy

from lottery.nodes.llm import is_transient

MODEL_RETRY = RetryPolicy(
    initial_interval=0.5, backoff_factor=2.0, max_interval=8.0, max_attempts=3,
    retry_on=is_transient,
)
"""Bounded retries with backoff on transient server errors (unreachable, timeout, 5xx)."""
