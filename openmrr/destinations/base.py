"""What every destination type shares: the context of one delivery and the record it leaves.

A destination type is a module with a pydantic `Settings` model (the `settings:` block of its entry
in `destinations.yml`), the datasets it can send, and `deliver(settings, context) -> list[Delivery]`.
The caller (CLI, Dagster asset) records the returned deliveries in the delivery log; a type that
needs finer state (one row per webhook movement, last values sent to Intercom) keeps it in its own
table in the warehouse's `delivery` schema, so a re-run of the same run never delivers twice.

Conventions the framework relies on (config.py, service.py): a settings field whose name ends in
`_env` holds the name of an environment variable (checked to be set; its value reaches `deliver` in
`context.environ`); a type may also provide `check(settings, environ) -> str`, which reaches the
destination without delivering (`openmrr destinations test`). Register a new type in registry.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol

import duckdb
from pydantic import BaseModel

DeliveryStatus = Literal["delivered", "skipped", "failed"]
STATE_SCHEMA = "delivery"


@dataclass(frozen=True)
class DeliveryContext:
    """One run's delivery to one destination: who, which run, and where the datasets are read from.

    `connection` is a DuckDB connection to the warehouse (datasets in schema `analytics`, state in
    `delivery`); `environ` holds the environment variables the destination's settings name; `force`
    asks a type that skips what it already delivered for this run to send it again."""

    destination: str
    run_id: str
    run_date: date
    datasets: Sequence[str]
    connection: duckdb.DuckDBPyConnection
    environ: Mapping[str, str] = field(default_factory=dict)
    force: bool = False


@dataclass(frozen=True)
class Delivery:
    """One dataset (or batch of movements) sent, skipped or failed: a row of the delivery log."""

    destination: str
    dataset: str
    run_id: str
    status: DeliveryStatus
    rows: int
    bytes: int
    checksum: str | None
    started_at: datetime
    finished_at: datetime
    error: str | None = None
    location: str | None = None  # where it went: an object key, the recipients of a message


class DestinationType(Protocol):
    """The module-level interface each destination type provides."""

    Settings: type[BaseModel]
    DATASETS: Sequence[str]  # the datasets the type can send; empty means any

    def deliver(self, settings: BaseModel, context: DeliveryContext) -> list[Delivery]: ...
