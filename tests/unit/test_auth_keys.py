"""API keys of the graph server (lottery/auth.py): how they are read, and which are refused.

The servers themselves are tested in tests/integration/test_server_auth.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lottery.auth import _token, load_keys, parse_keys
from lottery.errors import ConfigurationError

A, B = "a" * 20, "b" * 20


def test_keys_name_their_users_from_the_variable_and_the_file(tmp_path: Path):
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# mounted secret\nbob:{B}\n\n")
    keys = load_keys({"LOTTERY_API_KEYS": f" alice:{A} ", "LOTTERY_API_KEYS_FILE": str(keys_file)})
    assert keys == {A: "alice", B: "bob"}


@pytest.mark.parametrize(("text", "message"), [
    (f"alice{A}", "item 1 is not 'user:key'"),
    (f"alice:{A},:{B}", "item 2 is not 'user:key'"),
    ("alice:short", "shorter than 16"),
    (f"alice:{A},bob:{A}", "share a key"),
])
def test_an_unusable_key_list_is_a_one_line_error_that_never_shows_a_key(text: str, message: str):
    with pytest.raises(ConfigurationError, match=message) as err:
        parse_keys(text, source="LOTTERY_API_KEYS")
    assert "\n" not in str(err.value) and A not in str(err.value)


def test_the_key_comes_from_a_bearer_header_or_x_api_key_in_bytes_or_text():
    assert _token({b"authorization": b"Bearer  k1 "}) == "k1"
    assert _token({"Authorization": "bearer k2"}) == "k2"
    assert _token({"X-Api-Key": "k3", "authorization": "Bearer k4"}) == "k3"
    assert _token({"authorization": "Basic abc"}) is None and _token({}) is None
