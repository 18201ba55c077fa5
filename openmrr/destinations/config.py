"""`destinations.yml`: which datasets go where, when (spec/destinations.md).

```yaml
destinations:
  - name: lake                  # letters, digits, _; the Dagster asset is destinations/<name>
    type: s3                    # see registry.py
    datasets: [customers, mrr_activities]   # optional: default, all the type can send
    schedule: "0 7 * * *"       # optional cron (UTC): a Dagster schedule for this destination
    settings: {bucket: acme-mrr, prefix: openmrr}
```
Secrets never sit in the file: a settings field ending in `_env` names an environment variable, and
every variable named must be set when a destination is validated for use. Every error names the
file, the entry and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from openmrr.destinations.registry import TYPES, load_type
from openmrr.errors import ConfigError
from openmrr.settings import read_yaml

DESTINATIONS_FILE = "destinations.yml"
# datasets.md: the marts (schema analytics) by bare name, the source tables as `source.<name>`
ANALYTICS_DATASETS = ("customers", "subscriptions", "mrr_intervals", "mrr_activities", "fx_adjustments",
                      "cmrr_activities", "customer_mrr_monthly", "metrics_daily", "metrics_monthly",
                      "activity_sources")
SOURCE_DATASETS = tuple(f"source.{name}" for name in (
    "customers", "contacts", "plans", "invoices", "line_items", "transactions", "subscription_events",
    "cancellations", "currency_rates", "customer_merges", "tags", "custom_attributes", "data_sources",
    "import_reports"))
KNOWN_DATASETS = ANALYTICS_DATASETS + SOURCE_DATASETS
ENV_SUFFIX = "_env"


def dataset_table(dataset: str) -> str:
    """The warehouse table of a dataset name: `customers` -> analytics.customers."""
    return dataset if "." in dataset else f"analytics.{dataset}"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    type: str
    datasets: list[str] | None = None
    schedule: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", value):
            raise ValueError(f"'{value}' is not a name: use letters, digits and _, starting with a letter"
                             " (it names the Dagster asset destinations/<name>)")
        return value


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destinations: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class Destination:
    """One validated entry: its type's implementation and its parsed settings."""

    name: str
    type: str
    datasets: tuple[str, ...]
    schedule: str | None
    settings: BaseModel
    implementation: Any
    where: str  # "destinations.yml: destination 'lake' (entry 1)", for messages

    def env_names(self) -> dict[str, str]:
        """settings field -> the environment variable it names (fields ending in `_env`)."""
        return {f"settings.{key}": value for key, value in self.settings.model_dump().items()
                if key.endswith(ENV_SUFFIX) and isinstance(value, str)}

    def missing_env(self, environ: Mapping[str, str]) -> list[str]:
        """One message per named variable that is not set."""
        return [f"{self.where}, {field}: environment variable {name} is not set"
                for field, name in self.env_names().items() if not environ.get(name)]

    def environ(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The values of the variables this destination names; ConfigError naming any that is unset."""
        environ = os.environ if environ is None else environ
        missing = self.missing_env(environ)
        if missing:
            raise ConfigError("; ".join(missing))
        named = {name: environ[name] for name in self.env_names().values()}
        # variables a type reads when the file names none (a warehouse's profile variables)
        fallback = {name: environ[name] for name in getattr(self.implementation, "OPTIONAL_ENV", ()) if name in environ}
        return {**fallback, **named}


@dataclass(frozen=True)
class DestinationsFile:
    path: Path
    destinations: tuple[Destination, ...]

    def get(self, name: str) -> Destination:
        for destination in self.destinations:
            if destination.name == name:
                return destination
        known = ", ".join(d.name for d in self.destinations) or "none"
        raise ConfigError(f"{self.path}: no destination named '{name}' (declared: {known})")

    def missing_env(self, environ: Mapping[str, str] | None = None) -> list[str]:
        environ = os.environ if environ is None else environ
        return [problem for destination in self.destinations for problem in destination.missing_env(environ)]


def _problems(error: ValidationError, prefix: str = "") -> str:
    return "; ".join(f"{prefix}{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in error.errors())


def _valid_cron(value: str) -> bool:
    from dagster._utils.schedules import is_valid_cron_string

    return is_valid_cron_string(value)


def _read_yaml(path: Path) -> Any:
    if not path.exists():
        raise ConfigError(f"{path}: destinations file not found")
    return read_yaml(path)


def _destination(path: Path, number: int, raw: dict[str, Any]) -> Destination:
    where = f"{path}: destination '{raw['name']}' (entry {number})" if isinstance(raw.get("name"), str) \
        else f"{path}: entry {number}"
    try:
        entry = _Entry.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{where}, {_problems(error)}") from error
    if entry.type not in TYPES:
        raise ConfigError(f"{where}, type: unknown destination type '{entry.type}'"
                          f" (known: {', '.join(sorted(TYPES))})")
    try:
        implementation = load_type(entry.type)
    except ConfigError as error:
        raise ConfigError(f"{where}, type: {error}") from error
    try:
        settings = implementation.Settings.model_validate(entry.settings)
    except ValidationError as error:
        raise ConfigError(f"{where}, {_problems(error, 'settings.')}") from error
    if entry.schedule is not None and not _valid_cron(entry.schedule):
        raise ConfigError(f"{where}, schedule: '{entry.schedule}' is not a cron expression"
                          " (five fields: minute hour day-of-month month day-of-week)")
    allowed: Sequence[str] = tuple(implementation.DATASETS) or KNOWN_DATASETS
    datasets = tuple(entry.datasets) if entry.datasets is not None else (
        tuple(implementation.DATASETS) or ANALYTICS_DATASETS)
    if not datasets:
        raise ConfigError(f"{where}, datasets: name at least one dataset")
    for dataset in datasets:
        if dataset not in allowed:
            raise ConfigError(f"{where}, datasets: '{dataset}' is not a dataset a {entry.type} destination can"
                              f" send (one of: {', '.join(allowed)})")
    if len(set(datasets)) != len(datasets):
        raise ConfigError(f"{where}, datasets: a dataset is listed twice")
    return Destination(entry.name, entry.type, datasets, entry.schedule, settings, implementation, where)


def load_destinations(path: Path, environ: Mapping[str, str] | None = None,
                      check_env: bool = True) -> DestinationsFile:
    """Parse and validate every entry; with `check_env`, every variable named must be set too."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with a `destinations:` list, got {type(raw).__name__}")
    try:
        entries = _File.model_validate(raw).destinations
    except ValidationError as error:
        raise ConfigError(f"{path}: {_problems(error)}") from error
    destinations: list[Destination] = []
    for number, entry in enumerate(entries, start=1):
        destination = _destination(path, number, entry)
        if any(d.name == destination.name for d in destinations):
            raise ConfigError(f"{destination.where}, name: '{destination.name}' is declared twice")
        destinations.append(destination)
    result = DestinationsFile(path, tuple(destinations))
    if check_env:
        missing = result.missing_env(environ)
        if missing:
            raise ConfigError("; ".join(missing))
    return result
