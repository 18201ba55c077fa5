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

from openmrr.cron import is_schedule_cron
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
            raise ConfigError("\n".join(missing))
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


def _problems(error: ValidationError, prefix: str = "") -> list[str]:
    """One `field: problem` per pydantic error, so every mistake of an entry is reported at once."""
    return [f"{prefix}{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in error.errors()]


def _read_yaml(path: Path) -> Any:
    if not path.exists():
        raise ConfigError(f"{path}: destinations file not found")
    return read_yaml(path)


def _where(path: Path, number: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"{path}: destination '{name}' (entry {number})" if isinstance(name, str) else f"{path}: entry {number}"


def _type_problems(raw: dict[str, Any]) -> tuple[Any, BaseModel | None, list[str]]:
    """The type's implementation and parsed settings, with the problems of `type` and `settings`. Each
    check runs only on a well-typed value: a value of the wrong kind is already a problem of the entry."""
    kind, settings = raw.get("type"), raw.get("settings", {})
    if not isinstance(kind, str):
        return None, None, []
    if kind not in TYPES:
        return None, None, [f"type: unknown destination type '{kind}' (known: {', '.join(sorted(TYPES))})"]
    try:
        implementation = load_type(kind)
    except ConfigError as error:
        return None, None, [f"type: {error}"]
    if not isinstance(settings, dict):
        return implementation, None, []
    try:
        return implementation, implementation.Settings.model_validate(settings), []
    except ValidationError as error:
        return implementation, None, _problems(error, "settings.")


def _dataset_problems(raw: dict[str, Any], implementation: Any) -> tuple[tuple[str, ...], list[str]]:
    """The datasets the entry sends (default: all its type can send), with the problems of `datasets`."""
    allowed: Sequence[str] = tuple(implementation.DATASETS) or KNOWN_DATASETS
    listed = raw.get("datasets")
    if listed is not None and not (isinstance(listed, list) and all(isinstance(d, str) for d in listed)):
        return (), []
    datasets = tuple(listed) if listed is not None else (tuple(implementation.DATASETS) or ANALYTICS_DATASETS)
    if not datasets:
        return datasets, ["datasets: name at least one dataset"]
    problems = [f"datasets: '{dataset}' is not a dataset a {raw['type']} destination can send"
                f" (one of: {', '.join(allowed)})" for dataset in datasets if dataset not in allowed]
    if len(set(datasets)) != len(datasets):
        problems.append("datasets: a dataset is listed twice")
    return datasets, problems


def _destination(path: Path, number: int, raw: dict[str, Any]) -> tuple[Destination | None, list[str]]:
    """The validated entry, or None with every problem it has (each naming the file, entry and field)."""
    where = _where(path, number, raw)
    problems: list[str] = []
    try:
        entry: _Entry | None = _Entry.model_validate(raw)
    except ValidationError as error:
        entry, problems = None, _problems(error)
    implementation, settings, type_problems = _type_problems(raw)
    problems += type_problems
    schedule = raw.get("schedule")
    if isinstance(schedule, str) and not is_schedule_cron(schedule):
        problems.append(f"schedule: '{schedule}' is not a cron expression"
                        " (five fields: minute hour day-of-month month day-of-week)")
    datasets: tuple[str, ...] = ()
    if implementation is not None:
        datasets, dataset_problems = _dataset_problems(raw, implementation)
        problems += dataset_problems
    if problems or entry is None or settings is None:
        return None, [f"{where}, {problem}" for problem in problems]
    return Destination(entry.name, entry.type, datasets, entry.schedule, settings, implementation, where), []


def load_destinations(path: Path, environ: Mapping[str, str] | None = None,
                      check_env: bool = True) -> DestinationsFile:
    """Parse and validate every entry; with `check_env`, every variable named must be set too. Every
    problem of the file is reported at once, one per line, in one ConfigError."""
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with a `destinations:` list, got {type(raw).__name__}")
    try:
        entries = _File.model_validate(raw).destinations
        problems: list[str] = []
    except ValidationError as error:
        problems = [f"{path}: {problem}" for problem in _problems(error)]
        listed = raw.get("destinations")
        entries = listed if isinstance(listed, list) else []
    destinations: list[Destination] = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            continue  # reported above: destinations.N is not a mapping
        destination, entry_problems = _destination(path, number, entry)
        problems += entry_problems
        if destination is None:
            continue
        if any(d.name == destination.name for d in destinations):
            problems.append(f"{destination.where}, name: '{destination.name}' is declared twice")
            continue
        destinations.append(destination)
    result = DestinationsFile(path, tuple(destinations))
    if check_env:
        problems += result.missing_env(environ)
    if problems:
        raise ConfigError("\n".join(problems))
    return result
