"""Local model servers: the model catalogue, model preparation and vLLM server management.

``ensure_server(model)`` is the embedded default behind ``solve()`` and
``lottery ask`` when no ``base_url`` is configured.
"""

from lottery.serve.catalogue import CATALOGUE, DEFAULT_MODEL, CatalogueModel, resolve
from lottery.serve.prepare import is_prepared, list_models, prepare_model
from lottery.serve.server import (
    ServerInfo,
    ensure_server,
    server_status,
    start_server,
    stop_server,
)

__all__ = [
    "CATALOGUE",
    "DEFAULT_MODEL",
    "CatalogueModel",
    "ServerInfo",
    "ensure_server",
    "is_prepared",
    "list_models",
    "prepare_model",
    "resolve",
    "server_status",
    "start_server",
    "stop_server",
]
