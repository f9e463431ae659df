"""Bad input and configuration: clear one-line errors, the right exit status, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lottery import Context, asolve
from lottery.cli import app
from lottery.errors import ConfigurationError, InputError
from tests.unit.scripted import scripted

runner = CliRunner()


@pytest.mark.parametrize("question,message", [
    ("", "empty"), ("   \n\t", "empty"), ("x" * 30000, "over the limit"),
    ("bin\x00ary", "NUL"), ("bad \udcff utf8", "UTF-8"),
])
async def test_unusable_questions_raise_input_error(question, message):
    with pytest.raises(InputError, match=message):
        await asolve(question, chat_model=scripted())


async def test_non_text_question_raises_input_error():
    with pytest.raises(InputError, match="must be text"):
        await asolve(b"bytes", chat_model=scripted())  # type: ignore[arg-type]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lottery.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_empty_question_exits_2_with_one_line():
    result = runner.invoke(app, ["ask", "  "])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == ["error: the question is empty [invalid_input]"]


def test_cli_unreachable_server_names_the_url_and_exits_1(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    result = runner.invoke(app, ["ask", "Ann has 1 pen and gets 1 more. How many pens does she have?",
                                  "--base-url", url])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and lines[0].startswith("error:")
    assert "Traceback" not in result.output


def test_settings_fall_back_to_lottery_environment_variables(monkeypatch):
    monkeypatch.setenv("LOTTERY_MAX_DEPTH", "5")
    monkeypatch.setenv("LOTTERY_BASE_URL", "http://127.0.0.1:9/v1")
    ctx = Context()
    assert ctx.max_depth == 5 and ctx.base_url == "http://127.0.0.1:9/v1"
    assert Context(max_depth=1).max_depth == 1, "an explicit value wins over the environment"
    monkeypatch.setenv("LOTTERY_MAX_CALLS", "many")
    with pytest.raises(ConfigurationError, match="LOTTERY_MAX_CALLS"):
        Context()


def test_invalid_limits_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="max_calls"):
        Context(max_calls=0)
