"""Model catalogue, preparation and server management, without network or a real vLLM."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import stat
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from lottery.cli import app
from lottery.engines import server as srv
from lottery.engines import vllm as vllm_engine
from lottery.errors import ConfigurationError, ModelPrepareError, ServerStartError, UnknownModelError
from lottery.serve import prepare as prep
from lottery.serve.catalogue import CATALOGUE, DEFAULT_MODEL, CatalogueModel, resolve

PIECES = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 123]


def make_wheels(folder: Path, pieces: list[bytes], layout: str = "parts") -> list[Path]:
    """Fake model wheels: ``pkgN/data/partNN.bin`` (or one ``.gguf``) inside each."""
    folder.mkdir(parents=True, exist_ok=True)
    wheels = []
    for i, data in enumerate(pieces, start=1):
        wheel = folder / f"fake_part{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"fake_part{i}/__init__.py", "")
            member = f"fake_part{i}/data/part{i:02d}.bin" if layout == "parts" else "m/model.gguf"
            zf.writestr(member, data)
        wheels.append(wheel)
    return wheels


def fake_spec(pieces: list[bytes], sha256: str | None = None) -> CatalogueModel:
    digest = sha256 or hashlib.sha256(b"".join(pieces)).hexdigest()
    return CatalogueModel(
        name="fake-model", title="Fake", packages=tuple(f"fake-part{i}==1.0" for i in range(1, 4)),
        sha256=digest, gguf_bytes=sum(map(len, pieces)), checkpoint_bytes=1000)


class Pipeline:
    """A download and a convert step that count their calls (no pip, no transformers)."""

    def __init__(self, wheels_src: Path, pieces: list[bytes], fail_convert: bool = False) -> None:
        self.wheels = make_wheels(wheels_src, pieces)
        self.downloads = 0
        self.fail_convert = fail_convert

    def download(self, packages: list[str], dest: Path, progress: object) -> list[Path]:
        self.downloads += 1
        return self.wheels

    def convert(self, gguf: Path, out: Path, progress: object) -> None:
        if self.fail_convert:
            raise ModelPrepareError("converting fake-model failed")
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(gguf.read_bytes())


def prepare(spec: CatalogueModel, root: Path, pipe: Pipeline, **kw: object) -> Path:
    return prep.prepare_catalogue(spec, root=root, download=pipe.download, convert=pipe.convert,
                                  **kw)  # type: ignore[arg-type]


# -- catalogue ---------------------------------------------------------------------------

def test_catalogue_has_the_three_models_and_the_default() -> None:
    assert set(CATALOGUE) == {"qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct",
                              "smollm2-135m-instruct"}
    assert DEFAULT_MODEL == "qwen2.5-coder-0.5b-instruct"
    assert len(CATALOGUE[DEFAULT_MODEL].packages) == 6
    assert len(CATALOGUE["qwen2.5-coder-1.5b-instruct"].packages) == 22


def test_unknown_model_name_lists_the_catalogue() -> None:
    with pytest.raises(UnknownModelError, match="smollm2-135m-instruct") as err:
        resolve("gpt-5")
    assert isinstance(err.value, ConfigurationError) and "\n" not in str(err.value)


def test_hf_id_and_checkpoint_directory_are_accepted(tmp_path: Path) -> None:
    assert resolve("Qwen/Qwen2.5-0.5B-Instruct").kind == "hf"
    (tmp_path / "config.json").write_text("{}")
    ref = resolve(str(tmp_path))
    assert ref.kind == "local" and ref.path == tmp_path.resolve()


def test_directory_without_config_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="no config.json"):
        resolve(str(tmp_path))


# -- assembling and verifying ------------------------------------------------------------

def test_assemble_concatenates_parts_in_package_order(tmp_path: Path) -> None:
    wheels = make_wheels(tmp_path / "w", PIECES)
    dest = tmp_path / "model.gguf"
    prep.assemble(fake_spec(PIECES), wheels, dest)
    assert dest.read_bytes() == b"".join(PIECES)


def test_assemble_reads_a_whole_gguf_out_of_a_wheel(tmp_path: Path) -> None:
    wheels = make_wheels(tmp_path / "w", PIECES[:1], layout="gguf")
    dest = tmp_path / "model.gguf"
    prep.assemble(fake_spec(PIECES[:1]), wheels, dest)
    assert dest.read_bytes() == PIECES[0]


def test_checksum_mismatch_is_refused_and_the_file_deleted(tmp_path: Path) -> None:
    wheels = make_wheels(tmp_path / "w", PIECES)
    dest = tmp_path / "model.gguf"
    with pytest.raises(ModelPrepareError, match="checksum mismatch for fake-model"):
        prep.assemble(fake_spec(PIECES, sha256="0" * 64), wheels, dest)
    assert not dest.exists()


def test_a_truncated_wheel_is_a_clear_error(tmp_path: Path) -> None:
    wheels = make_wheels(tmp_path / "w", PIECES)
    wheels[1].write_bytes(wheels[1].read_bytes()[:200])
    with pytest.raises(ModelPrepareError, match="not a readable wheel"):
        prep.assemble(fake_spec(PIECES), wheels, tmp_path / "model.gguf")


# -- preparing into the cache -------------------------------------------------------------

def test_prepare_publishes_a_checkpoint_with_a_marker(tmp_path: Path) -> None:
    pipe, spec = Pipeline(tmp_path / "src", PIECES), fake_spec(PIECES)
    final = prepare(spec, tmp_path / "models", pipe)
    assert final == tmp_path / "models" / "fake-model"
    marker = json.loads((final / prep.MARKER).read_text())
    assert marker["name"] == "fake-model" and marker["sha256"] == spec.sha256
    assert prep.is_prepared(spec, final)
    assert [p.name for p in (tmp_path / "models").iterdir() if p.name.startswith(".partial")] == []


def test_prepare_twice_downloads_once(tmp_path: Path) -> None:
    pipe, spec = Pipeline(tmp_path / "src", PIECES), fake_spec(PIECES)
    prepare(spec, tmp_path / "models", pipe)
    prepare(spec, tmp_path / "models", pipe)
    assert pipe.downloads == 1


def test_a_corrupted_checkpoint_is_detected_and_redone(tmp_path: Path) -> None:
    pipe, spec = Pipeline(tmp_path / "src", PIECES), fake_spec(PIECES)
    final = prepare(spec, tmp_path / "models", pipe)
    with (final / "model.safetensors").open("r+b") as fh:
        fh.truncate(10)
    assert not prep.is_prepared(spec, final)
    prepare(spec, tmp_path / "models", pipe)
    assert pipe.downloads == 2 and prep.is_prepared(spec, final)
    assert (final / "model.safetensors").read_bytes() == b"".join(PIECES)


def test_a_checkpoint_without_marker_is_never_prepared(tmp_path: Path) -> None:
    spec = fake_spec(PIECES)
    half = tmp_path / "models" / "fake-model"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    (half / "model.safetensors").write_bytes(b"x")
    assert not prep.is_prepared(spec, half)


def test_failed_conversion_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    pipe, spec = Pipeline(tmp_path / "src", PIECES, fail_convert=True), fake_spec(PIECES)
    with pytest.raises(ModelPrepareError, match="converting"):
        prepare(spec, tmp_path / "models", pipe)
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == []
    pipe.fail_convert = False
    assert prep.is_prepared(spec, prepare(spec, tmp_path / "models", pipe))


def test_checksum_mismatch_keeps_the_earlier_good_checkpoint(tmp_path: Path) -> None:
    pipe, spec = Pipeline(tmp_path / "src", PIECES), fake_spec(PIECES)
    final = prepare(spec, tmp_path / "models", pipe)
    pipe.wheels = make_wheels(tmp_path / "bad", [b"evil", b"x", b"y"])
    with pytest.raises(ModelPrepareError, match="checksum mismatch"):
        prepare(spec, tmp_path / "models", pipe, force=True)
    assert prep.is_prepared(spec, final)


def test_leftover_partial_folder_is_cleaned_up(tmp_path: Path) -> None:
    pipe, spec = Pipeline(tmp_path / "src", PIECES), fake_spec(PIECES)
    stale = tmp_path / "models" / ".partial-fake-model-999999"
    stale.mkdir(parents=True)
    prepare(spec, tmp_path / "models", pipe)
    assert not stale.exists()


def test_too_little_disk_is_refused_before_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe, spec = Pipeline(tmp_path / "src", PIECES), fake_spec(PIECES)
    monkeypatch.setattr(prep.shutil, "disk_usage", lambda _p: SimpleNamespace(free=10))
    with pytest.raises(ModelPrepareError, match="too little disk"):
        prepare(spec, tmp_path / "models", pipe)
    assert pipe.downloads == 0


def test_too_little_memory_to_convert_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setattr(prep, "memory_available", lambda: 1024)
    with pytest.raises(ModelPrepareError, match="too little memory to convert smollm2"):
        prep.prepare_catalogue(CATALOGUE["smollm2-135m-instruct"], root=tmp_path)


def test_models_list_shows_prepared_state() -> None:
    result = CliRunner().invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0
    rows = {m["name"]: m for m in json.loads(result.stdout)}
    assert set(rows) == set(CATALOGUE) and not any(m["prepared"] for m in rows.values())
    assert rows[DEFAULT_MODEL]["default"] is True


def test_models_prepare_of_unknown_name_is_one_line_error() -> None:
    result = CliRunner().invoke(app, ["models", "prepare", "no-such-model"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: unknown model 'no-such-model'")


# -- servers --------------------------------------------------------------------------------

def test_state_file_round_trip() -> None:
    info = srv.ServerInfo(pid=os.getpid(), port=8123, model="m", log="/x.log", started_at=1.0)
    srv.write_state(info)
    assert srv.read_state(srv.state_path(8123)) == info
    assert info.base_url == "http://127.0.0.1:8123/v1"


def test_stale_and_broken_state_files_are_dropped() -> None:
    dead = srv.ServerInfo(pid=2**22 + 12345, port=8124, model="m")
    srv.write_state(dead)
    srv.state_path(8125).write_text("{not json")
    # Our own pid is alive but is no vLLM process: a reused pid must not count either.
    srv.write_state(srv.ServerInfo(pid=os.getpid(), port=8126, model="m"))
    assert srv.known_servers() == []
    assert list(srv.servers_dir().glob("*.json")) == []
    status = CliRunner().invoke(app, ["serve", "--status", "--json"])
    assert status.exit_code == 0 and json.loads(status.stdout) == []


def test_port_taken_by_another_program_is_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ServerStartError, match=f"port {port} on 127.0.0.1 is taken"):
            srv.start_server(DEFAULT_MODEL, port=port)


def fake_vllm(tmp_path: Path, script: str) -> Path:
    exe = tmp_path / "fake-python"
    exe.write_text("#!/bin/sh\n" + script + "\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


def checkpoint(tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_server_dying_during_start_shows_its_log(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_VLLM_PYTHON", str(fake_vllm(
        tmp_path, 'echo "RuntimeError: no kernel for this CPU" >&2; exit 3')))
    port = srv.free_port()
    with pytest.raises(ServerStartError, match="exited with status 3") as err:
        srv.start_server(str(checkpoint(tmp_path)), port=port, kv_cache_gib=0.1)
    assert "no kernel for this CPU" in str(err.value)
    assert not srv.state_path(port).exists()


def test_server_not_answering_in_time_is_stopped(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_VLLM_PYTHON", str(fake_vllm(
        tmp_path, 'exec python3 -c "import time; print(\'vllm loading\', flush=True); '
                  'time.sleep(60)" vllm')))
    port = srv.free_port()
    with pytest.raises(ServerStartError, match="did not answer within 2 s"):
        srv.start_server(str(checkpoint(tmp_path)), port=port, kv_cache_gib=0.1, timeout=2)
    assert srv.known_servers() == [] and not srv.state_path(port).exists()


def test_too_little_memory_to_serve_is_refused(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOTTERY_VLLM_PYTHON", str(fake_vllm(tmp_path, "exit 0")))
    monkeypatch.setattr(vllm_engine, "memory_available", lambda: 512 * 1024**2)
    with pytest.raises(ServerStartError, match="too little memory to serve"):
        srv.start_server(str(checkpoint(tmp_path)), port=srv.free_port(), kv_cache_gib=1)


def test_stop_without_servers_says_so() -> None:
    result = CliRunner().invoke(app, ["serve", "--stop"])
    assert result.exit_code == 0 and "no server was running" in result.stdout


# -- the embedded default -------------------------------------------------------------------

async def test_solve_without_server_settings_starts_the_default_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lottery import api

    asked: list[tuple[str, str | None]] = []

    def fake_ensure(model: str, engine: str | None = None) -> str:
        asked.append((model, engine))
        raise ServerStartError("no vLLM here")

    monkeypatch.setattr("lottery.engines.server.ensure_server", fake_ensure)
    with pytest.raises(ServerStartError):
        await api.asolve("What is 2 + 2?")
    with pytest.raises(ServerStartError):
        await api.asolve("What is 2 + 2?", engine="llama.cpp")
    monkeypatch.setenv("LOTTERY_ENGINE", "auto")
    with pytest.raises(ServerStartError):
        await api.asolve("What is 2 + 2?")
    assert asked == [(DEFAULT_MODEL, None), (DEFAULT_MODEL, "llama.cpp"), (DEFAULT_MODEL, "auto")]


async def test_autostart_off_asks_for_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from lottery import api

    monkeypatch.setattr("lottery.engines.server.ensure_server", lambda m: pytest.fail("started a server"))
    with pytest.raises(ConfigurationError, match="LOTTERY_BASE_URL"):
        await api.asolve("What is 2 + 2?", autostart=False)


@pytest.mark.parametrize("flags,dtype", [
    ("fpu sse avx2 fma", "float32"),  # bf16 would be emulated: slower than float32
    ("avx2 avx512f avx512_bf16", "bfloat16"),
    ("avx2 amx_bf16 amx_tile", "bfloat16"),
])
def test_cpu_server_uses_bf16_only_where_the_cpu_has_it(flags, dtype):
    assert vllm_engine.cpu_dtype(f"processor\t: 0\nflags\t\t: {flags}\n") == dtype


def test_float32_weights_count_twice_in_the_memory_check(tmp_path, monkeypatch):
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1024**2)  # a 1 MiB bf16 checkpoint
    need_bf16 = 1024**2 + 1.5 * 1024**3  # weights + no KV cache + runtime
    monkeypatch.setattr(vllm_engine, "memory_available", lambda: int(need_bf16) + 1024)
    vllm_engine.check_memory("m", tmp_path, 0, "bfloat16")  # fits
    with pytest.raises(ServerStartError, match=r"weights 0\.0 \+ KV"):
        vllm_engine.check_memory("m", tmp_path, 0, "float32")  # twice the weights: does not


def test_progress_on_a_non_terminal_prints_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """The first start takes minutes: with stderr in a log file it must not look stuck."""
    from lottery.serve.ui import add_task, stderr_progress, update

    with stderr_progress() as progress:
        task = add_task(progress, "downloading model packages", 3)
        update(progress, task, description="downloading pkg-2", completed=1)  # within 10 s
        update(progress, task, description="downloaded 3 package(s)", completed=3)  # finished
    lines = re.findall(r"^\d\d:\d\d:\d\d (.+)$", capsys.readouterr().err, re.M)
    # the start and the end of the step, as they happen; not every update (at most one a 10 s)
    assert lines == ["downloading model packages", "downloaded 3 package(s)"]
