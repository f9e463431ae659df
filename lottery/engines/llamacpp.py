"""llama.cpp: ``llama-server`` serving the catalogue's GGUF as it is (laptops, small CPU boxes).

Measured on a 2-core machine against vLLM's CPU server (docs/engines.md): a start of 2-4 s
instead of 70-90 s, 4-9x less memory, 1.5-2.2x the single-request decode speed; vLLM keeps
the faster batches and prefill of long prompts and stays the engine for GPUs. The server is
built once per machine from the package index (:mod:`lottery.engines.llamacpp_build`).

Its settings are chosen from the machine (``settings`` in ``lottery serve --status
--json``):

- **threads**: every core;
- **parallel slots**: 4 (the graph's parallel steps and the program samples), 2 on one
  core, and fewer when memory is short;
- **context**: one unified KV buffer of ``max_model_len`` x slots tokens, so a single
  long prompt fits while the other slots are idle;
- **polling**: off (``--poll 0``) on 4 cores or fewer or under load: busy-waiting threads
  collapsed the speed to 1 token/s per request at 8 concurrent on a loaded 2-core machine;
- **prompt caching**: on, with reuse of cached chunks across requests.

``LOTTERY_LLAMA_ARGS`` adds flags of your own.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from rich.progress import Progress

from lottery.engines.base import Launch, ServeOptions
from lottery.engines.llamacpp_build import ensure_llama_server
from lottery.errors import ServerStartError
from lottery.serve.catalogue import resolve
from lottery.serve.prepare import memory_available, prepare_gguf

_GIB = 1024**3
_RUNTIME_BYTES = int(0.3 * _GIB)
"""Compute buffers and the server itself, besides the weights and the KV cache."""


def kv_bytes_per_token(gguf_bytes: int) -> int:
    """A generous estimate of the f16 KV cache per token from the model's size.

    Qwen2.5-0.5B needs 12 KiB a token and the 1.5B 28 KiB (grouped-query attention); this
    bound (64 KiB per GB of weights, 16 KiB at least) covers both without reading the GGUF.
    """
    return max(16 * 1024, int(64 * 1024 * gguf_bytes / 1e9))


def choose_settings(cores: int, available: int | None, load: float, gguf_bytes: int,
                    max_model_len: int) -> dict[str, object]:
    """Threads, slots, context and polling for this machine (see the module docstring)."""
    slots = 4 if cores > 1 else 2
    per_token = kv_bytes_per_token(gguf_bytes)
    if available is not None:
        while slots > 1 and (gguf_bytes + _RUNTIME_BYTES
                             + slots * max_model_len * per_token) > available:
            slots //= 2
    loaded = load > 0.5 * cores
    return {"threads": cores, "parallel": slots, "ctx_size": slots * max_model_len,
            "kv_unified": True, "poll": 0 if cores <= 4 or loaded else 50,
            "cache_prompt": True,
            "why": (f"{cores} cores, load {load:.1f}, "
                    + (f"{available / _GIB:.1f} GiB available" if available is not None
                       else "memory unknown"))}


class LlamaCppEngine:
    """llama.cpp's ``llama-server``."""

    name = "llama.cpp"

    def ensure(self, model: str, progress: Progress | None = None) -> Path:
        gguf = prepare_gguf(model, progress=progress)  # unknown or non-GGUF models fail first
        ensure_llama_server(progress)
        return gguf

    def launch(self, model: str, target: Path, options: ServeOptions) -> Launch:
        binary = ensure_llama_server()
        spec = resolve(model).spec
        gguf_bytes = target.stat().st_size if target.is_file() else (
            spec.gguf_bytes if spec else 0)
        cores = os.cpu_count() or 1
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
        available = memory_available()
        settings = choose_settings(cores, available, load, gguf_bytes, options.max_model_len)
        needed = gguf_bytes + _RUNTIME_BYTES + int(settings["ctx_size"]) \
            * kv_bytes_per_token(gguf_bytes)  # type: ignore[call-overload]
        if available is not None and available < needed:
            raise ServerStartError(
                f"too little memory to serve {model}: about {needed / _GIB:.1f} GiB needed, "
                f"{available / _GIB:.1f} GiB available; stop other servers or lower "
                "--max-model-len")
        cmd = [str(binary), "--model", str(target), "--alias", model,
               "--host", options.host, "--port", str(options.port),
               "--threads", str(settings["threads"]), "--parallel", str(settings["parallel"]),
               "--ctx-size", str(settings["ctx_size"]), "--kv-unified",
               "--poll", str(settings["poll"]), "--cache-prompt", "--cache-reuse", "256",
               "--jinja", "--no-webui",
               *shlex.split(os.environ.get("LOTTERY_LLAMA_ARGS", ""))]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}
        return Launch(cmd, env, settings)

    def owns(self, cmdline: bytes) -> bool:
        return b"llama-server" in cmdline
