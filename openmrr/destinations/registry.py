"""Destination type name -> the module that implements it, imported only when a destination uses it.

A value is `package.module` (the module is the type: `Settings`, `DATASETS`, `deliver`) or
`package.module:attribute` (an object in that module with the same three attributes, for modules
that serve several types, like object storage). The warehouse types name a settings fallback too:
their settings validate before their delivery module exists, and `deliver` says it is not wired yet.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from openmrr.destinations.base import DeliveryContext
from openmrr.errors import ConfigError, DeliveryFailed


@dataclass(frozen=True)
class Registration:
    """Where a type lives, and (warehouse types) where its settings model lives while it is not wired."""

    module: str
    settings_fallback: str | None = None


def _warehouse(name: str) -> Registration:
    """`openmrr.destinations.warehouse:<name>` once wired; until then its settings from warehouse_settings."""
    return Registration(f"openmrr.destinations.warehouse:{name}", f"openmrr.destinations.warehouse_settings:{name}")


TYPES: dict[str, Registration] = {
    "s3": Registration("openmrr.destinations.objectstore:s3"),
    "gcs": Registration("openmrr.destinations.objectstore:gcs"),
    "azure_blob": Registration("openmrr.destinations.objectstore:azure_blob"),
    "email": Registration("openmrr.destinations.email"),
    "webhook": Registration("openmrr.destinations.webhook"),
    "slack": Registration("openmrr.destinations.slack"),
    "intercom": Registration("openmrr.destinations.intercom"),
    **{name: _warehouse(name) for name in ("duckdb", "postgres", "snowflake", "bigquery", "redshift")},
}


class NotWired:
    """A warehouse type whose delivery module is missing: settings validate, delivery says so."""

    DATASETS: tuple[str, ...] = ()

    def __init__(self, type_name: str, settings: type, module: str) -> None:
        self.type_name, self.Settings, self.module = type_name, settings, module

    def deliver(self, settings: Any, context: DeliveryContext) -> list:
        raise DeliveryFailed(f"destination '{context.destination}': type '{self.type_name}' is accepted in"
                             f" destinations.yml but its delivery is not wired yet ({self.module} is missing)")


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
    module_name = registration.module.partition(":")[0]
    try:
        return _import(registration.module)
    except ModuleNotFoundError as error:
        if not _missing(error, module_name):
            raise
        if registration.settings_fallback is not None:
            return NotWired(type_name, _import(registration.settings_fallback), module_name)
        raise ConfigError(f"destination type '{type_name}' is not available in this installation"
                          f" ({module_name} is missing)") from error
