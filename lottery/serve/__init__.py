"""Model preparation: the model catalogue, fetching and verifying weights, the vLLM
environment. Starting and stopping servers is :mod:`lottery.engines`."""

from lottery.serve.catalogue import CATALOGUE, DEFAULT_MODEL, CatalogueModel, resolve
from lottery.serve.prepare import is_prepared, list_models, prepare_model

__all__ = ["CATALOGUE", "DEFAULT_MODEL", "CatalogueModel", "is_prepared", "list_models",
           "prepare_model", "resolve"]
