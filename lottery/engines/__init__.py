"""Model-server engines behind one interface (:mod:`lottery.engines.base`).

``vllm`` is the default and the production engine (GPUs, the k8s manifests);
``llama.cpp`` serves the catalogue's GGUF on a CPU with a fraction of the start time and
memory. Choose with ``lottery serve --engine``, ``lottery ask --engine`` or
``LOTTERY_ENGINE``; docs/engines.md says when to pick which.
"""

from lottery.engines.base import (
    DEFAULT_ENGINE,
    ENGINE_NAMES,
    Engine,
    Launch,
    ServeOptions,
    choose_engine,
    get_engine,
)

__all__ = ["DEFAULT_ENGINE", "ENGINE_NAMES", "Engine", "Launch", "ServeOptions",
           "choose_engine", "get_engine"]
