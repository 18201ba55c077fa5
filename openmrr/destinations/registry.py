"""Destination type name -> the module that implements it, imported only when a destination uses it.

A value is `package.module` (the module is the type: `Settings`, `DATASETS`, `deliver`) or
`package.module:attribute` (an object in that module with the same three attributes, for modules
that serve several types, like object storage and the warehouses).
"""

from __future__ import annotations

import importlib
from typing import Any

from openmrr.errors import ConfigError

TYPES: dict[str, str] = {
    "s3": "openmrr.destinations.objectstore:s3",
    "gcs": "openmrr.destinations.objectstore:gcs",
    "azure_blob": "openmrr.destinations.objectstore:azure_blob",
    "email": "openmrr.destinations.email",
    "webhook": "openmrr.destinations.webhook",
    "slack": "openmrr.destinations.slack",
    "intercom": "openmrr.destinations.intercom",
    "duckdb": "openmrr.destinations.warehouse:duckdb_type",
    **{name: f"openmrr.destinations.warehouse:{name}"
       for name in ("postgres", "snowflake", "bigquery", "redshift")},
}


def _import(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def _missing(error: ModuleNotFoundError, module_name: str) -> bool:
    """True when the module itself is absent (not a module it imports)."""
    return error.name is not None and module_name.startswith(error.name)


def load_type(type_name: str) -> Any:
    """The implementation of `type_name` (see the module docstring); ConfigError for an unknown type."""
    registration = TYPES.get(type_name)
    if registration is None:
        raise ConfigError(f"unknown destination type '{type_name}' (known: {', '.join(sorted(TYPES))})")
    module_name = registration.partition(":")[0]
    try:
        return _import(registration)
    except ModuleNotFoundError as error:
        if not _missing(error, module_name):
            raise
        raise ConfigError(f"destination type '{type_name}' is not available in this installation"
                          f" ({module_name} is missing)") from error
