"""The model client's retry rules: what is retried, how often, and with what backoff.

docs/reliability.md ("Retries"): one retry layer (graphs/retry.py), 3 attempts, 0.5 s then
1 s backoff with jitter, on connection errors, timeouts, 429 and 5xx; never on other 4xx.
"""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from lottery import asolve
from lottery.errors import ModelServerError
from lottery.nodes.llm import is_transient
from lottery.testing import ScriptedChatModel

REQUEST = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


def status_error(code: int) -> openai.APIStatusError:
    response = httpx.Response(code, request=REQUEST, json={"error": {"message": f"HTTP {code}"}})
    cls = {400: openai.BadRequestError, 401: openai.AuthenticationError,
           404: openai.NotFoundError, 422: openai.UnprocessableEntityError,
           429: openai.RateLimitError}.get(code, openai.InternalServerError)
    return cls(f"HTTP {code}", response=response, body=None)


@pytest.mark.parametrize(("error", "retried"), [
    (status_error(429), True), (status_error(500), True), (status_error(503), True),
    (openai.APIConnectionError(request=REQUEST), True), (openai.APITimeoutError(REQUEST), True),
    (httpx.ConnectError("refused"), True), (TimeoutError(), True),
    (status_error(400), False), (status_error(401), False), (status_error(404), False),
    (status_error(422), False), (ValueError("bad reply"), False),
])
def test_only_transient_errors_are_retried(error: BaseException, retried: bool) -> None:
    assert is_transient(error) is retried


def failing_model(errors: list[BaseException]) -> tuple[ScriptedChatModel, list[float]]:
    """Raises ``errors`` in turn on the first calls, then answers; records when each call came."""
    times: list[float] = []

    def respond(messages):  # type: ignore[no-untyped-def]
        times.append(time.monotonic())
        if len(times) <= len(errors):
            raise errors[len(times) - 1]
        return "Answer: 4"

    return ScriptedChatModel(respond=respond), times


async def test_429_is_retried_with_a_growing_backoff_then_answers() -> None:
    model, times = failing_model([status_error(429), status_error(429)])
    result = await asolve("What is 2 + 2?", chat_model=model, strategy="direct", durable=False)
    assert result.answer == "4" and len(times) == 3
    first, second = times[1] - times[0], times[2] - times[1]
    # 0.5 s then 1 s, each plus up to 1 s of jitter: a client without backoff fails here.
    assert 0.5 <= first <= 1.6 and 1.0 <= second <= 2.1


async def test_a_client_error_is_not_retried_and_fails_in_one_line() -> None:
    model, times = failing_model([status_error(400)] * 3)
    with pytest.raises((ModelServerError, openai.BadRequestError)) as err:
        await asolve("What is 2 + 2?", chat_model=model, strategy="direct", durable=False)
    assert len(times) == 1  # asked once: repeating a bad request cannot help
    assert "\n" not in str(err.value)


async def test_a_server_that_keeps_failing_gets_exactly_three_attempts() -> None:
    model, times = failing_model([status_error(503)] * 5)
    start = time.monotonic()
    with pytest.raises(ModelServerError, match="3 attempts"):
        await asolve("What is 2 + 2?", chat_model=model, strategy="direct", durable=False)
    assert len(times) == 3 and 1.5 <= time.monotonic() - start <= 4.5
