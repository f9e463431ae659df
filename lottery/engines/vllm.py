"""vLLM: the default and production engine (GPU servers, the k8s manifests).

The server is ``python -m vllm.entrypoints.openai.api_server`` of the vLLM environment
(:mod:`lottery.serve.venv`), loading the catalogue model converted to a safetensors
checkpoint (:mod:`lottery.serve.prepare`): vLLM cannot load GGUF on a CPU.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from rich.progress import Progress

from lottery.engines.base import Launch, ServeOptions
from lottery.errors import ServerStartError
from lottery.paths import lottery_home
from lottery.serve.prepare import memory_available, prepare_model
from lottery.serve.venv import ensure_vllm_venv, has_gpu

DEFAULT_KV_CACHE_GIB = 4
STRUCTURED_OUTPUTS = '{"backend": "xgrammar", "disable_any_whitespace": true}'
_GIB = 1024**3


def cpu_dtype(cpuinfo: str | None = None) -> str:
    """The weights' dtype for a CPU server: bf16 only where the CPU computes it natively.

    Without AVX512-BF16 or AMX, bf16 is emulated and slower than float32 (measured on a
    2-core AVX2 EPYC: 8 vs 20 tokens/s aggregate for 8 requests on the 0.5B model).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = set(cpuinfo.split())
    return "bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


class VLLMEngine:
    """vLLM's OpenAI-compatible server."""

    name = "vllm"

    def ensure(self, model: str, progress: Progress | None = None) -> Path:
        target = prepare_model(model, progress=progress)
        ensure_vllm_venv(progress)
        return Path(target)

    def launch(self, model: str, target: Path, options: ServeOptions) -> Launch:
        gpu = has_gpu()
        kv = options.kv_cache_gib if options.kv_cache_gib is not None else float(
            os.environ.get("VLLM_CPU_KVCACHE_SPACE") or DEFAULT_KV_CACHE_GIB)
        dtype = "bfloat16" if gpu else cpu_dtype()
        if not gpu:
            check_memory(model, target, kv, dtype)
        cmd = [str(ensure_vllm_venv()), "-m", "vllm.entrypoints.openai.api_server",
               "--model", str(target), "--served-model-name", model, "--host", options.host,
               "--port", str(options.port), "--dtype", dtype,
               "--max-model-len", str(options.max_model_len),
               # Compact JSON under a schema: no token spent on (or looping in) whitespace.
               "--structured-outputs-config", STRUCTURED_OUTPUTS,
               *shlex.split(os.environ.get("LOTTERY_VLLM_ARGS", ""))]
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        if not gpu:
            env["VLLM_CPU_KVCACHE_SPACE"] = f"{kv:g}"
            # A busy CPU can take longer than vLLM's default 300 s for one batch step, and the
            # engine then kills itself (seen here with 20+ concurrent requests on 2 cores).
            env.setdefault("VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS", "3600")
            # vLLM keeps one core for its front end; on a machine of 4 cores or fewer the
            # model gains more from every core (2 cores: 20 -> 28 tokens/s aggregate for 8).
            if (os.cpu_count() or 1) <= 4:
                env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        # vLLM's compile cache makes later starts faster; keep it with the rest of our state.
        env.setdefault("VLLM_CACHE_ROOT", str(lottery_home() / "cache" / "vllm"))
        return Launch(cmd, env, {"dtype": dtype, "kv_cache_gib": kv if not gpu else None,
                                 "max_model_len": options.max_model_len}, gpu=gpu)

    def owns(self, cmdline: bytes) -> bool:
        return b"vllm" in cmdline


def check_memory(name: str, target: Path, kv_gib: float, dtype: str = "bfloat16") -> None:
    """Refuse to start when the weights, the KV cache and the runtime do not fit."""
    weights = sum(p.stat().st_size for p in target.glob("*.safetensors")) if target.is_dir() else 0
    if dtype == "float32":  # the checkpoints are bf16: float32 doubles them in memory
        weights *= 2
    needed = weights + kv_gib * _GIB + 1.5 * _GIB
    available = memory_available()
    if available is not None and available < needed:
        raise ServerStartError(
            f"too little memory to serve {name}: about {needed / _GIB:.1f} GiB needed (weights "
            f"{weights / _GIB:.1f} + KV cache {kv_gib:g} + 1.5 runtime), {available / _GIB:.1f} "
            "GiB available; stop other servers, lower VLLM_CPU_KVCACHE_SPACE, pick a smaller "
            "model, or use --engine llama.cpp")
